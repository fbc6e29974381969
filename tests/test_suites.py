"""Scenario test suites and the resilience model.

Pure (no root): malformed suites, each refused with its exact message before any lab; the
shipped Đồng Tháp suite is valid; the model's lost flows for every single failure of small-dc
equal what `verify --reconverged` proves through the compiled tables (two readings of the same
question that must not drift). As root: a suite on a real lab (exit 1 and a JUnit failure
naming the step when an expectation is wrong), a lab that cannot come up (exit 3), and the
model's prediction equal to the emulated outcome for every single-link failure of small-dc.
"""
from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from egovlab import lifecycle
from egovlab.inventory import loader
from egovlab.inventory.errors import InputError
from egovlab.inventory.policy import Intent
from egovlab.sdn import resilience, verify
from egovlab.suites import runner, schema
from egovlab.topology import cleanup, faults
from egovlab.topology.model import emulation_plan
from egovlab.topology.state import read_state

from .conftest import EGOVLAB, ROOT, SCENARIOS
from .test_ovs_shards import small_udp

SMALL = SCENARIOS / "small-dc.yml"
NOTHING = {"bridges": [], "links": [], "processes": [], "ovs_shards": []}


@pytest.fixture(scope="module")
def small():
    sc = loader.load(SMALL)
    return sc, emulation_plan(sc, prefix="et")


def _suite(steps: str, extra: str = "") -> str:
    return f"suite: s\n{extra}tests:\n  - name: t\n    steps:\n{steps}"


