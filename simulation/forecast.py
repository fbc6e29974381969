"""Growth to the document's targets: per year, each resource's peak utilisation, each service's p95,
the first year a resource crosses the headroom threshold or a service misses its target, and the
fewest servers and bandwidth that keep every resource below the threshold.

The workload's figures describe `growth.base_year`; a year's model scales each service's requests
by its driver (scenario `workload.growth`) and the video conferences by the online share of
meetings. Utilisation is exact for the model (offered load over capacity at the peak, with a
full-size meeting as the peak window assumes); p95 is simulated request by request.
"""
from __future__ import annotations

import dataclasses
import math

from egovlab.inventory.errors import EgovlabError
from egovlab.inventory.schema import Growth

from .executor import Executor
from .province import ProvinceModel
from .runs import peak_window

THRESHOLD = 0.8  # the headroom rule: buy before a resource passes 80 % at the peak


def share_at(schedule: dict, year: int) -> float:
    """A share in `year`, linear between the years given, flat before the first and after the last."""
    years = sorted(schedule)
    if year <= years[0]:
        return schedule[years[0]].value
    for a, b in zip(years, years[1:]):
        if year <= b:
            va, vb = schedule[a].value, schedule[b].value
            return va + (vb - va) * (year - a) / (b - a)
    return schedule[years[-1]].value


def multipliers(growth: Growth, year: int) -> dict[str, float]:
    """Load of each driver in `year` relative to the base year."""
    n = year - growth.base_year
    rate = {k: growth.yearly[k].value if k in growth.yearly else 0.0 for k in ("dossiers", "users", "page-views")}
    out = {k: (1 + r) ** n for k, r in rate.items()}
    weights = {lvl: f.value for lvl, f in growth.dossier_levels.items()}

    def online(y: int) -> float:
        return sum(w * share_at(growth.online_dossiers[lvl], y) for lvl, w in weights.items()) / sum(weights.values())

    base = online(growth.base_year)
    out["online-dossiers"] = out["dossiers"] * (online(year) / base if base else 1.0)
    meetings = growth.online_meetings
    out["meetings"] = share_at(meetings, year) / share_at(meetings, growth.base_year) \
        if meetings and share_at(meetings, growth.base_year) else 1.0
    out["none"] = 1.0
    return out


def model_in(model: ProvinceModel, growth: Growth, year: int) -> ProvinceModel:
    m = multipliers(growth, year)
    services = [dataclasses.replace(s, per_day=s.per_day * m[growth.drivers.get(s.name, "none")])
                for s in model.services]
    return dataclasses.replace(model, services=services, vc_meetings_per_hour=model.vc_meetings_per_hour * m["meetings"])


def peak_utilisation(model: ProvinceModel) -> dict[str, float]:
    """Offered load over capacity at the peak hour, during a full-size meeting (the peak window's case)."""
    return model.with_meeting().utilisation(model.peak_factor())


def purchase_plan(model: ProvinceModel, servers_per_tier: dict[str, int], threshold: float = THRESHOLD) -> dict:
    """Fewest servers per tier, SAN controllers, Internet and TSLCD bandwidth keeping each below threshold."""
    util = peak_utilisation(model)
    plan = {}
    for tier, now in servers_per_tier.items():
        per = model.capacity[tier] / now  # cores per server
        load = util[tier] * model.capacity[tier]  # busy cores at the peak
        plan[tier] = {"now": now, "needed": max(1, math.floor(load / (threshold * per)) + 1), "unit": "servers"}
    plan["san"] = {"now": model.capacity["san"], "needed": max(1, math.floor(util["san"] * model.capacity["san"]
                                                                          / threshold) + 1), "unit": "controllers"}
    lines = model.channel_links["internet"]
    now_bps = model.channel_bps["internet"] * lines
    plan["internet"] = {"now": round(now_bps / 1e6, 1), "needed": round(now_bps * util["net:internet"] / threshold
                                                                        / 1e6, 1), "unit": "Mbps"}
    tslcd = model.channel_bps["tslcd"]
    left = model.with_meeting().channel_bps["tslcd"]  # the uplink less a full-size meeting
    needed = (tslcd - left) + util["net:tslcd"] * left / threshold
    plan["tslcd"] = {"now": round(tslcd / 1e6, 1), "needed": round(needed / 1e6, 1), "unit": "Mbps"}
    for row in plan.values():
        row["buy"] = round(max(0, row["needed"] - row["now"]), 1)
    return plan


def forecast(model: ProvinceModel, growth: Growth, servers_per_tier: dict[str, int], years: range, *,
             target_s: float, replications: int, seed: int, minutes: float,
             executor: Executor | None = None) -> dict:
    per_year = {}
    for year in years:
        m = model_in(model, growth, year)
        util = peak_utilisation(m)
        row = {"multipliers": {k: round(v, 4) for k, v in multipliers(growth, year).items()},
               "utilisation": {k: round(v, 5) for k, v in util.items()},
               "plan": purchase_plan(m, servers_per_tier)}
        if max(util.values()) >= 1:
            row["p95"] = {s.name: None for s in m.services}  # no steady state: every service misses
        else:
            peak = peak_window(m, replications=replications, seed=seed, minutes=minutes, target_s=target_s,
                               executor=executor)
            row["p95"] = {name: s["p95"] for name, s in peak["services"].items()}
        per_year[year] = row
    return {"base_year": growth.base_year, "years": [years.start, years.stop - 1], "threshold": THRESHOLD,
            "target_s": target_s, "replications": replications, "per_year": per_year,
            "first_over_threshold": _first(per_year, lambda r, k: r["utilisation"][k] >= THRESHOLD,
                                           per_year[years.start]["utilisation"]),
            "first_missing_target": _first(per_year, lambda r, k: r["p95"][k] is None
                                           or r["p95"][k]["mean"] > target_s, per_year[years.start]["p95"]),
            "purchases": _purchases(per_year)}


def _first(per_year: dict, crossed, keys) -> dict:
    return {k: next((y for y, r in per_year.items() if crossed(r, k)), None) for k in keys}


def _purchases(per_year: dict) -> list[dict]:
    """What to buy and when: each resource's needed amount the first year it grows past what is there."""
    out, have = [], {}
    for year, row in per_year.items():
        for what, p in row["plan"].items():
            have.setdefault(what, p["now"])
            if p["needed"] > have[what]:
                out.append({"year": year, "what": what, "from": have[what], "to": p["needed"], "unit": p["unit"]})
                have[what] = p["needed"]
    return out


def parse_years(text: str) -> range:
    """'2020-2030' -> range(2020, 2031)."""
    first, sep, last = text.partition("-")
    if not (sep and first.isdigit() and last.isdigit() and 2000 <= int(first) <= int(last) <= 2100
            and int(last) - int(first) <= 50):
        raise EgovlabError(f"--years: expected FIRST-LAST within 2000-2100 and at most 50 years, got '{text}'")
    return range(int(first), int(last) + 1)
