"""DDoS protection (§VIII.2.đ), pure: every Internet source is held to a rate towards the
province by an OpenFlow meter of its own, on new and established traffic alike."""
from __future__ import annotations

import dataclasses

from .program import CT_EST as EST, CT_REL as REL, TABLE_FORWARD, TABLE_POLICY, Meter, Rule

# The document gives no figure; 5 Mbps per source is an assumption (about 5 % of one leased line).
DDOS_RATE_KBPS = 5_000
DDOS_BURST_KB = 500


def metered(port: int, rules: list[Rule], marks: list[int], rate_kbps: int) -> tuple[Meter, list[Rule], list[Rule]]:
    """(the source's meter, its new-connection rules metered, its metered established rules)."""
    meter = Meter(port, rate_kbps, DDOS_BURST_KB)
    through = [("meter", meter.meter_id), ("goto", TABLE_FORWARD)]
    new = [dataclasses.replace(r, actions=(("meter", meter.meter_id),) + r.actions) for r in rules]
    established = [Rule.make(TABLE_POLICY, 1015, through, ct_state=state, in_port=port) for state in (EST, REL)]
    established += [Rule.make(TABLE_POLICY, 1020, through, counter=mark, ct_state=EST, ct_mark=mark, in_port=port)
                    for mark in marks]
    return meter, new, established
