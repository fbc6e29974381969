"""The province's simulations: a per-request peak window, and a year in hourly steps.

The long horizon uses aggregate (fluid) load: SimPy drives the failures and repairs of servers,
Internet lines and the whole data centre, and an hourly process turns each hour's expected
arrivals into utilisation and response time per tier with M/M/c formulas, weighting every
figure by the requests of that hour. The peak window simulates every request (the engine that
the validation suite checks against theory). Replications run in parallel processes.
"""
from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass

import simpy

from egovlab.inventory.errors import EgovlabError

from . import analytic
from .engine import run_classes
from .executor import Executor, ProcessExecutor, task_seeds
from .province import ProvinceModel
from .stats import count_estimate, estimate, percentile

YEAR_START = dt.datetime(2025, 1, 1)
# Seed streams: each kind of run draws its tasks' seeds from its own stream of the run's seed.
PEAK_STREAM, YEAR_STREAM = 1, 2


# -- peak window: every request --------------------------------------------------------------

def peak_replication(args) -> dict:
    model, factor, minutes, seed, capacity, timeout_s, target_s = args
    stations, classes = model.queueing_network(factor, capacity)
    horizon = minutes * 60
    res = run_classes(stations, classes, horizon=horizon + 300, warmup=300, seed=seed)
    out = {"events": res.events, "stations": {n: s["utilisation"] for n, s in res.stations.items()}, "services": {}}
    for name, tally in res.by_class.items():
        rs = sorted(tally["responses"])
        out["services"][name] = {
            "mean": sum(rs) / len(rs) if rs else float("nan"), "p50": percentile(rs, 0.5),
            "p95": percentile(rs, 0.95), "p99": percentile(rs, 0.99), "requests": len(rs),
            "sla": sum(1 for r in rs if r <= target_s) / len(rs) if rs else 0.0,
            "timeouts": sum(1 for r in rs if r > timeout_s)}
    return out


def peak_window(model: ProvinceModel, *, replications: int, seed: int, minutes: float = 60,
                capacity: dict[str, int] | None = None, target_s: float = 2.0, timeout_s: float = 30.0,
                factor: float | None = None, executor: Executor | None = None) -> dict:
    """The busiest hour of the year (peak daily x weekly x month-end), request by request."""
    factor = model.peak_factor() if factor is None else factor
    model = model.with_meeting()  # the worst case: a full-size video conference in the busiest hour
    util = model.utilisation(factor, capacity)
    overloaded = {k: round(v, 3) for k, v in util.items() if v >= 1}
    if overloaded:
        raise EgovlabError(f"no steady state at the peak: utilisation >= 1 at {overloaded} "
                           f"(add capacity or lower the load)")
    tasks = [(model, factor, minutes, s, capacity, timeout_s, target_s)
             for s in task_seeds(seed, replications, PEAK_STREAM)]
    reps = (executor or ProcessExecutor()).map(peak_replication, tasks, "peak-hour replications")
    services = {}
    for name in reps[0]["services"]:
        per = [r["services"][name] for r in reps]
        services[name] = {k: estimate([p[k] for p in per], "nonneg").as_dict(4) for k in ("mean", "p50", "p95", "p99")}
        services[name]["sla"] = estimate([p["sla"] for p in per], "share").as_dict(4)
        services[name]["requests_per_replication"] = round(sum(p["requests"] for p in per) / len(per))
        services[name]["timeouts"] = sum(p["timeouts"] for p in per)
    stations = {n: estimate([r["stations"][n] for r in reps], "share").as_dict(4) for n in reps[0]["stations"]}
    return {"factor": round(factor, 4), "minutes": minutes, "replications": replications, "services": services,
            "video_conference_mbps": round(model.vc_bps / 1e6, 3),
            "utilisation": stations, "events": sum(r["events"] for r in reps), "target_s": target_s}


# -- a year in hours, with failures ------------------------------------------------------------

@dataclass
class YearSettings:
    server_mtbf_h: float
    server_mttr_h: float
    link_mtbf_h: float
    link_mttr_h: float
    dc_mtbf_h: float
    dc_mttr_h: float
    rto_s: float  # failover time to the backup DC (detection + redirection + standby start)
    target_s: float


