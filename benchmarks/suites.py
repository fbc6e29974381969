#!/usr/bin/env python3
"""The resilience analysis and the shipped Đồng Tháp suite (writes benchmarks/results/suites.json).

- `analyze` on the province: depth 1 (every single failure) and depth 2 (every pair of links),
  wall time in this process (the scenario loaded once before);
- beside it, in the same run, what one failure costs on the emulated province: cut a district's
  primary uplink, wait until the controller has converged, and probe the district's flows to
  the portal (the same prediction checked on the lab), then the whole shipped suite through
  `egovlab test` on that lab, per test and in all. As root.

Usage: sudo .venv/bin/python benchmarks/suites.py [--no-lab]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import figures

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "ej"  # its own lab


def main() -> None:
    from egovlab import lifecycle
    from egovlab.inventory import loader
    from egovlab.sdn import resilience
    from egovlab.suites import runner, schema
    from egovlab.topology import faults
    from egovlab.topology.model import emulation_plan

    ap = argparse.ArgumentParser()
    ap.add_argument("--no-lab", action="store_true", help="only the analysis (no root needed)")
    args = ap.parse_args()
    sc = loader.load("dongthap")
    plan = emulation_plan(sc, prefix=PREFIX)
    result: dict = {"benchmark": "suites", "scenario": "dongthap"}
    for depth in (1, 2):
        t0 = time.perf_counter()
        report = resilience.analyze(sc, plan, depth)
        result[f"analyze_depth_{depth}"] = {"seconds": round(time.perf_counter() - t0, 2),
                                            "failures": len(report["failures"]) + report.get("link_pairs", {}).get(
                                                "pairs", 0), "intended_flows": report["intended_flows"]}
    if not args.no_lab:
        t0 = time.perf_counter()
        with lifecycle.session("dongthap", lifecycle.spec(PREFIX, ovs_shards=24)) as lab:
            result["lab_up_and_programmed_s"] = round(time.perf_counter() - t0, 1)
            pids = lab.pids
            run = runner.Runner(runner.LabHandle(lab.scenario, lab.plan, pids, True))
            reach = schema.Reach.model_validate({"from": "site:h-cao-lanh", "to": "service:cong-dvc"})
            t1 = time.perf_counter()
            faults.inject(lab.plan, "link-down", "h-cao-lanh--core-1")
            converged = run.converged()
            step = run.reach(reach, True)
            result["one_failure_emulated"] = {"seconds": round(time.perf_counter() - t1, 2),
                                              "converged_s": round(converged, 2), "probes": step.measured,
                                              "predicted": step.predicted, "passed": step.passed}
            run.baseline()
            out = ROOT / "benchmarks" / "results" / "suites-run.json"
            t2 = time.perf_counter()
            r = subprocess.run([str(ROOT / ".venv" / "bin" / "egovlab"), "test", "dongthap", "dongthap", "--prefix",
                                PREFIX, "--json", str(out)], capture_output=True, text=True, timeout=3600)
            doc = json.loads(out.read_text())
            result["shipped_suite"] = {"exit": r.returncode, "seconds": round(time.perf_counter() - t2, 1),
                                       "outcome": doc["outcome"], "passed": doc["passed"], "failed": doc["failed"],
                                       "model_disagrees": doc["model_disagrees"],
                                       "per_test_s": {t["name"]: t["seconds"] for t in doc["tests"]}}
            out.unlink()
    figures.write("suites", result)


if __name__ == "__main__":
    main()
