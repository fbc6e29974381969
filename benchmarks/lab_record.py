#!/usr/bin/env python3
"""The verbs that read a running lab's record, on the full province, as root (writes
benchmarks/results/lab_record.json).

The province comes up under its controller (24 OVS shards, as `make run`) through the one
lifecycle; then, each N times, the wall time of a whole CLI process:
- `egovlab status --prefix P` (the record, the controller's report, the faults: no scenario),
- `egovlab fault link-down` and `link-up` of a district uplink (the plan of the lab's snapshot),
- `egovlab verify --prefix P` (the snapshot compiled and verified with the lab's cuts);
and in the same run the baselines they sit on: the interpreter importing the CLI
(`egovlab --version`), and `egovlab validate dongthap` (reading the scenario from its file, as
every verb on a lab did before the record held a snapshot).

Usage: sudo .venv/bin/python benchmarks/lab_record.py [--runs 10]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

import figures

ROOT = Path(__file__).resolve().parent.parent
EGOVLAB = str(ROOT / ".venv" / "bin" / "egovlab")
PREFIX = "eh"
LINK = "h-cao-lanh--core-1"


def timed(args: list[str], runs: int) -> dict:
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run([EGOVLAB, *args], capture_output=True, text=True, timeout=600)
        seconds.append(time.perf_counter() - t0)
        if r.returncode not in (0, 1):
            raise SystemExit(f"egovlab {' '.join(args)}: exit {r.returncode}: {r.stderr[-500:]}")
    return {"command": "egovlab " + " ".join(args), "runs": runs, "median_s": round(statistics.median(seconds), 3),
            "min_s": round(min(seconds), 3), "max_s": round(max(seconds), 3)}


def main() -> None:
    from egovlab import lifecycle

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    result: dict = {"benchmark": "lab_record", "scenario": "dongthap"}
    result["baseline_import"] = timed(["--version"], args.runs)
    result["baseline_load_from_file"] = timed(["validate", "dongthap"], args.runs)
    t0 = time.perf_counter()
    try:
        lifecycle.start_detached("dongthap", lifecycle.spec(PREFIX, ovs_shards=24))
        result["up_and_programmed_s"] = round(time.perf_counter() - t0, 1)
        result["status"] = timed(["status", "--prefix", PREFIX], args.runs)
        cuts = []
        for _ in range(args.runs):
            down = timed(["fault", "link-down", LINK, "--prefix", PREFIX], 1)
            up = timed(["fault", "link-up", LINK, "--prefix", PREFIX], 1)
            cuts += [down["median_s"], up["median_s"]]
        result["fault"] = {"command": f"egovlab fault link-down|link-up {LINK}", "runs": len(cuts),
                           "median_s": round(statistics.median(cuts), 3), "min_s": min(cuts), "max_s": max(cuts)}
        result["verify_prefix"] = timed(["verify", "--prefix", PREFIX], max(2, args.runs // 5))
    finally:
        lifecycle.stop(PREFIX)
    figures.write("lab_record", result)


if __name__ == "__main__":
    main()
