"""Sizing: the fewest servers of every tier, together, that meet a response-time target at the peak.

The tiers are sized jointly in closed form (`analytic`: each station M/M/c, responses summed
over a service's route), then the result is checked by the per-request simulation:
1. the target is refused at once if no number of servers can meet it: with no queueing at any
   sized tier, a service's quantile is its own demands' (and the fixed network's);
2. from the fewest servers that keep every tier stable, a server goes to the tier whose extra
   server lowers the worst service's quantile most (the bottleneck first), until the target holds;
3. every tier then gives back the servers it does not need (others held);
4. the simulation checks the result; if it misses, the tier with the longest wait gets one more.
"""
from __future__ import annotations

import math
import re

from egovlab.inventory.errors import EgovlabError

from . import analytic
from .province import ProvinceModel
from .runs import peak_window

_TARGET = re.compile(r"^\s*p(50|95|99)\s*<\s*([0-9]*\.?[0-9]+)\s*(ms|s)\s*$")
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
MAX_SIMULATED_CORRECTIONS = 10
MAX_STEPS = 2000


def parse_target(text: str) -> tuple[str, float]:
    """'p95<2s' -> ('p95', 2.0); 'p99<800ms' -> ('p99', 0.8)."""
    m = _TARGET.match(text)
    if not m:
        raise EgovlabError(f"--target: expected a percentile bound like 'p95<2s' or 'p99<800ms', got '{text}'")
    value = float(m[2]) / (1000 if m[3] == "ms" else 1)
    if value <= 0:
        raise EgovlabError(f"--target: the bound must be positive, got '{text}'")
    return f"p{m[1]}", value


def size(model: ProvinceModel, servers_per_tier: dict[str, int], target: tuple[str, float], *,
         replications: int = 3, seed: int = 1, minutes: float = 20, executor=None) -> dict:
    quantile, bound = target
    q = QUANTILES[quantile]
    at_peak, factor = model.with_meeting(), model.peak_factor()
    per = {t: model.capacity[t] / n for t, n in servers_per_tier.items()}  # cores per server

    def capacity(n: dict) -> dict:
        return {**model.capacity, **{t: n[t] if n[t] == math.inf else max(1, round(n[t] * per[t])) for t in n}}

    def worst(n: dict) -> tuple[float, str]:
        got = analytic.response_quantiles(at_peak, factor, capacity(n), q)
        if got is None:
            return math.inf, ""
        name = max(got, key=got.get)
        return got[name], name

    floor, name = worst({t: math.inf for t in servers_per_tier})
    if floor == math.inf:
        util = at_peak.utilisation(factor)
        fixed = {k: round(u, 3) for k, u in util.items() if u >= 1}
        raise EgovlabError(f"no server count meets {quantile}<{bound:g}s: {fixed} saturate at the peak "
                           f"whatever the servers (the network or the SAN)")
    if floor > bound:
        raise EgovlabError(f"{quantile}<{bound:g}s is out of reach of any server count: '{name}' takes "
                           f"{floor:.3f} s at its {quantile} with no queueing at {', '.join(servers_per_tier)} "
                           f"(its own demands and the network)")
    util = at_peak.utilisation(factor)
    lowest = {t: max(1, math.floor(util[t] * model.capacity[t] / per[t]) + 1) for t in servers_per_tier}
    n = dict(lowest)
    steps = []
    value, _ = worst(n)
    while value > bound:
        if len(steps) >= MAX_STEPS:
            raise EgovlabError(f"{quantile}<{bound:g}s: not met after {MAX_STEPS} servers more than the fewest "
                               f"stable (the target is at the edge of what servers can reach: {floor:.3f} s)")
        options = {t: worst({**n, t: n[t] + 1})[0] for t in n}
        tier = min(options, key=lambda t: (options[t], t))
        n[tier] += 1
        value = options[tier]
        steps.append({"added": tier, "servers": dict(n), f"worst_{quantile}_s": round(value, 4)})
    for tier in n:  # give back what the bottleneck's servers made unneeded
        while n[tier] > lowest[tier] and worst({**n, tier: n[tier] - 1})[0] <= bound:
            n[tier] -= 1
    theory, _ = worst(n)
    simulated = None
    for _ in range(MAX_SIMULATED_CORRECTIONS + 1):
        peak = peak_window(model, replications=replications, seed=seed, minutes=minutes, capacity=capacity(n),
                           target_s=bound, executor=executor)
        simulated = max((s[quantile] for s in peak["services"].values()), key=lambda e: e["mean"])
        if simulated["mean"] <= bound:
            break
        waits = analytic.station_waits(at_peak, factor, capacity(n))
        tier = max(n, key=lambda t: waits[t].mean_wait)
        n[tier] += 1
        steps.append({"added": tier, "servers": dict(n), "why": "the simulation missed the target"})
    else:
        raise EgovlabError(f"{quantile}<{bound:g}s: the simulation still misses it after "
                           f"{MAX_SIMULATED_CORRECTIONS} servers more than theory asks for")
    return {"target": f"{quantile}<{bound:g}s", "method": "joint M/M/c (bottleneck first), checked by simulation",
            f"theory_worst_{quantile}_s": round(theory, 4), f"simulated_worst_{quantile}_s": simulated,
            "steps": steps,
            "tiers": {t: {"current_servers": servers_per_tier[t], "needed_servers": n[t], "cores_per_server": per[t],
                          "fewest_stable": lowest[t]} for t in n}}
