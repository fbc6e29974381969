"""Disaster recovery: the primary data centre fails, the backup takes over. RTO and RPO per strategy.

A SimPy model of many independent failures. For each: detection, then redirection (DNS/route
takeover), then the standby's start (hot: running; warm: services to start; cold: restore
from the last backup), gives the RTO; the data written since the last replicated point gives
the RPO (synchronous replication: none; asynchronous: the replication lag at the failure
instant; cold standby: everything since the last backup). Citizens' submissions keep arriving
at the peak rate of the public-service portal: those arriving during the outage fail, those
acknowledged inside the RPO window are lost.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import simpy

from egovlab.inventory.errors import EgovlabError
from egovlab.inventory.scenario import Scenario
from egovlab.inventory.schema import DRCosts, Figure, Resilience

from .executor import Executor, ProcessExecutor, task_seeds
from .stats import estimate, percentile, share_estimate

STANDBY = ("hot", "warm", "cold")
REPLICATION = ("sync", "async")

# Stated assumptions: the document gives no recovery procedure (DIGEST §3.6).
START_MEAN_S = {"hot": 0.0, "warm": 300.0, "cold": 4 * 3600.0}
BACKUP_INTERVAL_S = 24 * 3600.0  # cold standby restores the nightly backup
DR_STREAM = 3  # the seed stream of the strategies' replications (executor.task_seeds)


@dataclass(frozen=True)
class Strategy:
    standby: str
    replication: str

    @property
    def name(self) -> str:
        return f"{self.standby}/{self.replication}" if self.standby != "cold" else "cold/backup"


def strategies() -> list[Strategy]:
    out = [Strategy(s, r) for s in ("hot", "warm") for r in REPLICATION]
    return out + [Strategy("cold", "backup")]


def failovers(args) -> dict:
    r, strategy, failures, seed, submit_rate = args
    # Two streams: the outage times draw a fixed count of numbers per failure, so changing a rate
    # (a sensitivity sample) changes the submissions drawn but not the outages (common random numbers).
    rng = random.Random(seed)
    submissions = random.Random(seed + 1)
    env = simpy.Environment()
    rto: list[float] = []
    rpo: list[float] = []
    failed: list[int] = []
    lost: list[int] = []

    def failure():
        for _ in range(failures):
            t0 = env.now
            detect = rng.expovariate(1 / r.detection_s.value) if r.detection_s.value else 0.0
            redirect = rng.expovariate(1 / r.redirection_s.value) if r.redirection_s.value else 0.0
            start_mean = START_MEAN_S[strategy.standby]
            start = rng.expovariate(1 / start_mean) if start_mean else 0.0
            yield env.timeout(detect + redirect + start)
            outage = env.now - t0
            rto.append(outage)
            if strategy.standby == "cold":
                window = rng.uniform(0, BACKUP_INTERVAL_S)
            elif strategy.replication == "sync":
                window = 0.0
            else:
                window = rng.expovariate(1 / r.replication_lag_s.value) if r.replication_lag_s.value else 0.0
            rpo.append(window)
            # Poisson submissions: during the outage they fail; inside the RPO window, acknowledged and lost.
            failed.append(_poisson(submissions, submit_rate * outage))
            lost.append(_poisson(submissions, submit_rate * window))
            yield env.timeout(3600)

    env.process(failure())
    env.run()
    return {"rto": rto, "rpo": rpo, "failed": failed, "lost": lost}


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:  # normal approximation for large means
        return max(0, round(rng.gauss(mean, mean ** 0.5)))
    n, p, limit = 0, 1.0, pow(2.718281828459045, -mean)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


def submission_rate(model) -> float:
    """Citizens' submissions per second at the peak: one per 20 portal requests (assumed)."""
    portal = next((s for s in model.services if s.name == "cong-dvc"), model.services[0])
    return model.rate(portal, model.peak_factor()) / 20


def compare(sc: Scenario, *, failures: int = 1000, replications: int = 10, seed: int = 1,
            submit_rate: float | None = None, executor: Executor | None = None) -> dict:
    """RTO/RPO distributions per strategy, each summary with a 95 % CI over replications."""
    r = sc.spec.resilience
    if r is None:
        raise EgovlabError(f"{sc.source}: resilience: the scenario has no resilience section")
    if failures < 1 or replications < 1:
        raise EgovlabError("failures and replications must be at least 1")
    if submit_rate is None:
        from .province import build
        submit_rate = submission_rate(build(sc))
    out = {"failures_per_replication": failures, "replications": replications,
           "submissions_per_s": round(submit_rate, 4), "targets": {"rto_s": r.rto_target_s.value,
                                                                 "rpo_s": r.rpo_target_s.value},
           "strategies": {}}
    kinds = strategies()
    seeds = task_seeds(seed, len(kinds) * replications, DR_STREAM)
    tasks = [(r, strategy, failures, seeds[k * replications + i], submit_rate)
             for k, strategy in enumerate(kinds) for i in range(replications)]
    done = (executor or ProcessExecutor()).map(failovers, tasks, "failovers per strategy")
    for k, strategy in enumerate(kinds):
        reps = done[k * replications:(k + 1) * replications]
        summary = {}
        for metric in ("rto", "rpo", "failed", "lost"):
            per = [sorted(x[metric]) for x in reps]
            summary[metric] = {
                "mean": estimate([sum(p) / len(p) for p in per], "nonneg").as_dict(3),
                "p50": estimate([percentile(p, 0.5) for p in per], "nonneg").as_dict(3),
                "p95": estimate([percentile(p, 0.95) for p in per], "nonneg").as_dict(3),
                "p99": estimate([percentile(p, 0.99) for p in per], "nonneg").as_dict(3)}
        trials = failures * replications
        summary["meets_rto"] = share_estimate(sum(v <= r.rto_target_s.value for x in reps for v in x["rto"]),
                                              trials, replications).as_dict(4)
        summary["meets_rpo"] = share_estimate(sum(v <= r.rpo_target_s.value for x in reps for v in x["rpo"]),
                                              trials, replications).as_dict(4)
        summary["samples_rto"] = reps[0]["rto"][:200]
        summary["samples_rpo"] = reps[0]["rpo"][:200]
        out["strategies"][strategy.name] = summary
    out["assumptions"] = {"standby_start_mean_s": START_MEAN_S, "backup_interval_s": BACKUP_INTERVAL_S,
                          "submissions": "one per 20 portal requests at the peak hour"}
    return out


