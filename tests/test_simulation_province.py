"""The province model, the DR model and the simulation CLI."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from egovlab.cli import cli
from egovlab.inventory.errors import EgovlabError
from egovlab.simulation import dr, province, queueing, runs, sizing

from .conftest import SCENARIOS


def run(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def model(dongthap):
    return province.build(dongthap)


def test_model_reads_the_scenario(dongthap, model):
    assert model.dc == "provincial-dc"
    assert model.channel_links["internet"] == 3  # §VII.4.b: three Internet lines
    assert model.channel_bps["internet"] == pytest.approx((80e6 + 100e6 + 100e6) / 3)
    cores, servers = province.tier_capacity(dongthap, "provincial-dc")
    assert servers == {"web": 6, "app": 12, "db": 3} and cores["web"] == 96
    assert {s.name for s in model.services} == set(dongthap.spec.workload.services)
    assert sum(model.daily) / 24 == pytest.approx(1.0)
    assert model.peak_factor() == pytest.approx(max(model.daily) * 1.5)


def test_utilisation_is_the_offered_load_over_capacity(model):
    util = model.utilisation(1.0)
    web = sum(model.rate(s) * s.web_s for s in model.services) / model.capacity["web"]
    assert util["web"] == pytest.approx(web)
    assert model.utilisation(2.0)["web"] == pytest.approx(2 * web)


def test_peak_window_matches_the_jackson_approximation_at_light_load(model):
    peak = runs.peak_window(model, replications=4, seed=5, minutes=20)
    for svc in model.services:
        # At light load nearly no queueing: the mean response is the sum of the demands.
        demand = sum(model.tier_demand(svc).values())
        est = peak["services"][svc.name]["mean"]
        assert est["ci95"][0] * 0.9 <= demand * 1.15 and demand <= est["ci95"][1] * 1.1, (svc.name, est, demand)


def test_overloaded_peak_is_a_clear_error(model):
    tiny = dict(model.capacity, web=1)
    with pytest.raises(EgovlabError, match="no steady state at the peak"):
        runs.peak_window(model, replications=2, seed=1, minutes=5, capacity=tiny, factor=model.peak_factor() * 100)


def test_year_counts_failures_and_loses_availability_only_to_them(dongthap, model):
    cores, servers = province.tier_capacity(dongthap, "provincial-dc")
    backup = province.tier_capacity(dongthap, "backup-dc")[0]
    harsh = runs.YearSettings(server_mtbf_h=500, server_mttr_h=10, link_mtbf_h=300, link_mttr_h=5,
                              dc_mtbf_h=1000, dc_mttr_h=20, rto_s=3600, target_s=2.0)
    y = runs.year(model, harsh, horizon_h=24 * 60, replications=3, seed=2, backup_capacity=backup,
                  servers_per_tier=servers)
    assert y["dc_failures"]["mean"] > 0 and y["server_failures"]["mean"] > 0
    assert y["availability"]["mean"] < 1.0 and y["unavailable_requests"]["mean"] > 0
    calm = runs.YearSettings(1e12, 1, 1e12, 1, 1e12, 1, rto_s=60, target_s=2.0)
    y2 = runs.year(model, calm, horizon_h=24 * 30, replications=2, seed=2, backup_capacity=backup,
                   servers_per_tier=servers)
    assert y2["availability"]["mean"] == 1.0 and y2["dc_failures"]["mean"] == 0


def test_dr_strategies_order_and_bounds(dongthap):
    res = dr.compare(dongthap, failures=400, replications=4, seed=3)
    s = res["strategies"]
    r = dongthap.spec.resilience
    assert s["hot/sync"]["rpo"]["p99"]["mean"] == 0.0 and s["warm/sync"]["lost"]["mean"]["mean"] == 0.0
    assert s["hot/async"]["rpo"]["mean"]["ci95"][0] <= r.replication_lag_s.value <= s["hot/async"]["rpo"]["mean"]["ci95"][1] * 1.05
    expected_hot = r.detection_s.value + r.redirection_s.value
    lo, hi = s["hot/sync"]["rto"]["mean"]["ci95"]
    assert lo * 0.95 <= expected_hot <= hi * 1.05
    assert s["hot/sync"]["rto"]["mean"]["mean"] < s["warm/sync"]["rto"]["mean"]["mean"] < s["cold/backup"]["rto"]["mean"]["mean"]


def test_target_parsing():
    assert sizing.parse_target("p95<2s") == ("p95", 2.0)
    assert sizing.parse_target("p99 < 800ms") == ("p99", 0.8)
    for bad in ("p95>2s", "p97<2s", "fast", "p95<0s"):
        with pytest.raises(EgovlabError):
            sizing.parse_target(bad)


def test_sizing_finds_the_fewest_servers_that_meet_the_target(dongthap, model):
    _, servers = province.tier_capacity(dongthap, "provincial-dc")
    # The light Đồng Tháp load needs one server per tier for p95 < 2 s.
    res = sizing.size(model, servers, ("p95", 2.0), replications=2, seed=1, minutes=10)
    assert {t: v["needed_servers"] for t, v in res["tiers"].items()} == {"web": 1, "app": 1, "db": 1}
    # A tighter target than the network transfer alone allows cannot be met by servers.
    with pytest.raises(EgovlabError, match="out of reach of any server count"):
        sizing.size(model, servers, ("p99", 0.01), replications=2, seed=1, minutes=5)


def test_same_seed_bit_identical_json_different_seed_differs(tmp_path):
    outs = []
    for i, seed in enumerate(("4", "4", "5")):
        d = tmp_path / str(i)
        r = run("simulate", "dongthap", "--replications", "2", "--seed", seed, "--horizon", "30d",
                "--peak-minutes", "5", "--out", str(d))
        assert r.exit_code == 0, r.output
        outs.append((d / "simulation.json").read_bytes())
        assert json.loads((d / "simulation.timing.json").read_text())["wall_s"]["peak"] >= 0
        assert (d / "simulation.png").read_bytes()[:4] == b"\x89PNG"
    assert outs[0] == outs[1] and outs[0] != outs[2]


@pytest.mark.parametrize("args,message", [
    (["simulate", "dongthap", "--horizon", "-5d"], "--horizon"),
    (["simulate", "dongthap", "--horizon", "forever"], "--horizon"),
    (["simulate", "dongthap", "--replications", "1"], "replications"),
    (["simulate", "dongthap", "--seed", "-1"], "seed"),
    (["size", "dongthap", "--target", "p95>2s"], "--target"),
    (["dr", "dongthap", "--failures", "0"], "failures"),
    (["simulate", str(SCENARIOS / "mini.yml")], "no workload"),
    (["simulate", str(SCENARIOS / "bad" / "negative-bandwidth.yml")], "bandwidth must be positive"),
])
def test_invalid_parameters_exit_2_with_a_clear_message(args, message):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert message in r.output + r.stderr
    assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit)


def test_dr_cli_writes_json_and_png(tmp_path):
    r = run("dr", "dongthap", "--failures", "50", "--replications", "2", "--out", str(tmp_path))
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "dr.json").read_text())
    assert set(data["strategies"]) == {"hot/sync", "hot/async", "warm/sync", "warm/async", "cold/backup"}
    assert (tmp_path / "dr.png").read_bytes()[:4] == b"\x89PNG"


def test_erlang_b_and_c_known_values():
    assert queueing.erlang_b(1, 1.0) == pytest.approx(0.5)
    assert queueing.erlang_b(10, 5.0) == pytest.approx(0.018384, abs=1e-6)
    assert queueing.erlang_c(2, 1.0) == pytest.approx(1 / 3)


def test_video_conferences_load_the_dc_uplink(model, dongthap):
    import dataclasses
    assert model.vc_bps == 192 * 1536 * 1000  # §VII.4.c: 192 endpoints; bitrate assumed
    during = model.with_meeting()
    assert during.channel_bps["tslcd"] == model.channel_bps["tslcd"] - model.vc_bps
    assert during.utilisation(1.0)["net:tslcd"] > model.utilisation(1.0)["net:tslcd"]
    huge = dataclasses.replace(model, vc_bps=model.channel_bps["tslcd"] * 2)
    with pytest.raises(EgovlabError, match="video conferences need"):
        huge.with_meeting()
    _, servers = province.tier_capacity(dongthap, "provincial-dc")
    backup = province.tier_capacity(dongthap, "backup-dc")[0]
    calm = runs.YearSettings(1e12, 1, 1e12, 1, 1e12, 1, rto_s=60, target_s=2.0)
    y = runs.year(model, calm, horizon_h=24 * 365, replications=2, seed=9, backup_capacity=backup,
                  servers_per_tier=servers)
    assert 150 < y["video_conferences"]["mean"] < 330  # 20 a month (§VII.4.c)
