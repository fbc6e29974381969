#!/usr/bin/env python3
"""The province's full reachability matrix (1,480 probes), and in the same run the prober it
replaced (baseline), as root. Writes benchmarks/results/probe_matrix.json.

The province comes up under its controller (24 OVS shards, as `make run`). Each run probes the
same plan two ways, alternating: egovlab's prober (every source at once, each probing all its
targets at once against one deadline) and the previous release's prober, taken from git at
BASELINE_COMMIT (48 threads per source, a `ping` process per ICMP probe, four sources at a time),
both with the same 2 s timeout and one retry of what failed. Their answers must be the same.

Usage: sudo .venv/bin/python benchmarks/probe_matrix.py [--runs 3]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import figures

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "eh"
BASELINE_COMMIT = "2edf67e"  # the last commit with the threaded prober


def baseline_matrix(probes_mod, planned, pids, by_label, prober: Path, timeout_s: float = 2.0) -> list:
    """The previous run_matrix: four sources at a time, retry of every failed probe."""
    def batch(todo):
        by_source: dict[str, list] = {}
        for p in todo:
            by_source.setdefault(p.src_host, []).append(p)

        def one(src, ps):
            spec = json.dumps({"timeout": timeout_s, "targets": [[p.address, p.port] for p in ps]})
            proc = probes_mod.nsenter(pids[by_label[src]], PREFIX, [sys.executable, str(prober), spec],
                                      timeout=60 + timeout_s * len(ps))
            return [probes_mod.ProbeResult(p, a["reachable"], a["detail"]) for p, a in zip(ps, json.loads(proc.stdout))]

        out = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for part in pool.map(lambda item: one(*item), by_source.items()):
                out += part
        return out

    first = batch(planned)
    again = {id(r.probe): r for r in batch([r.probe for r in first if not r.reachable])}
    return [again.get(id(r.probe), r) for r in first]


def main() -> None:
    from egovlab import lifecycle
    from egovlab.topology import probes

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    old = Path("/tmp/egovlab-bench-prober-baseline.py")
    old.write_text(subprocess.run(["git", "-C", str(ROOT), "show", f"{BASELINE_COMMIT}:topology/prober.py"],
                                  capture_output=True, text=True, check=True).stdout)
    with lifecycle.session("dongthap", lifecycle.spec(PREFIX, ovs_shards=24)) as lab:
        plan = lab.plan
        pids = lab.pids
        planned = probes.matrix_plan(lab.scenario, plan)
        ours, theirs, same = [], [], True
        for _ in range(args.runs):
            t0 = time.perf_counter()
            new = probes.run_matrix(planned, pids, plan.by_label, PREFIX)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            base = baseline_matrix(probes, planned, pids, plan.by_label, old)
            theirs.append(time.perf_counter() - t0)
            same &= [(r.reachable, r.detail) for r in new] == [(r.reachable, r.detail) for r in base]
    result = {
        "benchmark": "probe_matrix", "scenario": "dongthap", "probes": len(planned), "runs": args.runs,
        "reachable": sum(r.reachable for r in new), "differ_from_intent": sum(r.differs for r in new),
        "egovlab_s": {"median": round(statistics.median(ours), 2), "min": round(min(ours), 2),
                      "max": round(max(ours), 2)},
        "baseline": {"what": f"the prober of {BASELINE_COMMIT}: 48 threads per source, ping per ICMP probe, "
                             "4 sources at a time", "median_s": round(statistics.median(theirs), 2)},
        "speedup": round(statistics.median(theirs) / statistics.median(ours), 1),
        "same_answers": same, "target": "under 10 s",
    }
    figures.write("probe_matrix", result)


if __name__ == "__main__":
    main()
