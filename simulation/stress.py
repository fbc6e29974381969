"""Headroom: the load multiplier at which each target breaks, and which resource breaks first.

Every service's requests are scaled by one multiplier k at the peak hour. A resource's
utilisation is linear in k, so the multipliers at which it reaches the headroom threshold and
saturation are exact. A service's p95 target is found by bisection on k, per replication with
common random numbers (every k of a replication simulates the same random draws), so each
replication gives one break point and the replications give its confidence interval. One
sequence of simulations serves every service: each step halves the widest bracket left, and
every service's bracket learns from it. Beyond the first resource's saturation the model has no
steady state: a target that holds up to it is reported as holding to saturation.
"""
from __future__ import annotations

import dataclasses
import math

from .executor import Executor, ProcessExecutor, task_seeds
from .forecast import THRESHOLD
from .province import ProvinceModel
from .runs import peak_replication
from .stats import estimate

STRESS_STREAM = 5
TIMEOUT_S = 30.0


def scaled(model: ProvinceModel, k: float) -> ProvinceModel:
    return dataclasses.replace(model, services=[dataclasses.replace(s, per_day=s.per_day * k) for s in model.services])


def saturation(model: ProvinceModel) -> float:
    """The multiplier at which the busiest resource reaches 100 % (no steady state beyond)."""
    return 1 / max(model.with_meeting().utilisation(model.peak_factor()).values())


def _p95s(model: ProvinceModel, k: float, seed: int, minutes: float, target_s: float) -> dict[str, float]:
    m = scaled(model, k).with_meeting()
    peak = peak_replication((m, m.peak_factor(), minutes, seed, None, TIMEOUT_S, target_s))
    return {name: s["p95"] for name, s in peak["services"].items()}


def _bisect(args) -> dict:
    """One replication: every service's break multiplier within the relative tolerance."""
    model, seed, minutes, target_s, tolerance = args
    k_sat = saturation(model)
    names = [s.name for s in model.services]
    lo = {n: 0.0 for n in names}  # the largest k seen meeting the target
    hi = {n: k_sat for n in names}  # the smallest k seen missing it (saturation misses it for sure)
    # Today's load first, then just below saturation (where most targets of a lightly loaded
    # province still hold: two simulations settle them), then halve the widest bracket left.
    probes = [min(1.0, k_sat / 2), k_sat * (1 - tolerance / 2)]
    k = probes.pop(0)
    evaluations = 0
    while True:
        for name, p95 in _p95s(model, k, seed, minutes, target_s).items():
            if p95 <= target_s:
                lo[name] = max(lo[name], k)
            else:
                hi[name] = min(hi[name], k)
        evaluations += 1
        open_ = [n for n in names if hi[n] - lo[n] > tolerance * hi[n]]
        if not open_ or evaluations >= 60:
            break
        widest = max(open_, key=lambda n: (hi[n] - lo[n]) / hi[n])
        k = probes.pop(0) if probes else (lo[widest] + hi[widest]) / 2
    # A service that never missed its target below saturation holds until the busiest resource saturates.
    return {"breaks": {n: (lo[n] + hi[n]) / 2 for n in names}, "evaluations": evaluations,
            "holds_to_saturation": {n: hi[n] == k_sat for n in names}}


def stress(model: ProvinceModel, *, target_s: float, replications: int, seed: int, minutes: float,
           tolerance: float = 0.02, executor: Executor | None = None) -> dict:
    util = model.with_meeting().utilisation(model.peak_factor())
    tasks = [(model, s, minutes, target_s, tolerance) for s in task_seeds(seed, replications, STRESS_STREAM)]
    reps = (executor or ProcessExecutor()).map(_bisect, tasks, "bisections (one per replication)")
    services = {n: {**estimate([r["breaks"][n] for r in reps], "nonneg").as_dict(4),
                    "holds_to_saturation": all(r["holds_to_saturation"][n] for r in reps)} for n in reps[0]["breaks"]}
    resources = {name: {"utilisation_today": round(u, 6),
                        "at_threshold": round(THRESHOLD / u, 4) if u > 0 else None,
                        "at_saturation": round(1 / u, 4) if u > 0 else None} for name, u in util.items()}
    first_resource = max(util, key=util.get)
    first_service = min(services, key=lambda n: services[n]["mean"])
    return {"target_s": target_s, "threshold": THRESHOLD, "replications": replications, "tolerance": tolerance,
            "minutes": minutes, "services": services, "resources": resources,
            "first_resource": {"name": first_resource, "multiplier": resources[first_resource]["at_threshold"]},
            "first_service": {"name": first_service, "multiplier": services[first_service]},
            "evaluations": sum(r["evaluations"] for r in reps),
            "saturation": round(saturation(model), 4) if math.isfinite(saturation(model)) else None}
