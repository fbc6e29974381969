#!/usr/bin/env python3
"""Simulation engine throughput against a bare SimPy loop, and a year of the province.

1. Events per second of the engine (an M/M/1 at rho 0.8) and, in the same run, of a bare SimPy
   loop scheduling the same number of timeouts (the baseline), and their ratio.
2. Wall time of `egovlab simulate dongthap --horizon 365d --replications 10` (target < 60 s),
   replications spread over the cores.
Writes benchmarks/results/simulation_engine.json.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import simpy

ROOT = Path(__file__).resolve().parent.parent


def bare_simpy(events: int) -> float:
    env = simpy.Environment()

    def loop(env):
        for _ in range(events):
            yield env.timeout(1.0)

    env.process(loop(env))
    t0 = time.perf_counter()
    env.run()
    return events / (time.perf_counter() - t0)


def engine(horizon: float) -> tuple[float, int]:
    from egovlab.simulation.engine import Dist, Station, run

    t0 = time.perf_counter()
    res = run([Station("s", 1, Dist("exp", 1.0))], 0.8, horizon=horizon, seed=1)
    return res.events / (time.perf_counter() - t0), res.events


def main() -> None:
    eng_rate, events = engine(200_000)
    base_rate = bare_simpy(events)
    t0 = time.perf_counter()
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "egovlab"), "simulate", "dongthap", "--horizon", "365d",
                          "--replications", "10", "--out", "/tmp/egovlab-bench-sim"], capture_output=True, text=True)
    year_wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    report = json.loads(Path("/tmp/egovlab-bench-sim/simulation.json").read_text())
    result = {
        "benchmark": "simulation_engine",
        "engine": {"what": "M/M/1 rho 0.8, events/s", "events": events, "events_per_s": round(eng_rate)},
        "baseline": {"what": "bare SimPy timeout loop, same event count", "events_per_s": round(base_rate)},
        "ratio": round(eng_rate / base_rate, 3),
        "province_year": {"what": "egovlab simulate dongthap --horizon 365d --replications 10",
                          "wall_s": round(year_wall, 2), "cores": os.cpu_count(),
                          "peak_events": report["peak"]["events"], "year_events": report["year"]["events"],
                          "phases_s": json.loads(Path("/tmp/egovlab-bench-sim/simulation.timing.json").read_text())["wall_s"], "target_s": 60, "meets_target": year_wall < 60},
    }
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "simulation_engine.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"engine {eng_rate:,.0f} events/s vs bare SimPy {base_rate:,.0f} events/s: ratio {eng_rate / base_rate:.2f}")
    print(f"one year of the province, 10 replications: {year_wall:.1f} s wall (target < 60 s)")


if __name__ == "__main__":
    main()
