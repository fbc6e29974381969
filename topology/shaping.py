"""Bandwidth limits on the lab's switch-to-switch links, with pyroute2 (no tc process per link).

A token bucket (TBF) on the egress of both ends of a link limits it to its bandwidth in each
direction. Used where the kernel has no netem; where it has, the builder puts bandwidth, delay
and loss on each end of the link instead (`apply_netem`, as Mininet's TCLink).
"""
from __future__ import annotations

import subprocess
from collections import defaultdict

from pyroute2 import IPRoute

from . import netns
from .model import EmuLink
from .state import LabError

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


def netem_commands(links: list[EmuLink]) -> dict[str, list[str]]:
    """Where the kernel has netem, each end of a shaped link gets the link's bandwidth (HTB), its
    delay and its loss (netem) on egress, as Mininet's TCLink does: `tc -batch` lines per node."""
    lines: dict[str, list[str]] = defaultdict(list)
    for link in links:
        netem = " ".join(([f"delay {link.delay_ms}ms"] if link.delay_ms else []) +
                         ([f"loss {link.loss_pct}%"] if link.loss_pct else []))
        for node in (link.a, link.b):
            dev = link.intf(node)
            lines[node] += [f"qdisc add dev {dev} root handle 5:0 htb default 1",
                            f"class add dev {dev} parent 5:0 classid 5:1 htb rate {link.bandwidth / 1e6:g}Mbit burst 15k"]
            if netem:
                lines[node].append(f"qdisc add dev {dev} parent 5:1 handle 10: netem {netem}")
    return lines


def apply_netem(pids: dict[str, int], links: list[EmuLink]) -> None:
    """Those lines run by one `tc -batch` per namespace (`pids`: node -> its namespace's process)."""
    by_pid: dict[int, list[str]] = defaultdict(list)
    for node, lines in netem_commands(links).items():
        by_pid[pids[node]] += lines
    for pid, lines in by_pid.items():
        out = subprocess.run([*netns.command(pid), "tc", "-batch", "-"], input="\n".join(lines) + "\n",
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise LabError(f"tc: {out.stderr.strip()}")
