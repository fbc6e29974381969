#!/usr/bin/env python3
"""Tearing the province down, and in the same run Mininet's own `stop()` (the baseline), as root.
Writes benchmarks/results/teardown.json.

Three bring-ups of the province under its controller, each measured from the start of the
removal to nothing of the lab left (checked):
1. on one Open vSwitch daemon (the system's), removed by egovlab (`Lab.stop`);
2. on 24 shards (as `make run`), removed by egovlab;
3. the same plan built by plain Mininet on the system's daemon (standalone), removed by
   `Mininet.stop()` (what a plain Mininet script gets), then whatever it left removed by egovlab
   (not counted).

Usage: sudo .venv/bin/python benchmarks/teardown.py
"""
from __future__ import annotations

import time

import figures

PREFIX = "eh"


def once(shards: int) -> dict:
    from egovlab import lifecycle
    from egovlab.topology import cleanup

    with lifecycle.session("dongthap", lifecycle.spec(PREFIX, ovs_shards=shards)) as lab:
        nodes = lab.plan.node_count
        t0 = time.perf_counter()
    seconds = time.perf_counter() - t0  # the session's end is egovlab's removal
    left = cleanup.leftovers(PREFIX)
    if any(left.values()):
        raise SystemExit(f"left behind: {left}")
    return {"ovs_daemons": shards, "nodes": nodes, "down_s": round(seconds, 2)}


def mininet_stop() -> dict:
    from functools import partial

    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.node import OVSSwitch

    from egovlab.inventory import loader
    from egovlab.topology import cleanup
    from egovlab.topology.model import emulation_plan

    setLogLevel("error")
    plan = emulation_plan(loader.load("dongthap"), prefix=PREFIX)
    net = Mininet(topo=None, switch=partial(OVSSwitch, datapath="user", failMode="standalone", batch=True),
                  controller=None, build=False, autoSetMacs=False)
    for s in plan.switches.values():
        net.addSwitch(s.name, dpid=f"{s.dpid:016x}")
    for h in plan.hosts:
        net.addHost(h, ip=None)
    for link in plan.links:
        net.addLink(link.a, link.b, port1=link.a_port, port2=link.b_port)
    net.build()
    net.start()
    t0 = time.perf_counter()
    net.stop()
    seconds = time.perf_counter() - t0
    cleanup.remove_lab(PREFIX)
    return {"ovs_daemons": 1, "nodes": plan.node_count, "down_s": round(seconds, 2)}


def main() -> None:
    one, sharded, mininet = once(1), once(24), mininet_stop()
    result = {"benchmark": "teardown", "scenario": "dongthap", "egovlab_one_daemon": one, "egovlab_24_shards": sharded,
              "baseline": {"what": "Mininet.stop() on the same plan built by plain Mininet, one daemon", **mininet},
              "ratio_one_daemon": round(mininet["down_s"] / one["down_s"], 1), "target": "under 3 s"}
    figures.write("teardown", result)


if __name__ == "__main__":
    main()
