#!/usr/bin/env python3
"""Simulation engine throughput against a bare SimPy loop, and a year of the province.

1. The engine on an M/M/1 at rho 0.8 against, in the same run, the same model written in bare
   SimPy (a Resource, a source and a customer process: the fair baseline), customers per second
   and their ratio; and against a bare SimPy loop of as many timeouts as the engine's events (the
   floor of any SimPy model, the ratio this benchmark first reported).
2. Wall time of `egovlab simulate dongthap --horizon 365d --replications 10` (target < 60 s),
   replications spread over the cores.
Writes benchmarks/results/simulation_engine.json.
"""
from __future__ import annotations

import json
import os
import random
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


def bare_mm1(horizon: float, seed: int = 1) -> tuple[float, int]:
    """The same M/M/1 in plain SimPy: customers per second and how many were served."""
    rng = random.Random(seed)
    env = simpy.Environment()
    server = simpy.Resource(env, 1)
    done = []

    def customer(env):
        born = env.now
        with server.request() as req:
            yield req
            yield env.timeout(rng.expovariate(1.0))
        done.append(env.now - born)

    def source(env):
        while True:
            yield env.timeout(rng.expovariate(0.8))
            env.process(customer(env))

    env.process(source(env))
    t0 = time.perf_counter()
    env.run(until=horizon)
    return len(done) / (time.perf_counter() - t0), len(done)


def engine(horizon: float) -> tuple[float, int]:
    from egovlab.simulation.engine import Dist, Station, run

    t0 = time.perf_counter()
    res = run([Station("s", 1, Dist("exp", 1.0))], 0.8, horizon=horizon, seed=1)
    wall = time.perf_counter() - t0
    return res.events / wall, res.events, len(res.responses) / wall


def main() -> None:
    eng_rate, events, eng_customers = engine(200_000)
    base_rate = bare_simpy(events)
    mm1_customers, served = bare_mm1(200_000)
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
        "same_model": {"what": "customers/s, M/M/1 rho 0.8, horizon 200000: the engine vs the same model in bare SimPy",
                       "engine_customers_per_s": round(eng_customers), "bare_simpy_customers_per_s":
                       round(mm1_customers), "customers": served, "ratio": round(eng_customers / mm1_customers, 3),
                       "target": "within 1.5x of bare SimPy", "meets_target": mm1_customers / eng_customers <= 1.5},
        "province_year": {"what": "egovlab simulate dongthap --horizon 365d --replications 10",
                          "wall_s": round(year_wall, 2), "cores": os.cpu_count(),
                          "peak_events": report["peak"]["events"], "year_events": report["year"]["events"],
                          "phases_s": json.loads(Path("/tmp/egovlab-bench-sim/simulation.timing.json").read_text())["wall_s"], "target_s": 60, "meets_target": year_wall < 60},
    }
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "simulation_engine.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"engine {eng_rate:,.0f} events/s vs a bare SimPy timeout loop {base_rate:,.0f} events/s: "
          f"ratio {eng_rate / base_rate:.2f}")
    print(f"same M/M/1: engine {eng_customers:,.0f} customers/s vs bare SimPy {mm1_customers:,.0f}: "
          f"ratio {eng_customers / mm1_customers:.2f}")
    print(f"one year of the province, 10 replications: {year_wall:.1f} s wall (target < 60 s)")


if __name__ == "__main__":
    main()
