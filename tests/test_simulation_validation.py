"""The engine against queueing theory: the closed form inside the simulation's 95 % CI.

Seeds are fixed, so each check is deterministic; an engine that mis-samples service times,
mis-counts waits or mis-handles capacity moves the estimate out of its interval.
"""
from __future__ import annotations

import statistics
import zlib

import pytest

from egovlab.simulation import queueing as q
from egovlab.simulation.engine import Dist, Station, run
from egovlab.simulation.stats import estimate

REPS = 10


def replicate(stations_fn, lam, customers, **kw):
    """R replications; per replication: mean response, utilisation of station 0, blocking share.

    Each case draws its own seeds from its parameters (fixed, so the check is deterministic):
    at 95 % one case in twenty would miss by chance, and every case is still a fresh sample.
    """
    horizon = customers / lam
    seed0 = zlib.crc32(repr((lam, customers, [repr(s) for s in stations_fn()])).encode())
    out = []
    for r in range(REPS):
        res = run(stations_fn(), lam, horizon=horizon, warmup=horizon * 0.1, seed=seed0 + r, **kw)
        out.append({"response": statistics.fmean(res.responses),
                    "wait": next(iter(res.stations.values()))["mean_wait"],
                    "util": next(iter(res.stations.values()))["utilisation"],
                    "blocking": res.blocked / res.arrivals,
                    "in_system": lam * (1 - res.blocked / res.arrivals) * statistics.fmean(res.responses)})
    return {k: estimate([o[k] for o in out]) for k in out[0]}


def customers_for(rho: float) -> int:
    # Heavier traffic relaxes more slowly: more customers per replication.
    return int(8_000 / (1 - rho))


@pytest.mark.parametrize("rho", [0.3, 0.5, 0.7, 0.9, 0.95])
def test_mm1_mean_response_and_utilisation(rho):
    est = replicate(lambda: [Station("s", 1, Dist("exp", 1.0))], rho, min(customers_for(rho), 160_000))
    assert est["response"].contains(q.mm1_response(rho, 1.0)), (est["response"], q.mm1_response(rho, 1.0))
    assert est["util"].contains(rho) or abs(est["util"].mean - rho) < 0.01


@pytest.mark.parametrize("c,rho", [(2, 0.5), (4, 0.8), (8, 0.9), (3, 0.95)])
def test_mmc_erlang_c_mean_wait(c, rho):
    lam = rho * c
    est = replicate(lambda: [Station("s", c, Dist("exp", 1.0))], lam, min(customers_for(rho), 160_000))
    assert est["wait"].contains(q.mmc_wait(lam, 1.0, c)), (est["wait"], q.mmc_wait(lam, 1.0, c))


@pytest.mark.parametrize("c,k,rho", [(1, 5, 0.9), (2, 6, 0.8), (3, 3, 0.7), (4, 10, 1.2)])
def test_mmck_blocking_and_littles_law(c, k, rho):
    lam = rho * c
    theory = q.mmck(lam, 1.0, c, k)
    est = replicate(lambda: [Station("s", c, Dist("exp", 1.0), capacity=k)], lam, 60_000)
    assert est["blocking"].contains(theory["blocking"]), (est["blocking"], theory)
    assert est["response"].contains(theory["response"]), (est["response"], theory)
    assert est["in_system"].contains(theory["mean_in_system"])  # Little: L = lambda_eff * W
    if c == k:
        assert abs(theory["blocking"] - q.erlang_b(c, lam)) < 1e-12  # M/M/c/c is Erlang B


@pytest.mark.parametrize("dist,rho", [(Dist("det", 1.0), 0.5), (Dist("det", 1.0), 0.9),
                                      (Dist("erlang", 1.0, k=4), 0.7), (Dist("hyper2", 1.0, scv=4.0), 0.6),
                                      (Dist("hyper2", 1.0, scv=4.0), 0.3)])
def test_mg1_pollaczek_khinchine(dist, rho):
    est = replicate(lambda: [Station("s", 1, dist)], rho, min(int(customers_for(rho) * (1 + dist.variation)), 160_000))
    theory = q.mg1_wait(rho, 1.0, dist.variation)
    assert est["wait"].contains(theory), (est["wait"], theory)


def test_web_app_db_tandem_matches_jackson():
    lam = 30.0  # requests/s
    tiers = [("web", 1 / 0.02, 1), ("app", 1 / 0.08, 3), ("db", 1 / 0.025, 1)]
    stations = lambda: [Station(n, c, Dist("exp", 1 / mu)) for n, mu, c in tiers]  # noqa: E731
    est = replicate(stations, lam, 80_000)
    theory = q.jackson_tandem_response(lam, [(mu, c) for _, mu, c in tiers])
    assert est["response"].contains(theory), (est["response"], theory)


def test_time_varying_rate_by_thinning_has_the_right_volume():
    rate = lambda t: 2.0 if (t % 10) < 5 else 0.5  # noqa: E731
    res = run([Station("s", 4, Dist("exp", 0.1))], rate, horizon=20_000, seed=3, rate_bound=2.0)
    assert abs(res.arrivals / 20_000 - 1.25) < 0.03


def test_same_seed_same_result_different_seed_differs():
    a = run([Station("s", 1, Dist("exp", 1.0))], 0.8, horizon=5000, seed=7)
    b = run([Station("s", 1, Dist("exp", 1.0))], 0.8, horizon=5000, seed=7)
    c = run([Station("s", 1, Dist("exp", 1.0))], 0.8, horizon=5000, seed=8)
    assert a.responses == b.responses and a.responses != c.responses


def test_theory_rejects_unstable_or_invalid_parameters():
    from egovlab.inventory.errors import EgovlabError
    with pytest.raises(EgovlabError, match="utilisation >= 1"):
        q.mmc_wait(4.0, 1.0, 4)
    with pytest.raises(EgovlabError, match="positive"):
        q.mm1_response(-1.0, 1.0)
    with pytest.raises(EgovlabError, match="positive"):
        Dist("exp", 0)
