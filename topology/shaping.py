"""Bandwidth limits on the lab's switch-to-switch links, with pyroute2 (no tc process per link).

A token bucket (TBF) on the egress of both ends of a link limits it to its bandwidth in each
direction. Used where the kernel has no netem; where it has, Mininet's TCLink puts bandwidth,
delay and loss into the topology itself (DESIGN.md: that is where netem reliably applies).
"""
from __future__ import annotations

from pyroute2 import IPRoute

MTU_BYTES = 1514


def tbf_params(bps: int) -> dict:
    # Burst: at least a few MTUs, or 1 ms worth of the rate, so the rate is met at high speeds.
    burst = max(4 * MTU_BYTES, bps // 8 // 1000)
    return {"rate": bps // 8, "burst": burst, "latency": 50_000}  # rate in bytes/s, latency in us


def shape_links(interfaces: dict[str, int]) -> None:
    """Limit each root-namespace interface (name -> bits per second) with a TBF root qdisc."""
    with IPRoute() as ipr:
        for ifname, bps in interfaces.items():
            idx = ipr.link_lookup(ifname=ifname)
            if not idx:
                raise RuntimeError(f"cannot shape {ifname}: no such interface")
            ipr.tc("replace", "tbf", index=idx[0], handle="1:", **tbf_params(bps))


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
