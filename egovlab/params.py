"""The values a user passes to a verb, with their bounds: defined once here, read the same way by
the CLI (click types) and the API (pydantic fields), so the same request is refused with the same
reason everywhere.

Every number has both bounds: an option that accepts NaN, infinity or 1e300 hangs or exhausts
the machine (`simulate --peak-minutes nan` never finished) instead of saying what is wrong.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import click

from egovlab.inventory.errors import EgovlabError


@dataclass(frozen=True)
class Bounds:
    lo: float
    hi: float

    def click(self, integer: bool = False) -> click.ParamType:
        return click.IntRange(int(self.lo), int(self.hi)) if integer else FiniteFloat(self.lo, self.hi)

    def field(self) -> dict:
        """Keyword arguments for a pydantic `Field`."""
        return {"ge": self.lo, "le": self.hi}


REPLICATIONS = Bounds(2, 200)
SIZING_REPLICATIONS = Bounds(2, 50)
DR_FAILURES = Bounds(10, 100_000)
MORRIS_TRAJECTORIES = Bounds(2, 100)
SOBOL_LEADING = Bounds(2, 20)
SENSITIVITY_REPLICATIONS = Bounds(1, 20)
COST_YEARS = Bounds(0, 50)
STRESS_TOLERANCE = Bounds(0.001, 0.5)
WORKERS = Bounds(1, 256)  # simulation processes (--executor process|dask)
SEED = Bounds(0, 2**32 - 1)  # numpy's SeedSequence takes any int; this keeps JSON and seeds portable
PEAK_MINUTES = Bounds(1, 600)
HORIZON_HOURS = Bounds(1 / 60, 10 * 365 * 24)  # ten years in hourly steps is ~88k steps: seconds
HOSTS_PER_SITE = Bounds(0, 50)
OVS_SHARDS = Bounds(1, 64)
PORT = Bounds(1, 65535)
DRILL_SECONDS = Bounds(15, 600)
DRILL_RATE = Bounds(1, 50)  # submissions per second from the citizen
SOAK_FAULTS = Bounds(1, 1000)
SOAK_HOLD_S = Bounds(0.5, 60)  # how long each soak fault lasts before its repair
PROBE_INTERVAL_MS = Bounds(0.5, 100)
PROBE_SECONDS = Bounds(1, 60)
VM_TIMEOUT_S = Bounds(10, 7200)


class FiniteFloat(click.FloatRange):
    """A float within both bounds; NaN and infinities are refused by name."""

    name = "number"

    def __init__(self, lo: float, hi: float):
        super().__init__(min=lo, max=hi)

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


# Names, one pattern each: the CLI checks them, the API's path and body fields carry them.
PREFIX_PATTERN = r"[a-z]{2,4}"  # a lab's node names are PREFIXs1, PREFIXh1, ...
SCENARIO_NAME_PATTERN = r"[a-z][a-z0-9-]{0,39}"  # a stored scenario (the API's uploads)
DEVICE_PATTERN = r"^[A-Za-z0-9._:-]{1,80}$"  # a lab device: a node name or its scenario name


def data_centre(sc, name: str, field: str = "--fail") -> str:
    """A data centre of the scenario (the drill's target), or the same refusal wherever it is asked."""
    if name not in sc.data_centres():
        raise EgovlabError(f"{field}: '{name}' is not a data centre of '{sc.name}' ({', '.join(sc.data_centres())})")
    return name


_DURATION = re.compile(r"\s*([0-9]{1,9}(?:\.[0-9]{1,6})?)\s*([dhm])\s*")


def parse_horizon(text: str, field: str = "--horizon") -> float:
    """'365d', '24h', '90m' -> hours, within HORIZON_HOURS."""
    m = _DURATION.fullmatch(text)
    if not m:
        raise EgovlabError(f"{field}: expected a duration like '365d', '24h' or '90m', got {text[:40]!r}")
    hours = float(m[1]) * {"d": 24, "h": 1, "m": 1 / 60}[m[2]]
    if not HORIZON_HOURS.lo <= hours <= HORIZON_HOURS.hi:
        raise EgovlabError(f"{field}: {text.strip()} is outside 1m to {HORIZON_HOURS.hi / 24:g}d")
    return hours
