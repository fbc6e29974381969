#!/usr/bin/env python3
"""The fault soak, as root (writes benchmarks/results/soak.json): the province over 24 Open vSwitch
daemons with the services deployed (synchronous replication), `--faults` faults of every kind in
turn under the citizens' load, each checked. Per kind the outage (p50, p95, max), acknowledged
submissions lost, wall time. The baseline, in the same run on the same lab: the probe trains'
own floor, the same trains with no fault at all (their longest silence then is the
measurement's noise, what an outage must stand out from).

Usage: sudo .venv/bin/python benchmarks/soak.py [--faults 100] [--seed 1]
"""
from __future__ import annotations

import argparse
import time

import figures


def main() -> None:
    from egovlab import lifecycle, soak
    from egovlab.sdn.resilience import Effect, Failure
    from egovlab.services import deploy
    from egovlab.topology import probes

    ap = argparse.ArgumentParser()
    ap.add_argument("--faults", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scenario", default="dongthap")
    args = ap.parse_args()
    t0 = time.monotonic()
    with lifecycle.session(args.scenario, lifecycle.spec("eb", ovs_shards=24)) as lab:
        pids = lab.pids
        dep, _ = deploy.deploy(lab.scenario, lab.plan, pids, replication="sync", progress=lambda *_: None)
        run = soak.Soak(lab, dep, seed=args.seed, progress=print)
        chosen = run.trains(Effect(Failure("none", "none", frozenset())))["alone"]
        floor = []
        for _ in range(5):
            with probes.Trains(lab.plan, run.pids, chosen, interval_ms=soak.TRAIN_INTERVAL_MS,
                               seconds=soak.LEAD_S + run.hold_s + soak.SETTLE_S) as trains:
                trains.start()
                floor += trains.results()
        reports = run.run(soak.draw(run.targets(), args.faults, args.seed))
    result = soak.report(reports, time.monotonic() - t0, args.seed)
    result = {"benchmark": "soak", "scenario": args.scenario,
              "baseline_no_fault_trains": {"trains": len(floor),
                                           "longest_silence_ms": max((r.outage_ms for r in floor), default=0.0),
                                           "median_longest_silence_ms": sorted(r.outage_ms for r in floor)[len(floor) // 2]
                                           if floor else None,
                                           "datagrams_lost": sum(r.lost for r in floor)},
              **{k: v for k, v in result.items() if k != "runs"},
              "runs": [{k: r[k] for k in ("kind", "target", "outage_ms", "service_wait_s", "repaired_s", "passed",
                                          "problems", "seconds")} for r in result["runs"]]}
    figures.write("soak", result)


if __name__ == "__main__":
    main()
