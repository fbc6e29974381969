"""Bandwidth limits on the lab's switch-to-switch links, with pyroute2 (no tc process per link).

A token bucket (TBF) on the egress of both ends of a link limits it to its bandwidth in each
direction. Used where the kernel has no netem; where it has, Mininet's TCLink puts bandwidth,
delay and loss into the topology itself (that is where netem reliably applies).
"""
from __future__ import annotations

from pyroute2 import IPRoute

from . import netns

MTU_BYTES = 1514


def tbf_params(bps: int) -> dict:
    # Burst: at least a few MTUs, or 1 ms worth of the rate, so the rate is met at high speeds.
    burst = max(4 * MTU_BYTES, bps // 8 // 1000)
    return {"rate": bps // 8, "burst": burst, "latency": 50_000}  # rate in bytes/s, latency in us


def shape_links(interfaces: dict[str, int], spaces: tuple[str | None, ...] | list[str | None] = (None,)) -> None:
    """Limit each switch interface (name -> bits per second), in the root namespace or one of
    `spaces` (the lab's Open vSwitch shards), with a TBF root qdisc."""
    try:
        located = netns.locate(list(interfaces), list(spaces))
    except KeyError as exc:
        raise RuntimeError(f"cannot shape {exc.args[0]}: no such interface") from None
    for space, ends in located.items():
        with netns.iproute(space) as ipr:
            for ifname, idx in ends:
                ipr.tc("replace", "tbf", index=idx, handle="1:", **tbf_params(interfaces[ifname]))


def shaped_rate(ifname: str) -> int | None:
    """The TBF rate on an interface, in bits per second (None if it has none)."""
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=ifname)
        if not idx:
            return None
        for q in ipr.get_qdiscs(index=idx[0]):
            if q.get_attr("TCA_KIND") == "tbf":
                opts = q.get_attr("TCA_OPTIONS")
                parms = opts.get_attr("TCA_TBF_PARMS")
                rate = parms["rate"]
                rate64 = opts.get_attr("TCA_TBF_RATE64")
                return (rate64 or rate) * 8
    return None