MALFORMED = [
    ("tests: []\n", "suite: missing required field"),
    ("suite: s\ntests: []\n", "tests: expected at least 1 item(s), got 0"),
    ("suite: s\ntests:\n  - name: t\n    steps: []\n", "tests[0].steps: expected at least 1 item(s), got 0"),
    ("suite: s\ntests:\n  - steps: [{wait: 1s}]\n", "tests[0].name: missing required field"),
    ("suite: s\ncolour: red\ntests:\n  - name: t\n    steps: [{wait: 1s}]\n", "colour: unknown field"),
    (_suite("      - {wait: 1s}\n", "stop_on_error: maybe\n"), "stop_on_error: input should be a valid boolean"),
    ("suite: s\ntests:\n  - name: t\n    level: fatal\n    steps: [{wait: 1s}]\n",
     "tests[0].level: expected one of 'error' or 'warning', got 'fatal'"),
    (_suite("      - jump: 3\n"),
     "tests[0].steps[0]: unknown step 'jump' (expected one of: fault, flap, wait, reach, deny, failover, service, "
     "drill, failback, restore)"),
    (_suite("      - service: portal\n"),
     "tests[0].steps[0].service.name: the portal ('cong-dvc') is the service citizens reach through its address, "
     "got 'portal'"),
    (_suite("      - service: {within: 2 hours}\n"), "tests[0].steps[0].service.within: expected a duration like '2s'"),
    (_suite("      - drill: {fail: dc}\n"),
     "tests: its service, drill and failback steps need the services deployed: the drill needs a provincial-dc and a "
     "backup-dc"),
    (_suite("      - drill: {fail: town}\n"),
     "tests[0].steps[0].drill.fail: the drill fails the provincial DC over to the backup: expected 'dc', got 'town'"),
    (_suite("      - drill: {fail: dc}\n"), "tests[0].steps[0].drill: the scenario has no resilience targets: give "
                                          "max_rto and max_rpo"),
    (_suite("      - drill: {fail: dc, seconds: 5, max_rto: 1m, max_rpo: 0s}\n"),
     "tests[0].steps[0].drill.seconds: input should be greater than or equal to 15"),
    (_suite("      - drill: {fail: dc, max_rto: 1m, max_rpo: 0s}\n      - service: cong-dvc\n"
            "      - drill: {fail: dc, max_rto: 1m, max_rpo: 0s}\n"),
     "tests[0].steps[2]: the drill at tests[0].steps[0] already failed the services over: fail back (a 'failback' "
     "step) before drilling again"),
    (_suite("      - failback: {max_rto: 1m, max_rpo: 0s}\n"),
     "tests[0].steps[0]: nothing to fail back: a failback follows a drill in the same test"),
    (_suite("      - drill: {fail: dc, max_rto: 1m, max_rpo: 0s}\n      - failback:\n"),
     "tests[0].steps[1].failback: the scenario has no resilience targets: give max_rto and max_rpo"),
    (_suite("      - drill: {fail: dc, max_rto: 1m, max_rpo: 0s}\n      - failback: {seconds: 3}\n"),
     "tests[0].steps[1].failback.seconds: input should be greater than or equal to 15"),
    (_suite("      - {fault: link-down town--core-1, wait: 1s}\n"), "tests[0].steps[0]: a step is a mapping of one key"),
    (_suite("      - wait: 2 hours\n"), "tests[0].steps[0].wait: expected a duration like '2s' or '500ms', got '2 hours'"),
    (_suite("      - wait: 11m\n"), "tests[0].steps[0].wait: a duration from 0 to 600 s, got '11m'"),
    (_suite("      - fault: explode town\n"), "tests[0].steps[0].fault.action: expected one of"),
    (_suite("      - fault: link-down nowhere\n"),
     "tests[0].steps[0].fault: unknown link 'nowhere' (see `egovlab plan FILE --view links`)"),
    (_suite("      - fault: switch-down nosuch\n"), "tests[0].steps[0].fault: unknown switch 'nosuch'"),
    (_suite("      - fault: dc-down town\n"), "tests[0].steps[0].fault: 'town' is not a data centre"),
    (_suite("      - restore: isolate atlantis\n"), "tests[0].steps[0].restore: unknown site 'atlantis'"),
    (_suite("      - reach: {from: zone:nope, to: service:portal}\n"),
     "tests[0].steps[0].reach.from: zone 'nope' is not defined in any data centre"),
    (_suite("      - deny: {from: kind:village, to: service:portal}\n"),
     "tests[0].steps[0].deny.from: unknown site kind 'village'"),
    (_suite("      - deny: {from: kind:commune, to: service:ghost}\n"),
     "tests[0].steps[0].deny.to: unknown service 'ghost'"),
    (_suite("      - reach: {from: town, to: service:portal}\n"),
     "tests[0].steps[0].reach.from: expected 'zone:NAME', 'kind:KIND', 'site:NAME', 'service:NAME' or 'any'"),
    (_suite("      - reach: {from: any, to: any, ip: 5}\n"), "tests[0].steps[0].reach.ip: expected one of 4, 6 or 'both'"),
    (_suite("      - reach: {from: any, to: any, ports: [tcp/99999]}\n"),
     "tests[0].steps[0].reach.ports[0]: expected a port like 'tcp/443'"),
    (_suite("      - reach: {from: any, to: any, hosts: most}\n"),
     "tests[0].steps[0].reach.hosts: expected one of 'all' or 'any', got 'most'"),
    (_suite("      - failover: {link: town--core-1}\n"), "tests[0].steps[0].failover.max_outage_ms: missing required field"),
    (_suite("      - failover: {link: town--core-1, max_outage_ms: -5}\n"),
     "tests[0].steps[0].failover.max_outage_ms: input should be greater than or equal to 0"),
    (_suite("      - failover: {link: town--core-1, max_outage_ms: .nan}\n"),
     "tests[0].steps[0].failover.max_outage_ms: input should be a finite number"),
    (_suite("      - failover: {link: town--core-1, max_outage_ms: 50, port: tcp/443}\n"),
     "tests[0].steps[0].failover.port: the failover probe sends UDP: expected 'udp/N', got 'tcp/443'"),
    (_suite("      - failover: {link: town--core-1, max_outage_ms: 50, from: town-h1}\n"),
     "tests[0].steps[0].failover: give both 'from' and 'to', or neither"),
    (_suite("      - failover: {link: town--core-1, max_outage_ms: 50, from: town-h1, to: nobody}\n"),
     "tests[0].steps[0].failover.to: unknown host 'nobody' in the lab"),
    (_suite("      - flap: {link: town--core-1, count: 0}\n"),
     "tests[0].steps[0].flap.count: input should be greater than or equal to 1"),
    (_suite("      - flap: {link: ghost}\n"), "tests[0].steps[0].flap.link: unknown link 'ghost'"),
    ("suite: s\ntests:\n  - {name: t, steps: [{wait: 1s}]}\n  - {name: t, steps: [{wait: 1s}]}\n",
     "tests[1].name: a second test named 't'"),
    (_suite("      - wait: 1s\n", "scenario: dongthap\n"), "scenario: the suite is for scenario 'dongthap', not 'small-dc'"),
    ("- just\n- a list\n", "expected a mapping with 'suite' and 'tests', got list"),
    ("suite: [unclosed\n", "YAML syntax error"),
]


