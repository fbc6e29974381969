"""Sizing: the smallest number of servers per tier that meets a response-time target at the peak."""
from __future__ import annotations

import math
import re

from egovlab.inventory.errors import EgovlabError

from .province import ProvinceModel
from .runs import peak_window

_TARGET = re.compile(r"^\s*p(50|95|99)\s*<\s*([0-9]*\.?[0-9]+)\s*(ms|s)\s*$")


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
    """Per tier (others held as they are): fewest servers whose worst service meets the target."""
    quantile, bound = target
    cores_per_server = {t: model.capacity[t] / servers_per_tier[t] for t in servers_per_tier}
    util = model.utilisation(model.peak_factor())
    result = {"target": f"{quantile}<{bound:g}s", "tiers": {}}
    for tier in servers_per_tier:
        per = cores_per_server[tier]
        # Below this count the tier is saturated at the peak: no steady state, no need to simulate.
        n = max(1, math.floor(util[tier] * model.capacity[tier] / per) + 1)
        tried = []
        while n <= max(4 * servers_per_tier[tier], 64):
            capacity = dict(model.capacity)
            capacity[tier] = max(1, round(n * per))
            try:
                peak = peak_window(model, replications=replications, seed=seed, minutes=minutes,
                                   capacity=capacity, target_s=bound, executor=executor)
            except EgovlabError:
                n += 1
                continue
            worst = max(s[quantile]["mean"] for s in peak["services"].values())
            tried.append({"servers": n, "worst": round(worst, 4)})
            if worst <= bound:
                break
            n += 1
        else:
            raise EgovlabError(f"tier '{tier}': no server count up to {n - 1} meets {quantile}<{bound:g}s")
        result["tiers"][tier] = {"current_servers": servers_per_tier[tier], "needed_servers": n,
                                 "cores_per_server": per, f"worst_{quantile}_s": tried[-1]["worst"],
                                 "tried": tried}
    return result
