"""The planner's questions against closed forms: growth (forecast), sensitivity (Morris, Sobol), DR by
cost, headroom (stress), joint sizing."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from click.testing import CliRunner

from egovlab.cli import cli
from egovlab.inventory.errors import EgovlabError
from egovlab.inventory.schema import DRCosts, Growth
from egovlab.simulation import forecast as fc
from egovlab.simulation import dr, province, sizing, stress
from egovlab.simulation import sensitivity as sa

from .conftest import ROOT


@pytest.fixture(scope="module")
def model(dongthap):
    return province.build(dongthap)


def doubling(services) -> Growth:
    """Every service's requests double each year from 2020."""
    share = {"value": 0.5, "basis": "assumption", "ref": "test"}
    return Growth.model_validate({
        "base_year": 2020, "dossier_levels": {"province": share}, "online_dossiers": {"province": {2020: share}},
        "yearly": {"page-views": {"value": 1.0, "basis": "assumption", "ref": "test"}},
        "drivers": {s.name: "page-views" for s in services}})


def test_shares_are_interpolated_between_the_years_given(dongthap):
    g = dongthap.spec.workload.growth
    assert fc.share_at(g.online_dossiers["commune"], 2020) == 0.3
    assert fc.share_at(g.online_dossiers["commune"], 2023) == pytest.approx(0.3 + 0.3 * 3 / 5)
    assert fc.share_at(g.online_dossiers["commune"], 2040) == 0.7
    m = fc.multipliers(g, 2025)
    online_2025 = (0.3 * 0.9 + 0.4 * 0.8 + 0.3 * 0.6) / 0.3  # levels weighted by their dossiers, over 2020's 30 %
    assert m["online-dossiers"] == pytest.approx(1.05 ** 5 * online_2025)
    assert m["meetings"] == pytest.approx(0.8 / 0.5) and m["users"] == pytest.approx(1.03 ** 5)


def test_forecast_names_the_year_a_tier_crosses_80_percent_in_closed_form(dongthap, model):
    # By hand, from the scenario's figures: the app tier is M/M/c with c = its cores; at the peak its
    # offered load is sum(lambda * app_s); doubling every year it crosses 80 % in year 2020 + n.
    peak = model.peak_factor()
    w = dongthap.spec.workload
    app_cores = sum(r.cores for r in dongthap.servers() if r.site == "provincial-dc" and r.zone == "internal")
    u_app = sum(s.requests_per_day.value / 86_400 * peak * s.app_ms.value / 1000 for s in w.services.values()) / app_cores
    n_app = math.ceil(math.log(fc.THRESHOLD / u_app, 2))
    # The Internet lines: 3 lines (M/M/3), a request holds one for its bytes at the mean line rate.
    line_bps = (80e6 + 100e6 + 100e6) / 3
    u_net = sum(s.requests_per_day.value / 86_400 * peak * (s.request_kb.value + s.response_kb.value) * 8000 / line_bps
                for s in w.services.values() if s.channel == "internet") / 3
    n_net = math.ceil(math.log(fc.THRESHOLD / u_net, 2))
    _, servers = province.tier_capacity(dongthap, "provincial-dc")
    result = fc.forecast(model, doubling(model.services), servers, range(2020, 2031), target_s=2.0,
                         replications=2, seed=1, minutes=1)
    assert result["first_over_threshold"]["app"] == 2020 + n_app
    assert result["first_over_threshold"]["net:internet"] == 2020 + n_net
    row = result["per_year"][2020 + n_app]
    assert row["utilisation"]["app"] == pytest.approx(u_app * 2 ** n_app, rel=1e-4)
    # The plan: the fewest servers that keep the tier under 80 % (one fewer would not).
    plan = row["plan"]["app"]
    per = app_cores / servers["app"]
    load = u_app * 2 ** n_app * app_cores
    assert load / (plan["needed"] * per) < fc.THRESHOLD <= load / ((plan["needed"] - 1) * per)
    internet = row["plan"]["internet"]
    assert row["utilisation"]["net:internet"] * internet["now"] / internet["needed"] < fc.THRESHOLD + 1e-3
    assert {"year": 2020 + n_app, "what": "app", "from": servers["app"], "to": plan["needed"],
            "unit": "servers"} in result["purchases"]
    # An overloaded year has no steady state: every service misses its target from then on.
    assert result["first_missing_target"]["cong-dvc"] <= 2020 + n_net + 1