def replication(model, r: Resilience, dci_bps: float | None) -> dict:
    """Asynchronous replication over the DC interconnect at the peak hour.

    Writes (each request's body, assumed) queue on the interconnect as on one M/M/1 server: a
    write of mean size s waits s/(B - W) on average at write rate W and bandwidth B, with an
    exponential tail, so the p95 lag is lag0 + ln(20) s/(B - W), lag0 the apply delay
    (`replication_lag_s`). For the RPO target T this needs B = W + ln(20) s/(T - lag0).
    """
    peak = model.peak_factor()
    rate = sum(model.rate(s, peak) for s in model.services if s.write_kb > 0)
    write_bps = sum(model.rate(s, peak) * s.write_kb * 8000 for s in model.services)
    mean_bits = write_bps / rate if rate else 0.0
    lag0, target = r.replication_lag_s.value, r.rpo_target_s.value
    out = {"write_mbps_at_peak": round(write_bps / 1e6, 3), "mean_write_kb": round(mean_bits / 8000, 3),
           "apply_lag_s": lag0, "rpo_target_s": target,
           "model": "writes queue on the interconnect as M/M/1; p95 lag = lag0 + ln(20) s / (B - W)"}
    out["needed_mbps_for_target"] = round((write_bps + math.log(20) * mean_bits / (target - lag0)) / 1e6, 3) \
        if target > lag0 else None  # the apply delay alone is past the target: no bandwidth meets it
    if dci_bps:
        out["interconnect_mbps"] = round(dci_bps / 1e6, 3)
        out["achieved_rpo_p95_s"] = round(lag0 + math.log(20) * mean_bits / (dci_bps - write_bps), 4) \
            if dci_bps > write_bps else None  # the writes outrun the link: the lag grows without bound
    return out


def rank(strategies: dict, costs: DRCosts, targets: dict, years: int) -> list[dict]:
    """The strategies whose p95 RTO and RPO meet the targets, cheapest first over `years`; then the rest."""
    rows = []
    for name, s in strategies.items():
        rto, rpo = s["rto"]["p95"]["mean"], s["rpo"]["p95"]["mean"]
        missing = [f"{what} p95 {value:g} s > {targets[key]:g} s" for what, value, key in
                   (("RTO", rto, "rto_s"), ("RPO", rpo, "rpo_s")) if value > targets[key]]
        cost = costs.strategies.get(name)
        row = {"strategy": name, "rto_p95_s": rto, "rpo_p95_s": rpo, "meets": not missing, "why_not": missing}
        if cost is None:
            row["why_not"] = missing + ["no cost given"]
        else:
            row.update(capital=cost.capital.value, yearly=cost.yearly.value,
                       total=cost.capital.value + years * cost.yearly.value)
        rows.append(row)
    ranked = sorted((r for r in rows if r["meets"] and "total" in r), key=lambda r: (r["total"], r["strategy"]))
    for k, row in enumerate(ranked, 1):
        row["rank"] = k
    return ranked + [r for r in rows if r not in ranked]


def predict(sc: Scenario, *, replication: str, detection_s: float, redirection_s: float, submit_rate: float,
            failures: int = 1000, seed: int = 1) -> dict:
    """The model's RTO/RPO for one strategy with a drill's own settings (hot standby: the
    services already run in the backup DC; detection and redirection as the drill does them)."""
    r = sc.spec.resilience
    if r is None:
        raise EgovlabError(f"{sc.source}: resilience: the scenario has no resilience section")
    fig = lambda v, why: Figure(value=v, basis="assumption", ref=why)  # noqa: E731
    drill_r: Resilience = r.model_copy(update={"detection_s": fig(detection_s, "the drill's health monitor"),
                                               "redirection_s": fig(redirection_s,
                                                                    "the drill's promotion and takeover")})
    runs = failovers((drill_r, Strategy("hot", replication), failures, seed, submit_rate))
    out = {"strategy": f"hot/{replication}", "failures": failures, "detection_s": detection_s,
           "redirection_s": redirection_s}
    for metric in ("rto", "rpo", "lost"):
        values = sorted(runs[metric])
        out[metric] = {"mean": round(sum(values) / len(values), 3), "p95": round(percentile(values, 0.95), 3)}
    return out
