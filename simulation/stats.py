"""Estimates with 95 % confidence intervals that respect their figure's domain.

- any real value, or a non-negative one (a time) and a share (within [0, 1]) whose Student-t
  interval stays inside its domain: Student t over the replications;
- a non-negative figure or a share whose t interval would leave its domain: a bootstrap
  percentile interval of the mean (seeded, so the same values give the same bytes), which lies
  within the values' own range;
- a count of events (failures, meetings): the exact Poisson (Garwood) interval of the total;
- successes out of independent trials (failovers meeting a target): the Wilson score interval.
The method is named in every interval's output.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

Domain = Literal["real", "nonneg", "share"]
BOUNDS = {"real": (-math.inf, math.inf), "nonneg": (0.0, math.inf), "share": (0.0, 1.0)}
BOOTSTRAP_RESAMPLES = 4000


def t975(df: int) -> float:
    return float(sps.t.ppf(0.975, df))


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int
    method: str = "student-t"

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def as_dict(self, digits: int = 6) -> dict:
        return {"mean": round(self.mean, digits), "ci95": [round(self.low, digits), round(self.high, digits)],
                "replications": self.n, "ci_method": self.method}


def estimate(values: list[float], domain: Domain = "real") -> Estimate:
    """Mean and 95 % CI of per-replication values of a figure living in `domain`."""
    n = len(values)
    mean = statistics.fmean(values)
    lo_bound, hi_bound = BOUNDS[domain]
    mean = min(max(mean, lo_bound), hi_bound)  # float rounding of a mean of in-domain values
    if n < 2:
        return Estimate(mean, mean, mean, n)
    half = t975(n - 1) * statistics.stdev(values) / math.sqrt(n)
    if lo_bound <= mean - half and mean + half <= hi_bound:
        return Estimate(mean, mean - half, mean + half, n)
    rng = np.random.default_rng(0)
    means = rng.choice(np.asarray(values, dtype=float), size=(BOOTSTRAP_RESAMPLES, n)).mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return Estimate(mean, max(lo_bound, float(low)), min(hi_bound, float(high)), n, "bootstrap")


def count_estimate(counts: list[int]) -> Estimate:
    """Mean count per replication with the exact Poisson interval of the total (never below 0)."""
    n = len(counts)
    total = sum(counts)
    low = sps.chi2.ppf(0.025, 2 * total) / 2 if total > 0 else 0.0
    high = sps.chi2.ppf(0.975, 2 * total + 2) / 2
    return Estimate(total / n, float(low) / n, float(high) / n, n, "poisson-exact")


def share_estimate(successes: int, trials: int, replications: int) -> Estimate:
    """A share of independent trials with the Wilson score interval (within [0, 1])."""
    if trials < 1:
        raise ValueError("a share needs at least one trial")
    z = float(sps.norm.ppf(0.975))
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    # Exact at p = 0 or 1 in theory; the clamps absorb float rounding there.
    return Estimate(p, min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)), replications, "wilson")


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) of sorted values, by linear interpolation."""
    if not sorted_values:
        return float("nan")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