def test_forecast_cli_writes_json_and_png_same_bytes_twice(tmp_path):
    outs = []
    for i in range(2):
        d = tmp_path / str(i)
        r = CliRunner().invoke(cli, ["forecast", "dongthap", "--years", "2020-2022", "--replications", "2",
                                     "--peak-minutes", "2", "--out", str(d), "--executor", "local"])
        assert r.exit_code == 0, r.output
        outs.append((d / "forecast.json").read_bytes())
        assert (d / "forecast.png").read_bytes()[:4] == b"\x89PNG"
    assert outs[0] == outs[1]
    data = json.loads(outs[0])
    assert data["per_year"]["2022"]["multipliers"]["page-views"] == pytest.approx(1.21)


@pytest.mark.parametrize("edit,message", [
    (("      2020: {value: 0.5, basis: assumption", "      2021: {value: 0.5, basis: assumption"),
     "online_meetings: needs the base year 2020"),
    (("drivers: {cong-dvc: online-dossiers", "drivers: {cong-dvx: online-dossiers"), "drivers.cong-dvx: unknown service 'cong-dvx'"),
    (("2025: {value: 0.60, basis: document", "2025: {value: 1.60, basis: document"), "less than or equal to 1"),
])
def test_a_bad_growth_section_is_refused_with_its_path(tmp_path, edit, message):
    text = (ROOT / "inventory" / "dongthap.yml").read_text()
    assert edit[0] in text
    bad = tmp_path / "bad.yml"
    bad.write_text(text.replace(edit[0], edit[1], 1))
    r = CliRunner().invoke(cli, ["forecast", str(bad), "--out", str(tmp_path)])
    assert r.exit_code == 2 and message in r.output and "workload.growth" in r.output, r.output


def test_bad_years_are_refused():
    r = CliRunner().invoke(cli, ["forecast", "dongthap", "--years", "2030-2020"])
    assert r.exit_code == 2 and "--years" in r.output


# -- sensitivity (SALib) -----------------------------------------------------------------------

def _inputs(bounds):
    return [sa.Input(f"x{k}", (lo + hi) / 2, lo, hi, "test") for k, (lo, hi) in enumerate(bounds, 1)]


def test_morris_ranks_the_input_that_dominates_a_linear_model_first():
    inputs = _inputs([(0, 1)] * 4)
    coefficients = np.array([1.0, 4.0, 0.0, 2.0])
    result = sa.morris(inputs, lambda X: {"y": X @ coefficients}, trajectories=10, seed=3)
    rows = {r["input"]: r for r in result["outputs"]["y"]}
    # The elementary effects of a linear model are its coefficients (times the input's range).
    assert [r["input"] for r in result["outputs"]["y"]] == ["x2", "x4", "x1", "x3"]
    for k, a in enumerate(coefficients, 1):
        assert rows[f"x{k}"]["mu_star"] == pytest.approx(a) and rows[f"x{k}"]["sigma"] == pytest.approx(0, abs=1e-9)
    assert result["ranking"][0]["input"] == "x2"


