"""A SimPy engine for networks of queues: Poisson (or profiled) arrivals, multi-server stations
with optional finite capacity, requests routed through a list of stations (web -> app -> DB ...).

The same engine serves the validation suite (configured as M/M/1, M/M/c, M/M/c/K, M/G/1 and a
tandem, it must reproduce the closed forms in `queueing.py`) and the province model.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable

import simpy

from egovlab.inventory.errors import EgovlabError


@dataclass(frozen=True)
class Dist:
    """A service-time distribution: kind 'exp', 'det', 'erlang' (k phases) or 'hyper2' (given scv)."""

    kind: str
    mean: float
    k: int = 1
    scv: float = 1.0

    def __post_init__(self):
        if self.mean <= 0:
            raise EgovlabError(f"service time mean must be positive, got {self.mean}")
        if self.kind not in ("exp", "det", "erlang", "hyper2"):
            raise EgovlabError(f"unknown distribution '{self.kind}'")

    @property
    def variation(self) -> float:
        """Squared coefficient of variation (variance / mean^2)."""
        return {"exp": 1.0, "det": 0.0, "erlang": 1.0 / self.k, "hyper2": self.scv}[self.kind]

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        m = self.mean
        if self.kind == "exp":
            return lambda: rng.expovariate(1 / m)
        if self.kind == "det":
            return lambda: m
        if self.kind == "erlang":
            k = self.k
            return lambda: rng.gammavariate(k, m / k)
        # Balanced-means two-phase hyperexponential with the requested scv (>= 1).
        if self.scv < 1:
            raise EgovlabError("hyper2 needs scv >= 1")
        p = 0.5 * (1 + math.sqrt((self.scv - 1) / (self.scv + 1)))
        m1, m2 = m / (2 * p), m / (2 * (1 - p))
        return lambda: rng.expovariate(1 / m1) if rng.random() < p else rng.expovariate(1 / m2)


@dataclass
class Station:
    name: str
    servers: int
    service: Dist
    capacity: int | None = None  # most requests in the station (queue + service); None: unbounded
    # filled by the run
    busy_time: float = 0.0
    blocked: int = 0
    served: int = 0
    wait_total: float = 0.0
    resource: simpy.Resource | None = field(default=None, repr=False)


@dataclass
class RequestClass:
    """A stream of requests: its arrival rate (constant or of time) and the stations it visits,
    each with this class's own service-time distribution there."""

    name: str
    rate: float | Callable[[float], float]
    route: list[tuple[int, Dist]]  # (station index, service time there)
    rate_bound: float | None = None  # bounds a time-varying rate (thinning)


@dataclass
class RunResult:
    responses: list[float]  # end-to-end response times (all classes) of requests after warm-up
    blocked: int
    arrivals: int
    horizon: float
    measured: float  # length of the measured window (after warm-up)
    stations: dict[str, dict]
    events: int
    by_class: dict[str, dict] = field(default_factory=dict)  # name -> responses, arrivals, blocked


def run(stations: list[Station], arrival_rate: float | Callable[[float], float], *, horizon: float,
        warmup: float = 0.0, seed: int = 1, rate_bound: float | None = None) -> RunResult:
    """One Poisson stream (rate constant or a function of time) visiting every station in order."""
    route = [(i, st.service) for i, st in enumerate(stations)]
    return run_classes(stations, [RequestClass("all", arrival_rate, route, rate_bound)],
                       horizon=horizon, warmup=warmup, seed=seed)


def run_classes(stations: list[Station], classes: list[RequestClass], *, horizon: float, warmup: float = 0.0,
                seed: int = 1) -> RunResult:
    if horizon <= warmup:
        raise EgovlabError(f"horizon {horizon} must exceed the warm-up {warmup}")
    rng = random.Random(seed)
    env = simpy.Environment()
    for st in stations:
        st.resource = simpy.Resource(env, capacity=st.servers)
        st.busy_time = st.wait_total = 0.0
        st.blocked = st.served = 0
    responses: list[float] = []
    per_class = {c.name: {"responses": [], "arrivals": 0, "blocked": 0} for c in classes}
    counts = {"arrivals": 0, "blocked": 0}

    def request(env, born: float, route, tally):
        for st, sample in route:
            res = st.resource
            if st.capacity is not None and len(res.queue) + res.count >= st.capacity:
                if born >= warmup:
                    st.blocked += 1
                    counts["blocked"] += 1
                    tally["blocked"] += 1
                return
            with res.request() as req:
                queued = env.now
                yield req
                start = env.now
                yield env.timeout(sample())
                if born >= warmup:
                    st.wait_total += start - queued
                    st.served += 1
                lo = max(start, warmup)  # busy time counts inside the measured window only
                if env.now > lo:
                    st.busy_time += env.now - lo
        if born >= warmup:
            responses.append(env.now - born)
            tally["responses"].append(env.now - born)

    def source(env, cls: RequestClass):
        const = not callable(cls.rate)
        bound = cls.rate if const else cls.rate_bound
        if bound is None or bound <= 0:
            raise EgovlabError(f"class '{cls.name}': a time-varying arrival rate needs a positive rate_bound")
        route = [(stations[i], dist.sampler(rng)) for i, dist in cls.route]
        tally = per_class[cls.name]
        while True:
            yield env.timeout(rng.expovariate(bound))
            if not const and rng.random() * bound > cls.rate(env.now):
                continue  # thinning of a non-homogeneous Poisson process
            if env.now >= warmup:
                counts["arrivals"] += 1
                tally["arrivals"] += 1
            env.process(request(env, env.now, route, tally))

    for cls in classes:
        env.process(source(env, cls))
    env.run(until=horizon)
    measured = horizon - warmup
    per_station = {st.name: {"utilisation": st.busy_time / (measured * st.servers), "served": st.served,
                             "blocked": st.blocked, "mean_wait": st.wait_total / st.served if st.served else 0.0}
                   for st in stations}
    # SimPy numbers every scheduled event; the next number is how many were scheduled.
    return RunResult(responses, counts["blocked"], counts["arrivals"], horizon, measured, per_station,
                     events=next(env._eid), by_class=per_class)
