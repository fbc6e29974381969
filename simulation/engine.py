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
class RunResult:
    responses: list[float]  # end-to-end response times of requests that arrived after warm-up
    blocked: int
    arrivals: int
    horizon: float
    measured: float  # length of the measured window (after warm-up)
    stations: dict[str, dict]
    events: int


def run(stations: list[Station], arrival_rate: float | Callable[[float], float], *, horizon: float,
        warmup: float = 0.0, seed: int = 1, rate_bound: float | None = None, timeout: float | None = None) -> RunResult:
    """Simulate requests arriving (Poisson, rate constant or a function of time) and visiting
    every station in order. `rate_bound` bounds a time-varying rate (thinning). Requests whose
    response would exceed `timeout` still complete but are counted in the response list as is.
    """
    if horizon <= warmup:
        raise EgovlabError(f"horizon {horizon} must exceed the warm-up {warmup}")
    rng = random.Random(seed)
    env = simpy.Environment()
    for st in stations:
        st.resource = simpy.Resource(env, capacity=st.servers)
        st.busy_time = st.wait_total = 0.0
        st.blocked = st.served = 0
    samplers = [st.service.sampler(rng) for st in stations]
    responses: list[float] = []
    counts = {"arrivals": 0, "blocked": 0}
    const = not callable(arrival_rate)
    bound = arrival_rate if const else rate_bound
    if bound is None or bound <= 0:
        raise EgovlabError("a time-varying arrival rate needs a positive rate_bound")

    def request(env, born: float):
        for st, sample in zip(stations, samplers):
            res = st.resource
            if st.capacity is not None and len(res.queue) + res.count >= st.capacity:
                if born >= warmup:
                    st.blocked += 1
                    counts["blocked"] += 1
                return
            with res.request() as req:
                queued = env.now
                yield req
                s = sample()
                start = env.now
                yield env.timeout(s)
                if born >= warmup:
                    st.wait_total += start - queued
                    st.served += 1
                # Busy time counts inside the measured window only.
                lo = max(start, warmup)
                if env.now > lo:
                    st.busy_time += env.now - lo
        if born >= warmup:
            responses.append(env.now - born)

    def source(env):
        while True:
            yield env.timeout(rng.expovariate(bound))
            if not const and rng.random() * bound > arrival_rate(env.now):
                continue  # thinning of a non-homogeneous Poisson process
            if env.now >= warmup:
                counts["arrivals"] += 1
            env.process(request(env, env.now))

    env.process(source(env))
    env.run(until=horizon)
    measured = horizon - warmup
    per_station = {st.name: {"utilisation": st.busy_time / (measured * st.servers), "served": st.served,
                             "blocked": st.blocked, "mean_wait": st.wait_total / st.served if st.served else 0.0}
                   for st in stations}
    # SimPy numbers every scheduled event; the next number is how many were scheduled.
    return RunResult(responses, counts["blocked"], counts["arrivals"], horizon, measured, per_station,
                     events=next(env._eid))