def test_sobol_indices_of_the_ishigami_function_match_the_analytic_ones_within_their_intervals():
    a, b = 7.0, 0.1
    inputs = _inputs([(-math.pi, math.pi)] * 3)

    def ishigami(X):
        return {"y": np.sin(X[:, 0]) + a * np.sin(X[:, 1]) ** 2 + b * X[:, 2] ** 4 * np.sin(X[:, 0])}

    # Analytic indices (Ishigami & Homma 1990; Saltelli et al. 2008, p. 179).
    var = a ** 2 / 8 + b * math.pi ** 4 / 5 + b ** 2 * math.pi ** 8 / 18 + 0.5
    v1 = 0.5 * (1 + b * math.pi ** 4 / 5) ** 2
    v2 = a ** 2 / 8
    v13 = b ** 2 * math.pi ** 8 * (1 / 18 - 1 / 50)
    s1 = {"x1": v1 / var, "x2": v2 / var, "x3": 0.0}
    st = {"x1": (v1 + v13) / var, "x2": v2 / var, "x3": v13 / var}
    result = sa.sobol(inputs, ishigami, base_samples=2048, seed=5)
    rows = {r["input"]: r for r in result["outputs"]["y"]}
    for name in s1:
        assert abs(rows[name]["S1"] - s1[name]) <= rows[name]["S1_conf"], (name, rows[name], s1[name])
        assert abs(rows[name]["ST"] - st[name]) <= rows[name]["ST_conf"], (name, rows[name], st[name])


def test_every_assumption_of_the_province_is_an_input(dongthap):
    inputs = {i.path: i for i in sa.inputs_of(dongthap)}
    assert len(inputs) >= 30
    assert "workload.services.cong-dvc.app_ms" in inputs and "resilience.detection_s" in inputs
    assert "workload.services.cong-dvc.requests_per_day" not in inputs  # derived, not assumed
    assert "resilience.rto_target_s" not in inputs  # a target, not an assumption about the world
    assert inputs["resilience.detection_s"].low == 7.5 and inputs["resilience.detection_s"].high == 22.5


def test_sensitivity_cli_finds_what_decides_the_rto(tmp_path):
    # RTO = detection + redirection + the standby's start: with common random numbers the elementary
    # effects are the ranges (30 s for redirection, 15 s for detection) times the mean draw (1).
    r = CliRunner().invoke(cli, ["sensitivity", "dongthap", "--outputs", "rto", "--trajectories", "4",
                                 "--replications", "1", "--peak-minutes", "1", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "sensitivity.json").read_text())
    rows = data["screening"]["outputs"]["rto"]
    assert [x["input"] for x in rows[:2]] == ["resilience.redirection_s", "resilience.detection_s"]
    assert rows[0]["mu_star"] == pytest.approx(30, rel=0.15) and rows[1]["mu_star"] == pytest.approx(15, rel=0.15)
    assert (tmp_path / "sensitivity" / "rto.png").read_bytes()[:4] == b"\x89PNG"


def test_sensitivity_refuses_an_unknown_output(tmp_path):
    r = CliRunner().invoke(cli, ["sensitivity", "dongthap", "--outputs", "p96", "--trajectories", "2",
                                 "--replications", "1", "--peak-minutes", "1", "--out", str(tmp_path),
                                 "--executor", "local"])
    assert r.exit_code == 2 and "--outputs: none of p96 is an output" in r.output, r.output


# -- DR by cost --------------------------------------------------------------------------------

def _summary(rto_p95, rpo_p95):
    return {"rto": {"p95": {"mean": rto_p95}}, "rpo": {"p95": {"mean": rpo_p95}}}


def test_three_strategies_ranked_as_worked_out_by_hand():
    fig = lambda v: {"value": v, "basis": "assumption", "ref": "toy"}  # noqa: E731
    costs = DRCosts.model_validate({"currency": "USD", "strategies": {
        "hot/sync": {"capital": fig(100), "yearly": fig(20)},     # 100 + 3 x 20 = 160, meets both
        "warm/async": {"capital": fig(40), "yearly": fig(30)},    # 40 + 3 x 30 = 130, meets both: cheapest
        "cold/backup": {"capital": fig(10), "yearly": fig(5)}}})  # 25, but misses the RTO
    strategies = {"hot/sync": _summary(60, 0), "warm/async": _summary(900, 4), "cold/backup": _summary(40000, 80000)}
    ranked = dr.rank(strategies, costs, {"rto_s": 3600, "rpo_s": 300}, years=3)
    assert [(r["strategy"], r.get("rank"), r.get("total")) for r in ranked] == [
        ("warm/async", 1, 130), ("hot/sync", 2, 160), ("cold/backup", None, 25)]
    assert ranked[2]["why_not"] == ["RTO p95 40000 s > 3600 s", "RPO p95 80000 s > 300 s"]
    # Over ten years the hot standby's lower running cost pays for its capital: 100 + 200 < 40 + 300.
    ten = dr.rank(strategies, costs, {"rto_s": 3600, "rpo_s": 300}, years=10)
    assert [r["strategy"] for r in ten[:2]] == ["hot/sync", "warm/async"]  # 300 < 340