@pytest.mark.parametrize("text,message", MALFORMED, ids=[m[:60] for _, m in MALFORMED])
def test_a_malformed_suite_is_refused_with_its_field_path(text: str, message: str, small, tmp_path):
    sc, plan = small
    path = tmp_path / "bad.tests.yml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        schema.read(str(path), sc, plan)
    assert message in str(caught.value), str(caught.value)
    assert str(caught.value).startswith(f"{path}: ")


def test_every_problem_of_a_suite_is_reported_at_once(small, tmp_path):
    sc, plan = small
    path = tmp_path / "bad.tests.yml"
    path.write_text(_suite("      - fault: link-down nowhere\n      - deny: {from: kind:village, to: any}\n"
                           "      - flap: {link: ghost}\n"))
    with pytest.raises(InputError) as caught:
        schema.read(str(path), sc, plan)
    assert [p.path for p in caught.value.problems] == ["tests[0].steps[0].fault", "tests[0].steps[1].deny.from",
                                                       "tests[0].steps[2].flap.link"]


def test_the_cli_refuses_a_bad_suite_with_exit_2_before_any_lab(tmp_path):
    path = tmp_path / "bad.tests.yml"
    path.write_text(_suite("      - fault: link-down nowhere\n"))
    r = subprocess.run([str(EGOVLAB), "test", str(SMALL), str(path), "--prefix", "eo"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip() == f"{path}: tests[0].steps[0].fault: unknown link 'nowhere' (see `egovlab plan FILE " \
                               f"--view links`)"
    assert "Traceback" not in r.stderr and read_state("eo") is None
    r = subprocess.run([str(EGOVLAB), "test", str(SMALL), str(ROOT / "tests" / "suites" / "small-dc.tests.yml"),
                        "--only", "no such test", "--prefix", "eo"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--only: no test named 'no such test'" in r.stderr, r.stderr


def test_the_shipped_dongthap_suite_is_valid_and_covers_what_the_issue_asks(dongthap):
    suite = schema.read("dongthap", dongthap, emulation_plan(dongthap, prefix="et"))
    steps = [type(s).__name__ for t in suite.tests for s in t.steps]
    assert {"FaultStep", "FlapStep", "WaitStep", "ReachStep", "DenyStep", "FailoverStep", "RestoreStep"} <= set(steps)
    assert len(suite.tests) >= 9


# -- the model against the verifier (pure) ---------------------------------------------------

def test_the_models_lost_flows_equal_what_verify_proves_for_every_single_failure(small):
    """Connectivity (the model) and the compiled tables walked (verify --reconverged) give the
    same intended host pairs lost, for every link, switch, site and data-centre failure."""
    sc, plan = small
    intent = Intent(sc)
    model = resilience.Model(sc, plan, intent)
    for failure in resilience.single_failures(sc, plan):
        programs, down = verify.program(sc, plan, reconverged=True, known_down=failure.down)
        report = verify.verify(intent, plan, programs, down)
        proved_lost = {(d["source"], d["destination"]) for d in report.differences if d["intended"]}
        predicted = set(model.effect(failure).lost)
        assert predicted == proved_lost, (failure.kind, failure.target, predicted ^ proved_lost)


@pytest.mark.parametrize("name", ["small-dc.yml", "dongthap"])
def test_the_models_primary_path_is_the_one_the_compiled_tables_send_a_packet_along(name):
    """For every pair of edge switches the model knows a flow between, the links its primary path
    crosses are the links a packet to a host of the far edge crosses through the compiled
    program, switch by switch (verify's walker). What a failure 'moves' rests on this: with a
    path of its own the model called 100 of the province's 902 pairs by another path, among
    them flows over the DC interconnect it said a DCI cut left alone."""
    from egovlab.sdn import compiler
    from egovlab.sdn.program import ETH

    sc = loader.load(SCENARIOS / name if name.endswith(".yml") else name)
    plan = emulation_plan(sc)
    model = resilience.Model(sc, plan)
    walker = verify.Walker(plan, compiler.compile_network(sc, plan))
    link_at = {(n, l.port(n)): (i, l.b if n == l.a else l.a) for i, l in enumerate(plan.links) for n in (l.a, l.b)}
    over = {}
    for i, pairs in model.uses.items():
        for pair in pairs:
            over.setdefault(pair, set()).add(i)
    checked = 0
    for (a, b), flows in model.by_switches.items():
        if a == b:
            continue
        dst = plan.hosts[model.node[flows[0][1]]]
        pkt = {"eth_type": ETH[4], "ipv4_dst": int(dst.ipv4.ip), "eth_dst": dst.mac} if dst.ipv4 else \
            {"eth_type": ETH[6], "ipv6_dst": int(dst.ipv6.ip), "eth_dst": dst.mac}
        crossed, here = set(), a
        while here != b:
            i, here = link_at[(here, walker.next_port(here, pkt))]
            crossed.add(i)
        assert crossed == over.get((a, b), set()), (a, b)
        checked += 1
    assert checked >= (800 if name == "dongthap" else 5)


def test_analyze_finds_the_single_points_of_failure_of_small_dc(small):
    sc, plan = small
    report = resilience.analyze(sc, plan, depth=2)
    by = {(f["kind"], f["target"]): f for f in report["failures"]}
    assert by[("link", "town--core-1")]["lost"] == 0 and by[("link", "town--core-1")]["moved"] > 0
    assert by[("link", "town-xa-01--town")]["sites_cut_off"] == ["town-xa-01"]
    assert by[("switch", "town/agg")]["sites_cut_off"] == ["town", "town-xa-01", "town-xa-02"]
    spof = [(f["kind"], f["target"]) for f in report["single_points_of_failure"]]
    assert spof[0] == ("switch", "town/agg") and ("link", "town--core-1") not in spof
    worst = {r["target"] for r in report["link_pairs"]["worst"]}
    assert "town--core-1 + town--core-2" in worst


# -- on a real lab ---------------------------------------------------------------------------

def on_a_lab(test):
    """Root, Open vSwitch and minutes: marked as such."""
    for mark in (pytest.mark.emulation, pytest.mark.slow,
                 pytest.mark.skipif(os.geteuid() != 0, reason="emulation needs root (CI runs as root)")):
        test = mark(test)
    return test


SUITE = """suite: small-udp
scenario: small-dc
tests:
  - name: redundant uplink cut
    steps:
      - failover: {link: town--core-1, max_outage_ms: 1000}
      - fault: link-down town--core-1
      - wait: converged
      - reach: {from: site:town, to: service:portal}
      - deny: {from: kind:commune, to: zone:db, hosts: any}
  - name: both uplinks cut, with a wrong expectation
    steps:
      - fault: link-down town--core-1
      - fault: link-down town--core-2
      - wait: converged
      - deny: {from: site:town, to: service:portal}
      - reach: {from: site:town-xa-01, to: service:portal}
      - reach: {from: kind:internet, to: service:portal}
  - name: a flapping uplink
    level: warning
    steps:
      - flap: {link: dc--core-1, count: 2, interval: 300ms}
      - wait: converged
      - reach: {from: kind:district, to: service:portal}
"""


@on_a_lab
def test_a_suite_on_a_real_lab_reports_the_failing_step_in_junit_and_exits_1(tmp_path):
    scenario = small_udp(tmp_path)
    suite = tmp_path / "small.tests.yml"
    suite.write_text(SUITE)
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    r = subprocess.run([str(EGOVLAB), "test", str(scenario), str(suite), "--prefix", "eo", "--junit", str(junit),
                        "--json", str(report)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"redundant uplink cut", "both uplinks cut, with a wrong expectation", "a flapping uplink"}
    failure = cases["both uplinks cut, with a wrong expectation"].find("failure")
    assert failure is not None and "reach site:town-xa-01 -> service:portal" in failure.get("message")
    assert cases["redundant uplink cut"].find("failure") is None
    doc = json.loads(report.read_text())
    assert doc["outcome"] == "failed" and doc["passed"] == 2 and doc["failed"] == 1
    assert doc["model_disagrees"] == []  # the model predicted every measurement, the wrong one included
    cut = doc["tests"][0]["steps"][0]
    assert cut["passed"] and cut["predicted"] == "a backup path carries it"
    assert read_state("eo") is None and cleanup.leftovers("eo") == NOTHING


@on_a_lab
def test_a_lab_that_cannot_come_up_gives_exit_3(tmp_path):
    # something else holds a node name of the prefix: the lab refuses to build over it
    subprocess.run(["ip", "link", "add", "eqs1-eth9", "type", "veth", "peer", "name", "eqs1-eth8"], check=True)
    try:
        r = subprocess.run([str(EGOVLAB), "test", str(SMALL), str(ROOT / "tests" / "suites" / "small-dc.tests.yml"),
                            "--prefix", "eq", "--junit", str(tmp_path / "j.xml")], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 3, r.stdout[-2000:] + r.stderr[-2000:]
        assert "the lab failed: " in r.stderr and "Traceback" not in r.stderr
    finally:
        subprocess.run(["ip", "link", "del", "eqs1-eth9"], check=False)
    assert read_state("eq") is None and cleanup.leftovers("eq") == NOTHING


def intended_probe(run: runner.Runner, src: str, dst: str):
    """One probe of an intended host pair: an intended port, over a version both ends have."""
    from egovlab.topology import probes

    hosts = run.lab.plan.hosts
    s, d = hosts[run.lab.plan.by_label[src]], hosts[run.lab.plan.by_label[dst]]
    for v, s_addr, d_addr in ((4, s.ipv4, d.ipv4), (6, s.ipv6, d.ipv6)):
        ports = sorted(p for p in run.intent.ports(src, dst).get(v, ()) if p == "icmp" or p.startswith("tcp/"))
        if s_addr and d_addr and ports:
            return probes.Probe("", "", src, dst, ports[0], v, str(d_addr.ip), True)
    return None


def prediction_holds(run: runner.Runner, failure, planned) -> tuple[set, set]:
    """Inject the failure on the lab, converge, probe; (measured lost, predicted lost) among the
    probed pairs."""
    from egovlab.topology import probes

    plan = run.lab.plan
    run.baseline()
    predicted = set(run.model.effect(failure).lost)
    faults.inject(plan, resilience.FAULT_OF_KIND[failure.kind], failure.target)
    run.converged()
    results = probes.run_matrix(planned, run.lab.pids, plan.by_label, plan.prefix)
    probed = {(p.src_host, p.dst_host) for p in planned}
    return {(r.probe.src_host, r.probe.dst_host) for r in results if not r.reachable}, predicted & probed


@on_a_lab
def test_the_models_prediction_equals_the_lab_for_every_single_link_failure_of_small_dc():

    with lifecycle.session(SMALL, lifecycle.spec("eo"), timeout_s=60) as lab:
        pids = lab.pids
        run = runner.Runner(runner.LabHandle(lab.scenario, lab.plan, pids, True))
        sc, plan = lab.scenario, lab.plan
        planned = [p for pair in run.model.flows if (p := intended_probe(run, *pair))]
        assert len(planned) >= 10
        for link in sc.links:
            measured, predicted = prediction_holds(run, resilience.single(plan, "link", link.name), planned)
            assert measured == predicted, (link.name, measured ^ predicted)
    assert cleanup.leftovers("eo") == NOTHING


@on_a_lab
def test_the_api_runs_a_suite_as_a_job_with_its_junit_and_refuses_a_bad_one(api_server):
    with api_server.client() as c:
        assert c.post("/api/v1/scenarios", json={"name": "small", "yaml": SMALL.read_text()}).status_code == 201
        bad = c.post("/api/v1/tests", json={"scenario": "small", "suite": _suite("      - flap: {link: ghost}\n")})
        assert bad.status_code == 422, bad.text
        assert bad.json()["problems"] == [{"path": "tests[0].steps[0].flap.link",
                                           "message": "unknown link 'ghost' (see `egovlab plan FILE --view links`)"}]
        suite = _suite("      - fault: link-down town--core-1\n      - wait: converged\n"
                       "      - reach: {from: site:town, to: service:portal}\n")
        job = c.post("/api/v1/tests", json={"scenario": "small", "suite": suite, "prefix": "eo"})
        assert job.status_code == 202, job.text
        done = api_server.wait_job(job.json(), timeout_s=300)
        assert done["state"] == "succeeded", done["log_tail"]
        assert done["result"]["outcome"] == "passed" and done["result"]["passed"] == 1
        assert '<testcase name="t"' in done["result"]["junit"]
        assert [j["id"] for j in c.get("/api/v1/tests").json()] == [done["id"]]
    assert read_state("eo") is None and cleanup.leftovers("eo") == NOTHING


def test_every_reach_and_deny_of_the_shipped_suite_holds_in_the_model(dongthap):
    """The shipped suite's expectations are what the model predicts, step by step, without a lab
    (its faults replayed on the model): a wrong expectation fails here, not in `make run`."""
    plan = emulation_plan(dongthap, prefix="et")
    suite = schema.read("dongthap", dongthap, plan)
    run = runner.Runner(runner.LabHandle(dongthap, plan, {}, True))
    wrong = []
    for test in suite.tests:
        down: set[str] = set()
        for step in test.steps:
            if isinstance(step, (schema.FaultStep, schema.RestoreStep)):
                f = step.fault if isinstance(step, schema.FaultStep) else step.restore
                if f == "all":
                    down = set()
                    continue
                ifaces = set(faults.resolve(plan, f.action, f.target))
                down = down - ifaces if f.action in faults.UP_ACTIONS else down | ifaces
            elif isinstance(step, (schema.ReachStep, schema.DenyStep)):
                expect = isinstance(step, schema.ReachStep)
                r = step.reach if expect else step.deny
                lost = set(run.model.effect(resilience.Failure("now", "replayed", frozenset(down))).lost)
                through = [run.predict(p, lost) for p in run.pairs(r)]
                wanted = [t == expect for t in through]
                holds = (all(wanted) if r.hosts == "all" else any(wanted)) if through else not expect
                if not holds:  # (no pair to probe: a deny holds, a reach does not, as in the runner)
                    wrong.append((test.name, r.source, r.to, f"{sum(through)}/{len(through)} through"))
    assert wrong == [], wrong
