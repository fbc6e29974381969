#!/usr/bin/env python3
"""Tearing the province down, and in the same run Mininet's own `stop()` (the baseline), as root.
Writes benchmarks/results/teardown.json.

Three bring-ups of the province under its controller, each measured from the start of the
removal to nothing of the lab left (checked):
1. on one Open vSwitch daemon (the system's), removed by egovlab (`Lab.stop`);
2. on 24 shards (as `make run`), removed by egovlab;
3. on one daemon, removed by Mininet's `Mininet.stop()` (what a plain Mininet script gets), then
   whatever it left removed by egovlab (not counted).

Usage: sudo .venv/bin/python benchmarks/teardown.py
"""
from __future__ import annotations

import time

import figures

PREFIX = "eh"


def once(shards: int, mininet_stop: bool = False) -> dict:
    from egovlab import lifecycle
    from egovlab.topology import cleanup

    with lifecycle.session("dongthap", lifecycle.spec(PREFIX, ovs_shards=shards)) as lab:
        nodes = lab.plan.node_count
        t0 = time.perf_counter()
        if mininet_stop:
            lab.net.stop()
            seconds = time.perf_counter() - t0
    if not mininet_stop:
        seconds = time.perf_counter() - t0  # the session's end is egovlab's removal
    left = cleanup.leftovers(PREFIX)
    if any(left.values()):
        raise SystemExit(f"left behind: {left}")
    return {"ovs_daemons": shards, "nodes": nodes, "down_s": round(seconds, 2)}


def main() -> None:
    one, sharded, mininet = once(1), once(24), once(1, mininet_stop=True)
    result = {"benchmark": "teardown", "scenario": "dongthap", "egovlab_one_daemon": one, "egovlab_24_shards": sharded,
              "baseline": {"what": "Mininet.stop() on the same lab, one daemon", **mininet},
              "ratio_one_daemon": round(mininet["down_s"] / one["down_s"], 1), "target": "under 3 s"}
    figures.write("teardown", result)


if __name__ == "__main__":
    main()