def test_replication_bandwidth_for_a_target_rpo_and_the_rpo_of_a_link(model, dongthap):
    r = dongthap.spec.resilience
    peak = model.peak_factor()
    write_bps = sum(s.requests_per_day.value / 86_400 * peak * s.request_kb.value * 8000
                    for s in dongthap.spec.workload.services.values())
    rate = sum(s.requests_per_day.value / 86_400 * peak for s in dongthap.spec.workload.services.values())
    s_bits = write_bps / rate
    out = dr.replication(model, r, 1e9)
    assert out["write_mbps_at_peak"] == pytest.approx(write_bps / 1e6, abs=1e-3)
    needed = write_bps + math.log(20) * s_bits / (r.rpo_target_s.value - r.replication_lag_s.value)
    assert out["needed_mbps_for_target"] == pytest.approx(needed / 1e6, abs=1e-3)
    # At exactly the needed bandwidth, the p95 lag is the target.
    at_needed = dr.replication(model, r, needed)
    assert at_needed["achieved_rpo_p95_s"] == pytest.approx(r.rpo_target_s.value, rel=1e-3)
    assert dr.replication(model, r, write_bps * 0.9)["achieved_rpo_p95_s"] is None  # writes outrun the link


def test_dr_cli_ranks_the_province_strategies_by_cost(tmp_path):
    r = CliRunner().invoke(cli, ["dr", "dongthap", "--failures", "100", "--replications", "2", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    ranking = json.loads((tmp_path / "dr.json").read_text())["ranking"]
    assert ranking["strategies"][0]["rank"] == 1 and ranking["strategies"][-1]["strategy"] == "cold/backup"
    totals = [s["total"] for s in ranking["strategies"] if "rank" in s]
    assert totals == sorted(totals)


# -- stress (headroom) -------------------------------------------------------------------------

def mm1_model(per_s: float, demand_s: float) -> province.ProvinceModel:
    """One service through one server (the app tier, M/M/1), no other demand; the peak factor is 1."""
    return province.ProvinceModel(
        "toy", "dc", [province.ServiceDemand("one", per_s * 86_400, 0, demand_s, 0, 0, 0, "internet")],
        {"web": 1, "app": 1, "db": 1, "san": 1}, 20_000, {"internet": 1e9, "tslcd": 1e9},
        {"internet": 1, "tslcd": 1}, daily=[1.0] * 24, weekly=[1.0] * 7, month_end=1.0)


def test_stress_finds_the_multiplier_theory_gives_for_an_mm1_target():
    # M/M/1 sojourn times are exponential with rate mu - lambda: p95 = ln(20) / (mu - lambda).
    # p95 <= 1 s needs lambda <= mu - ln 20 = 10 - 3.0 = 7.0 per s; today 2 per s: x3.50.
    mu, lam, target = 10.0, 2.0, 1.0
    expected = (mu - math.log(20) / target) / lam
    result = stress.stress(mm1_model(lam, 1 / mu), target_s=target, replications=5, seed=1, minutes=30,
                           tolerance=0.005)
    est = result["services"]["one"]
    assert est["ci95"][0] <= expected <= est["ci95"][1], (est, expected)
    assert est["mean"] == pytest.approx(expected, rel=0.05) and not est["holds_to_saturation"]
    # Utilisation is linear in the load: the app tier passes 80 % at x4 and saturates at x5, exactly.
    assert result["resources"]["app"]["at_threshold"] == pytest.approx(4.0)
    assert result["resources"]["app"]["at_saturation"] == pytest.approx(5.0)
    assert result["first_resource"]["name"] == "app"


def test_stress_cli_on_the_province(tmp_path, model):
    r = CliRunner().invoke(cli, ["stress", "dongthap", "--replications", "2", "--peak-minutes", "1",
                                 "--tolerance", "0.1", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "stress.json").read_text())
    util = fc.peak_utilisation(model)
    busiest = max(util, key=util.get)
    assert data["first_resource"] == {"name": busiest, "multiplier": round(fc.THRESHOLD / util[busiest], 4)}
    assert all(0 < s["ci95"][0] <= s["mean"] <= data["saturation"] for s in data["services"].values())


# -- size: every tier together -------------------------------------------------------------------

def three_tiers() -> province.ProvinceModel:
    """50 requests/s through web (5 ms), app (100 ms: 5 Erlangs, the bottleneck) and db (5 ms), one core
    per server, no network demand."""
    return province.ProvinceModel(
        "three", "dc", [province.ServiceDemand("one", 50 * 86_400, 0.005, 0.1, 0.005, 0, 0, "internet")],
        {"web": 8, "app": 8, "db": 8, "san": 1}, 20_000, {"internet": 1e9, "tslcd": 1e9},
        {"internet": 1, "tslcd": 1}, daily=[1.0] * 24, weekly=[1.0] * 7, month_end=1.0)


def mmc_p95(lam: float, mu: float, c: int) -> float:
    """The p95 sojourn time of M/M/c in closed form: service Exp(mu), plus with the Erlang C probability
    an Exp(c mu - lam) wait; their sum is hypoexponential."""
    from scipy.optimize import brentq

    from egovlab.simulation import queueing
    p, a, b = queueing.erlang_c(c, lam / mu), c * mu - lam, mu

    def tail(t):
        both = (a * math.exp(-b * t) - b * math.exp(-a * t)) / (a - b) if a != b else math.exp(-b * t) * (1 + b * t)
        return (1 - p) * math.exp(-b * t) + p * both - 0.05

    return brentq(tail, 0, 100)


def test_size_sizes_every_tier_together_as_mmc_theory_says():
    # The app tier alone: M/M/6 gives p95 = 0.43 s, M/M/7 0.33 s; the web and db tiers add a few ms.
    # For p95 < 0.38 s theory asks for 7 app servers and one each of web and db.
    assert mmc_p95(50, 10, 6) > 0.40 and mmc_p95(50, 10, 7) < 0.34
    result = sizing.size(three_tiers(), {"web": 8, "app": 8, "db": 8}, ("p95", 0.38), replications=3, seed=1,
                         minutes=20)
    assert {t: v["needed_servers"] for t, v in result["tiers"].items()} == {"web": 1, "app": 7, "db": 1}
    assert result["simulated_worst_p95_s"]["mean"] <= 0.38
    assert result["steps"][0]["added"] == "app"  # the bottleneck first


def test_an_unreachable_target_is_refused_at_once_with_the_reason():
    # The app demand alone is Exp(100 ms): its p95 is 0.3 s whatever the servers.
    t0 = time.monotonic()
    with pytest.raises(EgovlabError, match=r"out of reach of any server count: 'one' takes 0\.3\d\d s"):
        sizing.size(three_tiers(), {"web": 8, "app": 8, "db": 8}, ("p95", 0.25))
    assert time.monotonic() - t0 < 1.0


def test_sensitivity_of_a_simulated_p95_ranks_its_largest_demand_first(tmp_path):
    # cong-dvc's response is its demands on the Internet line (~21 ms), web (8), app (60) and db (12 ms):
    # the app demand, varied 30-90 ms, moves its p95 most.
    r = CliRunner().invoke(cli, ["sensitivity", "dongthap", "--outputs", "p95:cong-dvc", "--trajectories", "2",
                                 "--replications", "1", "--peak-minutes", "1", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "sensitivity.json").read_text())["screening"]["outputs"]["p95:cong-dvc"]
    assert rows[0]["input"] == "workload.services.cong-dvc.app_ms", rows[:3]
