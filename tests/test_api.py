"""The control API (`egovlab serve`) as clients use it: a real server over HTTP, real labs, real
schemathesis against its OpenAPI schema, real promtool against its alerting rules."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from egovlab import lifecycle
from egovlab.api import tokens, views
from egovlab.inventory.errors import EgovlabError
from egovlab.topology import cleanup
from egovlab.topology.state import read_state

from .conftest import EGOVLAB, ROOT, SCENARIOS

ALERTS = ROOT / "egovlab" / "api" / "alerts.yml"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="emulation needs root (CI runs as root)")


# -- pure parts ------------------------------------------------------------------------------

def test_token_files_and_environment(tmp_path):
    good = tmp_path / "tokens"
    good.write_text(f"# comment\noperator {'o' * 30}\nread-only {'r' * 30}  # trailing\n")
    good.chmod(0o600)
    t = tokens.parse_file(good)
    assert t.role_of("o" * 30) == "operator" and t.role_of("r" * 30) == "read-only" and t.role_of("x" * 30) is None
    good.chmod(0o644)
    with pytest.raises(EgovlabError, match="readable by others"):
        tokens.parse_file(good)
    assert tokens.parse_env(f"operator:{'a' * 24}").role_of("a" * 24) == "operator"
    for bad, message in ((f"admin:{'a' * 24}", "unknown role 'admin'"), ("operator:short", "shorter than 24"),
                         ("operator", "expected ROLE:TOKEN"), ("", "no tokens")):
        with pytest.raises(EgovlabError, match=message):
            tokens.parse_env(bad)
    made = tokens.generate(tmp_path / "new")
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o600
    assert tokens.parse_file(tmp_path / "new").role_of(made["operator"]) == "operator"
    with pytest.raises(EgovlabError, match="not overwriting"):
        tokens.generate(tmp_path / "new")


def test_the_radial_layout_places_every_site_outward_from_its_parent(dongthap):
    from egovlab.inventory.graph import primary_parent

    xy = views.radial_layout(dongthap)
    assert set(xy) == set(dongthap.sites)
    radius = {n: (x * x + y * y) ** 0.5 for n, (x, y) in xy.items()}
    assert max(radius.values()) <= 1.0001
    for name in dongthap.sites:
        parent = primary_parent(dongthap, name)
        if parent is not None:
            assert radius[name] > radius[parent]
    # no two sites on one spot
    assert len({(round(x, 3), round(y, 3)) for x, y in xy.values()}) == len(xy)


def test_the_heatmap_folds_probes_into_cells():
    row = {"source": "kind:district", "target": "service:portal", "intended": True}
    summary = {"probes": 3, "differ": 1, "results": [
        {**row, "reachable": True}, {**row, "reachable": False},
        {"source": "kind:commune", "target": "service:portal", "intended": False, "reachable": False}]}
    h = views.heatmap(summary)
    assert h["rows"] == ["kind:district", "kind:commune"] and h["columns"] == ["service:portal"]
    cell = next(c for c in h["cells"] if c["source"] == "kind:district")
    assert (cell["probed"], cell["reached"], cell["intended"], cell["differ"]) == (2, 1, 2, 1)


# -- the server ------------------------------------------------------------------------------

def _operations(server) -> list[tuple[str, str]]:
    """Every (method, concrete path) of the OpenAPI schema, path parameters filled validly."""
    with server.client(None) as c:
        schema = c.get("/openapi.json").json()
    fill = {"prefix": "zz", "name": "dongthap", "job_id": "0" * 12, "device": "town:agg", "getter": "facts"}
    return [(method.upper(), re.sub(r"\{(\w+)\}", lambda m: fill[m[1]], path))
            for path, item in schema["paths"].items() for method in item]


def test_every_call_needs_a_token_and_every_change_an_operator_token(api_server):
    ops = _operations(api_server)
    assert len(ops) > 20 and ("GET", "/metrics") in ops
    for method, path in ops:
        if path == "/healthz":
            continue  # liveness is open (checked below)
        with api_server.client(None) as c:
            r = c.request(method, path)
            assert r.status_code == 401 and "missing bearer token" in r.json()["detail"], (method, path)
        with api_server.client("x" * 40) as c:
            r = c.request(method, path)
            assert r.status_code == 401 and r.json()["detail"] == "invalid token", (method, path)
        if method == "GET" and path == "/api/v1/events":
            continue  # an endless stream: test_events_stream_a_status_when_a_link_is_cut reads it
        with api_server.client("read-only") as c:
            r = c.request(method, path, json={})
            if method == "GET":
                assert r.status_code not in (401, 403, 500), (method, path, r.text)
            else:
                assert r.status_code == 403 and "operator" in r.json()["detail"], (method, path)
    with api_server.client(None) as c:  # what needs no token: the page, liveness, the schema
        assert c.get("/").status_code == 200 and "egovlab" in c.get("/").text
        assert c.get("/healthz").json()["status"] == "ok"


def test_the_server_refuses_to_start_without_proper_tokens(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != tokens.ENV}
    r = subprocess.run([str(EGOVLAB), "serve", "--data-dir", str(tmp_path)], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "no API tokens" in r.stderr and "Traceback" not in r.stderr
    loose = tmp_path / "tokens"
    loose.write_text(f"operator {'o' * 30}\n")
    loose.chmod(0o644)
    r = subprocess.run([str(EGOVLAB), "serve", "--tokens", str(loose)], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "readable by others" in r.stderr
    r = subprocess.run([str(EGOVLAB), "serve", "--host", "nowhere"], env={**env, tokens.ENV: f"operator:{'o' * 30}"},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "expected an IP address" in r.stderr


def test_an_uploaded_scenario_is_validated_with_the_cli_messages(api_server, tmp_path):
    bad = SCENARIOS / "bad" / "duplicate-site.yml"
    copy = tmp_path / "dup.yml"
    shutil.copy(bad, copy)
    cli = subprocess.run([str(EGOVLAB), "validate", str(copy)], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2
    with api_server.client() as c:
        r = c.post("/api/v1/scenarios", json={"name": "dup", "yaml": bad.read_text()})
        assert r.status_code == 422
        assert r.json()["detail"].replace("dup.yml", str(copy)) == cli.stderr.strip()
        assert r.json()["problems"] and all(p["message"] for p in r.json()["problems"])
        assert c.get("/api/v1/scenarios/dup").status_code == 404  # nothing was stored
        r = c.post("/api/v1/scenarios", json={"name": "mini", "yaml": (SCENARIOS / "mini.yml").read_text()})
        assert r.status_code == 201 and r.json()["sites"] == 5
        assert "mini" in [s["name"] for s in c.get("/api/v1/scenarios").json()]
        assert c.post("/api/v1/scenarios", json={"name": "dongthap", "yaml": "x"}).status_code == 409
        assert c.delete("/api/v1/scenarios/dongthap").status_code == 409


def test_bad_requests_get_a_4xx_with_a_clear_message(api_server):
    with api_server.client() as c:
        cases = [
            (c.get("/api/v1/labs/qq"), 404, "no lab with prefix 'qq'"),
            (c.get("/api/v1/labs/TOOLONG"), 422, "prefix"),
            (c.put("/api/v1/labs/qq", json={"scenario": "nowhere"}), 404, "no scenario 'nowhere'"),
            (c.put("/api/v1/labs/qq", json={"scenario": "dongthap", "hosts_per_site": -1}), 422, "hosts_per_site"),
            (c.post("/api/v1/labs/qq/faults", json={"action": "link-down", "target": "x"}), 404, "no lab"),
            (c.post("/api/v1/labs/qq/faults", json={"action": "melt", "target": "x"}), 422, "action"),
            (c.post("/api/v1/simulations", json={"scenario": "dongthap", "horizon": "forever"}), 422, "horizon"),
            (c.post("/api/v1/drills", json={"scenario": "dongthap", "fail": "tp-cao-lanh"}), 422,
             "not a data centre"),
            (c.get("/api/v1/jobs/0123456789ab"), 404, "no job"),
            (c.post("/api/v1/simulations", content=b"{not json", headers={"content-type": "application/json"}),
             422, "JSON"),
        ]
        for r, status, text in cases:
            assert r.status_code == status and text in r.json()["detail"], (r.request.url, r.status_code, r.text)


def test_a_simulation_runs_as_a_job_and_its_figures_reach_the_metrics(api_server):
    with api_server.client() as c:
        job = c.post("/api/v1/simulations", json={"scenario": "dongthap", "replications": 2, "horizon": "2d",
                                                  "peak_minutes": 2}).json()
        assert job["kind"] == "simulation" and job["state"] == "running"
        done = api_server.wait_job(job)
        assert done["state"] == "succeeded", done["log_tail"]
        result = c.get(f"/api/v1/simulations/{job['id']}").json()["result"]
        assert result["scenario"] == "dongthap" and result["peak"]["replications"] == 2
        metrics = c.get("/metrics").text
        app = result["peak"]["utilisation"]["app"]["mean"]
        assert f'egovlab_simulation_peak_utilisation{{resource="app",scenario="dongthap"}} {app}' in metrics


def test_the_alerting_rules_are_valid_and_fire_on_faults_and_overloads():
    check = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(["promtool", "test", "rules", str(ROOT / "tests" / "prometheus" / "alerts_test.yml")],
                          capture_output=True, text=True)
    assert test.returncode == 0 and "SUCCESS" in test.stdout, test.stdout + test.stderr


# -- a lab through the API ----------------------------------------------------------------------

@pytest.mark.emulation
@pytest.mark.slow
@root_only
def test_a_lab_goes_up_gets_a_fault_is_probed_repaired_and_goes_down_through_the_api(api_server):
    prefix = "ea"
    cleanup.remove_lab(prefix)
    cell = ("kind:district", "service:portal")
    try:
        with api_server.client() as c:
            c.post("/api/v1/scenarios", json={"name": "mini", "yaml": (SCENARIOS / "mini.yml").read_text()})
            up = api_server.wait_job(c.put(f"/api/v1/labs/{prefix}", json={"scenario": "mini"}).json())
            assert up["state"] == "succeeded", up["log_tail"]
            assert c.put(f"/api/v1/labs/{prefix}", json={"scenario": "mini"}).status_code == 409
            status = c.get(f"/api/v1/labs/{prefix}").json()
            assert status["controller"]["programmed"] == status["switches"] == 9 and status["links_down"] == {}

            def matrix() -> dict:
                job = api_server.wait_job(c.post(f"/api/v1/labs/{prefix}/probes/matrix").json())
                assert job["state"] == "succeeded", job["log_tail"]
                m = c.get(f"/api/v1/labs/{prefix}/probes/matrix").json()
                assert m["job"] == job["id"]
                return m

            before = matrix()
            assert before["summary"]["differ"] == 0
            reached = {(x["source"], x["target"]): x["reached"] for x in before["heatmap"]["cells"]}
            assert reached[cell] > 0

            r = c.post(f"/api/v1/labs/{prefix}/faults", json={"action": "link-down", "target": "town--core"})
            assert r.status_code == 201 and len(r.json()["interfaces"]) == 2
            assert c.post(f"/api/v1/labs/{prefix}/faults", json={"action": "link-down", "target": "nope"}
                          ).status_code == 422
            assert list(c.get(f"/api/v1/labs/{prefix}").json()["links_down"]) == ["town--core"]
            assert [f["target"] for f in c.get(f"/api/v1/labs/{prefix}/faults").json()["active"]] == ["town--core"]
            topo = {l["name"]: l["status"] for l in c.get(f"/api/v1/labs/{prefix}/topology").json()["links"]}
            assert topo == {"dc--core": "up", "town--core": "down", "town-xa-01--town": "up",
                            "town-xa-02--town": "up"}
            metrics = c.get("/metrics").text
            assert f'egovlab_link_up{{kind="tslcd-l2",link="town--core",prefix="{prefix}",role="primary"}} 0.0' in metrics
            assert f'egovlab_faults_active{{prefix="{prefix}"}} 1.0' in metrics
            assert f'egovlab_controller_switches_programmed{{prefix="{prefix}"}} 9.0' in metrics
            # every series the alerting rules use is exported (the lab's controller's included)
            exported = set(re.findall(r"^# HELP (\w+)", metrics, re.M))
            used = set(re.findall(r"\begovlab_\w+", ALERTS.read_text()))
            assert used <= exported | {n + "_total" for n in exported}, used - exported

            after = matrix()
            cells = {(x["source"], x["target"]): x for x in after["heatmap"]["cells"]}
            assert cells[cell]["reached"] == 0 and cells[cell]["differ"] > 0
            assert f'egovlab_probe_results{{outcome="differ",prefix="{prefix}"}} {float(after["summary"]["differ"])}' \
                   in c.get("/metrics").text

            assert c.delete(f"/api/v1/labs/{prefix}/faults").json()["cleared"]
            assert c.get(f"/api/v1/labs/{prefix}").json()["links_down"] == {}
            assert matrix()["summary"]["differ"] == 0

            down = api_server.wait_job(c.delete(f"/api/v1/labs/{prefix}").json())
            assert down["state"] == "succeeded", down["log_tail"]
            assert c.get(f"/api/v1/labs/{prefix}").status_code == 404
            assert [j["kind"] for j in c.get("/api/v1/jobs").json() if j["prefix"] == prefix][::-1][:2] == \
                   ["lab-up", "probe-matrix"]
    finally:
        lifecycle.stop(prefix)
    assert cleanup.leftovers(prefix) == {"bridges": [], "links": [], "processes": [], "ovs_shards": []}
    assert read_state(prefix) is None


@pytest.mark.emulation
@root_only
def test_events_stream_a_status_when_a_link_is_cut(api_server):
    """The live view's feed: a `status` event at once, and another when the lab changes."""
    import httpx

    prefix = "eb"
    cleanup.remove_lab(prefix)
    try:
        with api_server.client() as c:
            c.post("/api/v1/scenarios", json={"name": "mini", "yaml": (SCENARIOS / "mini.yml").read_text()})
            assert api_server.wait_job(c.put(f"/api/v1/labs/{prefix}", json={"scenario": "mini", "sdn": False}
                                             ).json())["state"] == "succeeded"
            with httpx.stream("GET", f"{api_server.url}/api/v1/events", params={"prefix": prefix}, timeout=30,
                              headers={"Authorization": f"Bearer {api_server.reader}"}) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                seen = []
                for line in stream.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    seen.append(json.loads(line[6:]))
                    if len(seen) == 1:
                        assert seen[0]["lab"]["links_down"] == {} and prefix in seen[0]["labs"]
                        c.post(f"/api/v1/labs/{prefix}/faults", json={"action": "link-down", "target": "dc--core"})
                    elif seen[-1]["lab"]["links_down"]:
                        break
            assert list(seen[-1]["lab"]["links_down"]) == ["dc--core"]
            api_server.wait_job(c.delete(f"/api/v1/labs/{prefix}").json())
    finally:
        lifecycle.stop(prefix)
    assert cleanup.leftovers(prefix) == {"bridges": [], "links": [], "processes": [], "ovs_shards": []}