def _year_replication(args) -> dict:
    model, settings, hours, seed, backup_capacity, servers_per_tier = args
    rng = random.Random(seed)
    env = simpy.Environment()
    up = {tier: servers_per_tier[tier] for tier in ("web", "app", "db")}
    lines_up = {"n": model.channel_links["internet"]}
    dc = {"state": "up"}  # up | failing-over | backup
    meeting = {"on": 0}
    stats = {"requests": 0.0, "sla_ok": 0.0, "unavailable": 0.0, "overloaded": 0.0, "server_failures": 0,
             "link_failures": 0, "dc_failures": 0, "hours_degraded": 0, "meetings": 0}

    def server(tier: str):
        while True:
            yield env.timeout(rng.expovariate(1 / settings.server_mtbf_h))
            up[tier] -= 1
            stats["server_failures"] += 1
            yield env.timeout(rng.expovariate(1 / settings.server_mttr_h))
            up[tier] += 1

    def line():
        while True:
            yield env.timeout(rng.expovariate(1 / settings.link_mtbf_h))
            lines_up["n"] -= 1
            stats["link_failures"] += 1
            yield env.timeout(rng.expovariate(1 / settings.link_mttr_h))
            lines_up["n"] += 1

    def site():
        while True:
            yield env.timeout(rng.expovariate(1 / settings.dc_mtbf_h))
            stats["dc_failures"] += 1
            dc["state"] = "failing-over"
            # The outage is shorter than the meter's hour: count the requests it loses directly.
            factor = model.profile(env.now * 3600, YEAR_START)
            stats["unavailable"] += sum(model.rate(s, factor) for s in model.services) * settings.rto_s
            yield env.timeout(settings.rto_s / 3600)
            dc["state"] = "backup"
            yield env.timeout(rng.expovariate(1 / settings.dc_mttr_h))
            dc["state"] = "up"

    def meetings():
        """Video conferences in working hours (Mon-Fri, 8-17): each holds the uplink for its length."""
        if not model.vc_meetings_per_hour:
            return
        while True:
            yield env.timeout(rng.expovariate(model.vc_meetings_per_hour))
            when = YEAR_START + dt.timedelta(hours=env.now)
            if when.weekday() >= 5 or not 8 <= when.hour < 17:
                continue
            meeting["on"] += 1
            stats["meetings"] += 1
            env.process(end_meeting())

    def end_meeting():
        yield env.timeout(model.vc_duration_h)
        meeting["on"] -= 1

    def meter():
        while True:
            factor = model.profile(env.now * 3600, YEAR_START)
            demand = sum(model.rate(s, factor) for s in model.services) * 3600
            stats["requests"] += demand
            if dc["state"] != "failing-over":
                cores_per_server = {t: model.capacity[t] / servers_per_tier[t] for t in up}
                cap = dict(backup_capacity) if dc["state"] == "backup" else \
                    {t: max(0, round(up[t] * cores_per_server[t])) for t in up}
                cap["san"] = model.capacity["san"] if dc["state"] == "up" else backup_capacity["san"]
                links = {"internet": max(0, lines_up["n"]) if dc["state"] == "up" else 1, "tslcd": 1}
                ok_share = _hour_sla(model.with_meeting(meeting["on"] > 0), factor, cap, links, settings.target_s)
                if ok_share is None:
                    stats["overloaded"] += demand
                    stats["hours_degraded"] += 1
                else:
                    stats["sla_ok"] += demand * ok_share
                    if ok_share < 1:
                        stats["hours_degraded"] += 1
            yield env.timeout(1)

    for tier in up:
        for _ in range(servers_per_tier[tier]):
            env.process(server(tier))
    for _ in range(model.channel_links["internet"]):
        env.process(line())
    env.process(site())
    env.process(meetings())
    env.process(meter())
    env.run(until=hours)
    served = stats["requests"] - stats["unavailable"] - stats["overloaded"]
    return {"availability": served / stats["requests"], "sla": stats["sla_ok"] / stats["requests"],
            "unavailable_requests": stats["unavailable"], "overloaded_requests": stats["overloaded"],
            "server_failures": stats["server_failures"], "link_failures": stats["link_failures"],
            "dc_failures": stats["dc_failures"], "hours_degraded": stats["hours_degraded"],
            "video_conferences": stats["meetings"],
            "events": next(env._eid)}


def _hour_sla(model: ProvinceModel, factor: float, cap: dict[str, int], links: dict[str, int],
              target_s: float) -> float | None:
    """Share of this hour's requests whose estimated p95 response meets the target (None: overload)."""
    means = analytic.mean_responses(model, factor, cap, links)
    if means is None:
        return None
    total, ok = 0.0, 0.0
    for svc in model.services:
        rate = model.rate(svc, factor)
        p95 = means[svc.name] * math.log(20)  # exponential tail approximation of the sojourn time
        total += rate
        ok += rate if p95 <= target_s else 0.0
    return ok / total if total else 1.0


def year(model: ProvinceModel, settings: YearSettings, *, horizon_h: float, replications: int, seed: int,
         backup_capacity: dict[str, int], servers_per_tier: dict[str, int],
         executor: Executor | None = None) -> dict:
    tasks = [(model, settings, horizon_h, s, backup_capacity, servers_per_tier)
             for s in task_seeds(seed, replications, YEAR_STREAM)]
    reps = (executor or ProcessExecutor()).map(_year_replication, tasks, "yearly replications")
    out = {"horizon_h": horizon_h, "replications": replications, "events": sum(r["events"] for r in reps)}
    for key, domain in YEAR_FIGURES.items():
        values = [r[key] for r in reps]
        out[key] = (count_estimate(values) if domain == "count" else estimate(values, domain)).as_dict(6)
    return out


# Each yearly figure's domain, which decides its confidence interval (stats.py).
YEAR_FIGURES = {"availability": "share", "sla": "share", "unavailable_requests": "nonneg",
                "overloaded_requests": "nonneg", "server_failures": "count", "link_failures": "count",
                "dc_failures": "count", "hours_degraded": "count", "video_conferences": "count"}
