#!/usr/bin/env python3
"""The planner's verbs at full size, and the Dask executor against one process in the same run.

1. Morris screening of every Đồng Tháp assumption (r = 10 trajectories, 3 replications per
   sample, 2-minute peak windows): wall time with one process (`--executor process --workers 1`,
   the baseline) and with a LocalCluster of 2 Dask workers, and their ratio; the JSON of both
   must be the same bytes.
2. `egovlab forecast dongthap --years 2020-2030` (defaults) wall time.
Writes benchmarks/results/simulation_planning.json.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EGOVLAB = ROOT / ".venv" / "bin" / "egovlab"


def timed(*args: str) -> float:
    t0 = time.perf_counter()
    out = subprocess.run([str(EGOVLAB), *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return time.perf_counter() - t0


def main() -> None:
    morris = ["sensitivity", "dongthap", "--trajectories", "10", "--replications", "3", "--peak-minutes", "2"]
    one = timed(*morris, "--executor", "process", "--workers", "1", "--out", "/tmp/egovlab-bench-sa1")
    two = timed(*morris, "--executor", "dask", "--workers", "2", "--out", "/tmp/egovlab-bench-sa2")
    same = Path("/tmp/egovlab-bench-sa1/sensitivity.json").read_bytes() == \
        Path("/tmp/egovlab-bench-sa2/sensitivity.json").read_bytes()
    report = json.loads(Path("/tmp/egovlab-bench-sa1/sensitivity.json").read_text())
    forecast = timed("forecast", "dongthap", "--years", "2020-2030", "--out", "/tmp/egovlab-bench-fc")
    result = {
        "benchmark": "simulation_planning", "cores": os.cpu_count(),
        "morris": {"what": " ".join(morris), "inputs": len(report["inputs"]),
                   "samples": report["screening"]["samples"], "tasks": report["screening"]["samples"] * 3,
                   "one_process_s": round(one, 1), "dask_2_workers_s": round(two, 1),
                   "ratio_one_to_dask": round(one / two, 2), "identical_json": same,
                   "leading": [r["input"] for r in report["screening"]["ranking"][:5]]},
        "forecast": {"what": "egovlab forecast dongthap --years 2020-2030", "wall_s": round(forecast, 1)},
    }
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "simulation_planning.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
