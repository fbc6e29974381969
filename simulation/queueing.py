"""Closed forms of queueing theory: what the simulation must reproduce where theory applies.

Notation: arrival rate `lam`, service rate per server `mu`, `c` servers, offered load
a = lam/mu (Erlangs), utilisation rho = a/c. Times are in the units of 1/lam.
"""
from __future__ import annotations

import math

from egovlab.inventory.errors import EgovlabError


def _check(lam: float, mu: float, c: int = 1) -> None:
    if lam <= 0 or mu <= 0:
        raise EgovlabError(f"rates must be positive (arrival {lam}, service {mu})")
    if c < 1:
        raise EgovlabError(f"need at least one server, got {c}")


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of M/M/c/c with offered load a (stable recursion)."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c (requires a < c)."""
    if a >= c:
        raise EgovlabError(f"no steady state: offered load {a:.3f} Erlang >= {c} servers (utilisation >= 1)")
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def mmc_wait(lam: float, mu: float, c: int) -> float:
    """Mean waiting time in queue, M/M/c."""
    _check(lam, mu, c)
    a = lam / mu
    return erlang_c(c, a) / (c * mu - lam)


def mmc_response(lam: float, mu: float, c: int) -> float:
    return mmc_wait(lam, mu, c) + 1 / mu


def mm1_response(lam: float, mu: float) -> float:
    return mmc_response(lam, mu, 1)


def mmck(lam: float, mu: float, c: int, k: int) -> dict:
    """M/M/c/K (K places in the system, c <= K): blocking, mean number, mean response (Little)."""
    _check(lam, mu, c)
    if k < c:
        raise EgovlabError(f"system capacity K={k} is below the {c} servers")
    a = lam / mu
    terms = [a ** n / math.factorial(n) if n <= c else a ** c / math.factorial(c) * (a / c) ** (n - c)
             for n in range(k + 1)]
    total = sum(terms)
    p = [t / total for t in terms]
    blocking = p[k]
    mean_n = sum(n * pn for n, pn in enumerate(p))
    lam_eff = lam * (1 - blocking)
    return {"blocking": blocking, "mean_in_system": mean_n, "response": mean_n / lam_eff,
            "throughput": lam_eff}


def mg1_wait(lam: float, mean_s: float, scv: float) -> float:
    """Pollaczek–Khinchine mean wait of M/G/1; scv = variance / mean^2 of the service time."""
    _check(lam, 1 / mean_s)
    rho = lam * mean_s
    if rho >= 1:
        raise EgovlabError(f"no steady state: utilisation {rho:.3f} >= 1")
    return rho * mean_s * (1 + scv) / (2 * (1 - rho))


def jackson_tandem_response(lam: float, stations: list[tuple[float, int]]) -> float:
    """Mean end-to-end response of M/M/c stations in series [(mu, c), ...] (Jackson network)."""
    return sum(mmc_response(lam, mu, c) for mu, c in stations)
