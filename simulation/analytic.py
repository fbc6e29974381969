"""The province model in closed form: each station as M/M/c, the services' response times from them.

A station serves several services with different demands; it is treated as M/M/c with the
rate-weighted mean demand (the approximation the yearly model has always used). A request's
time at a station is its own service time plus, with the Erlang C probability, an exponential
wait of rate c/d - lambda. Its response time is the sum over its route (independent stations,
as in a Jackson network); quantiles of that sum are computed from a fixed set of random
draws, so the same inputs always give the same figure and two capacities compare without noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import queueing
from .province import ProvinceModel

DRAWS = 20_000


@dataclass(frozen=True)
class StationWait:
    p_wait: float  # Erlang C
    wait_rate: float  # c / mean demand - lambda (per second)
    mean_wait: float


def station_waits(model: ProvinceModel, factor: float, cap: dict[str, int],
                  links: dict[str, int] | None = None) -> dict[str, StationWait] | None:
    """Every station's waiting time at the load factor; None when a station has no steady state."""
    links = links or model.channel_links
    load: dict[str, float] = {}  # Erlangs
    rate: dict[str, float] = {}  # requests per second
    for svc in model.services:
        for tier, d in model.tier_demand(svc).items():
            if d > 0:
                key = model.station_name(tier, svc.channel)
                load[key] = load.get(key, 0.0) + model.rate(svc, factor) * d
                rate[key] = rate.get(key, 0.0) + model.rate(svc, factor)
    out = {}
    for key, a in load.items():
        servers = links[key[4:]] if key.startswith("net:") else cap[key]
        if servers == math.inf:  # unbounded: nobody waits
            out[key] = StationWait(0.0, math.inf, 0.0)
            continue
        if servers <= 0 or a >= servers:
            return None
        mean_d = a / rate[key]
        p = queueing.erlang_c(servers, a)
        out[key] = StationWait(p, (servers - a) / mean_d, p * mean_d / (servers - a))
    return out


def mean_responses(model: ProvinceModel, factor: float, cap: dict[str, int],
                   links: dict[str, int] | None = None) -> dict[str, float] | None:
    waits = station_waits(model, factor, cap, links)
    if waits is None:
        return None
    return {svc.name: sum(d + waits[model.station_name(t, svc.channel)].mean_wait
                          for t, d in model.tier_demand(svc).items() if d > 0) for svc in model.services}


def response_quantiles(model: ProvinceModel, factor: float, cap: dict[str, int], q: float,
                       links: dict[str, int] | None = None) -> dict[str, float] | None:
    """Each service's q-quantile of response time (seconds); None when a station has no steady state."""
    waits = station_waits(model, factor, cap, links)
    if waits is None:
        return None
    rng = np.random.default_rng(0)  # the same draws for every call: deterministic, comparable
    out = {}
    for svc in model.services:
        route = [(model.station_name(t, svc.channel), d) for t, d in model.tier_demand(svc).items() if d > 0]
        total = np.zeros(DRAWS)
        for station, d in route:
            w = waits[station]
            service = rng.exponential(d, DRAWS)
            waited = (rng.random(DRAWS) < w.p_wait) * rng.exponential(1 / w.wait_rate, DRAWS)  # 1/inf: 0
            total += service + waited
        out[svc.name] = float(np.quantile(total, q))
    return out
