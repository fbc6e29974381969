"""`egovlab verify`, pure: the compiled program against the one policy model, exhaustively.

Property tests over generated scenarios hold the compiler to the intent; mutation tests break
the compiler's output on purpose and check that each break is reported, naming its rule.
"""
from __future__ import annotations

import copy
import dataclasses
import random
import subprocess

import pytest
import yaml
from hypothesis import HealthCheck, given, reject, settings, strategies as st

from egovlab.inventory import loader
from egovlab.inventory.errors import InputError
from egovlab.inventory.graph import redundant_links
from egovlab.inventory.policy import Intent, endpoint_of, intended_ports
from egovlab.sdn import compiler, verify
from egovlab.sdn.compiler import TABLE_FORWARD, TABLE_POLICY, Group, Rule
from egovlab.topology.model import emulation_plan

from .conftest import EGOVLAB, SCENARIOS

SMALL = yaml.safe_load((SCENARIOS / "small-dc.yml").read_text())


def _verify(sc, plan=None, programs=None, down=frozenset()):
    plan = plan or emulation_plan(sc)
    programs = programs if programs is not None else compiler.compile_network(sc, plan)
    return verify.verify(Intent(sc), plan, programs, down)


@pytest.mark.parametrize("name", ["mini.yml", "small-dc.yml", "wan.yml"])
def test_the_test_scenarios_verify_equal_intact_and_after_every_redundant_cut(name):
    sc = loader.load(SCENARIOS / name)
    plan = emulation_plan(sc)
    report = _verify(sc, plan)
    assert report.equal and report.permitted == report.intended > 0, report.differences[:3]
    for link in redundant_links(sc):
        programs, down = verify.program(sc, plan, [link], reconverged=True)
        after = verify.verify(Intent(sc), plan, programs, down, [link])
        assert after.equal, (link, after.differences[:3])


def test_the_province_verifies_equal_intact_and_after_redundant_cuts(dongthap):
    plan = emulation_plan(dongthap)
    report = _verify(dongthap, plan)
    assert report.equal and report.sources == len(plan.hosts) and report.classes > 1_000_000
    assert report.permitted == report.intended > 10_000 and not report.shadowed
    cuts = random.Random(16).sample(redundant_links(dongthap), 3)
    for link in cuts:
        programs, down = verify.program(dongthap, plan, [link], reconverged=True)
        assert verify.verify(Intent(dongthap), plan, programs, down, [link]).equal, link


def test_fast_failover_alone_repairs_the_forward_path_of_a_redundant_cut():
    """Before the controller re-programs, the groups carry new connections out; replies that the
    far side's core sends over the cut link wait for the re-programming (no loop-free alternate
    there). verify says exactly which, naming the core's forwarding rule."""
    sc = loader.load(SCENARIOS / "small-dc.yml")
    plan = emulation_plan(sc)
    programs, down = verify.program(sc, plan, ["town--core-1"])
    report = verify.verify(Intent(sc), plan, programs, down, ["town--core-1"])
    assert report.differences and {d["outcome"] for d in report.differences} == {"reply-port-down"}
    assert {d["rule"].split(" (")[0] for d in report.differences} == {"core-1/lan"}
    assert all(d["source"].startswith("town") for d in report.differences)


# -- mutations: a broken program is reported, naming the rule --------------------------------------

@pytest.fixture
def small():
    sc = loader.load(SCENARIOS / "small-dc.yml")
    plan = emulation_plan(sc)
    return sc, plan, compiler.compile_network(sc, plan)


def _edge(plan, label: str):
    host = plan.hosts[plan.by_label[label]]
    sw, port = compiler.attachments(plan)[host.name]
    return host, plan.switches[sw], port


def _mutated(programs, dpid: int, rules: list[Rule] | None = None, groups: dict | None = None):
    out = copy.copy(programs)
    prog = programs[dpid]
    out[dpid] = dataclasses.replace(prog, rules=prog.rules if rules is None else rules,
                                    groups=prog.groups if groups is None else groups)
    return out


def test_a_missing_default_deny_is_reported_as_a_black_hole(small):
    sc, plan, programs = small
    _, sw, _ = _edge(plan, "town-h1")
    rules = [r for r in programs[sw.dpid].rules if not (r.table == TABLE_POLICY and r.priority == 0)]
    report = _verify(sc, plan, _mutated(programs, sw.dpid, rules))
    assert not report.equal and report.black_holes
    assert any(f"{sw.label} ({sw.name}) table 1: no rule matches" in d["rule"] for d in report.differences
               if d["outcome"] == "black-hole") or report.black_holes[0]["chain"][-1]["priority"] == -1


def test_a_wrong_port_is_reported_both_ways_naming_the_rule(small):
    sc, plan, programs = small
    host, sw, port = _edge(plan, "town-h1")
    rules, wrong = [], None
    for r in programs[sw.dpid].rules:
        m = dict(r.match)
        if wrong is None and r.table == TABLE_POLICY and m.get("in_port") == port and m.get("tcp_dst") == 443:
            wrong = dataclasses.replace(r, match=tuple(sorted({**m, "tcp_dst": 8443}.items())))
            r = wrong
        rules.append(r)
    assert wrong is not None
    report = _verify(sc, plan, _mutated(programs, sw.dpid, rules))
    leaks = [d for d in report.differences if d["class"] == "tcp/8443" and d["verified"]]
    lost = [d for d in report.differences if d["class"] == "tcp/443" and d["source"] == "town-h1" and d["intended"]]
    assert leaks and lost
    assert leaks[0]["rule"] == f"{sw.label} ({sw.name}) table 1 priority {wrong.priority} cookie {wrong.cookie:#x}"
    assert f"{sw.label} ({sw.name}) table 1 priority 0 " in lost[0]["rule"]  # the default deny


def test_a_rule_on_the_wrong_switch_is_reported(small):
    sc, plan, programs = small
    host, sw, port = _edge(plan, "town-h1")
    moved = [r for r in programs[sw.dpid].rules if r.table == TABLE_POLICY and dict(r.match).get("in_port") == port
             and "tcp_dst" in dict(r.match)]
    other = next(s for s in plan.switches.values() if s.name != sw.name and s.role == "core")
    mutated = _mutated(programs, sw.dpid, [r for r in programs[sw.dpid].rules if r not in moved])
    mutated = _mutated(mutated, other.dpid, [*mutated[other.dpid].rules, *moved])
    report = _verify(sc, plan, mutated)
    lost = {(d["destination"], d["family"]) for d in report.differences if d["source"] == "town-h1"}
    assert lost and all(not d["verified"] and d["intended"] for d in report.differences)
    assert all(d["rule"].startswith(f"{sw.label} ({sw.name}) table 1 priority 0") for d in report.differences)


def test_an_allow_that_leaks_another_family_is_reported_naming_it(small):
    sc, plan, programs = small
    host, sw, port = _edge(plan, "town-h1")
    db = plan.hosts[plan.by_label["db-1"]]
    leak = Rule.make(TABLE_POLICY, 150, [("ct_commit", compiler.CT_ZONE, 7), ("goto", TABLE_FORWARD)],
                     ct_state=(0x21, 0x21), in_port=port, eth_type=0x86DD, ipv6_src=str(host.ipv6.ip),
                     ipv6_dst=str(db.ipv6.ip), ip_proto=6, tcp_dst=5432)
    report = _verify(sc, plan, _mutated(programs, sw.dpid, [*programs[sw.dpid].rules, leak]))
    assert [(d["source"], d["destination"], d["family"], d["class"], d["verified"]) for d in report.differences] == \
        [("town-h1", "db-1", 6, "tcp/5432", True)]
    assert report.differences[0]["rule"] == f"{sw.label} ({sw.name}) table 1 priority 150 cookie {leak.cookie:#x}"


def test_address_resolution_that_does_not_reach_the_controller_is_reported(small):
    sc, plan, programs = small
    _, sw, _ = _edge(plan, "town-h1")
    rules = [r for r in programs[sw.dpid].rules if dict(r.match).get("eth_type") != 0x0806]
    report = _verify(sc, plan, _mutated(programs, sw.dpid, rules))
    arp = [d for d in report.differences if d["class"] == "arp"]
    assert {d["source"] for d in arp} == {"town-h1", "town-h2"} and {d["outcome"] for d in arp} == {"black-hole"}
    assert arp[0]["rule"] == f"{sw.label} ({sw.name}) table 0: no rule matches"


def test_a_dropped_reply_rule_is_reported(small):
    sc, plan, programs = small
    _, sw, _ = _edge(plan, "web-1")
    rules = [r for r in programs[sw.dpid].rules if not (r.table == TABLE_POLICY and r.priority in (1000, 1010))]
    report = _verify(sc, plan, _mutated(programs, sw.dpid, rules))
    replies = [d for d in report.differences if d["destination"] in ("web-1", "web-2", "db-1")]
    assert replies and {d["outcome"] for d in replies} == {"reply-denied"}
    assert all(d["rule"].startswith(f"{sw.label} ({sw.name}) table 1 priority 0") for d in replies)


def test_a_fast_failover_group_whose_backup_points_nowhere_is_reported_under_the_fault(small):
    sc, plan, programs = small
    _, down = verify.program(sc, plan, ["town--core-1"])
    town = {s.name for s in plan.switches.values() if s.site == "town"}
    sw = plan.switches[next(i.split("-eth")[0] for i in sorted(down) if i.split("-eth")[0] in town)]
    groups = {gid: Group(gid, (g.buckets[0], (g.buckets[1][0], 99)), g.kind) if g.kind == "ff" else g
              for gid, g in programs[sw.dpid].groups.items()}
    assert groups, "the uplink switch has fast-failover groups"
    mutated = _mutated(programs, sw.dpid, groups=groups)
    assert _verify(sc, plan, mutated).equal  # nothing shows while the primary is up
    broken = verify.verify(Intent(sc), plan, mutated, down, ["town--core-1"])
    outs = [d for d in broken.differences if d["source"].startswith("town") and d["outcome"] == "black-hole"]
    assert outs and all("table 2 priority 100" in d["rule"] and sw.name in d["rule"] for d in outs)


# -- properties over generated scenarios -----------------------------------------------------------

SOURCES = ["any", "kind:internet", "kind:district", "kind:commune", "zone:dmz", "zone:db", "zone:soc", "site:town"]
TARGETS = ["service:portal", "service:csdl", "zone:db", "zone:dmz", "kind:district", "site:internet", "kind:commune"]
PORTS = ["tcp/443", "tcp/22", "udp/514", "icmp", "any", "tcp/5432"]
VERSIONS = st.sampled_from([[4], [6], [4, 6]])


@st.composite
def scenarios(draw):
    raw = copy.deepcopy(SMALL)
    raw["ipv6"] = {"default_stage": draw(st.sampled_from(["dual-stack", "v4-only"])),
                   "phases": [{"name": "p1", "start": "2024-01-01",
                               "kinds": {k: draw(st.sampled_from(["dual-stack", "v6-only", "v4-only"]))
                                         for k in draw(st.sets(st.sampled_from(["commune", "district", "internet"]),
                                                               max_size=2))}}]}
    for svc in ("portal", "csdl"):
        raw["services"][svc]["ip_versions"] = draw(VERSIONS)
        raw["services"][svc]["ports"] = draw(st.lists(st.sampled_from(["tcp/443", "tcp/80", "udp/514", "tcp/5432"]),
                                                      min_size=1, max_size=2, unique=True))
    flows = []
    for _ in range(draw(st.integers(1, 4))):
        flow = {"from": draw(st.lists(st.sampled_from(SOURCES), min_size=1, max_size=2, unique=True)),
                "to": draw(st.lists(st.sampled_from(TARGETS), min_size=1, max_size=2, unique=True))}
        if draw(st.booleans()) or not all(t.startswith("service:") for t in flow["to"]):
            flow["ports"] = draw(st.lists(st.sampled_from(PORTS), min_size=1, max_size=3, unique=True))
        if draw(st.booleans()):
            flow["ip"] = draw(VERSIONS)
        if draw(st.integers(0, 4)) == 0:
            flow["relation"] = "parent"
        flows.append(flow)
    raw["policy"] = {"allow": flows}
    try:
        return loader.load_data(raw, "generated.yml")
    except InputError:
        reject()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(scenarios())
def test_the_compiled_program_permits_exactly_what_the_policy_intends(sc):
    report = _verify(sc)
    assert report.equal, report.differences[:3]
    assert report.permitted == report.intended


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(scenarios())
def test_the_pairwise_intent_and_the_endpoint_evaluator_are_one_reading(sc):
    """`Intent` (what the compiler and verify read) and `intended_ports` (what the probes read)
    select hosts differently; they must give the same answer for every pair."""
    intent = Intent(sc)
    hosts = list(sc.plan.hosts)
    for src in hosts:
        for dst in hosts:
            if src != dst:
                assert intent.ports(src, dst) == intended_ports(sc, endpoint_of(sc, src), endpoint_of(sc, dst)), \
                    (src, dst)


def test_the_verb_exits_0_1_and_2(tmp_path):
    ok = subprocess.run([str(EGOVLAB), "verify", str(SCENARIOS / "small-dc.yml"), "--json", str(tmp_path / "v.json")],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "the program equals the intent" in ok.stdout
    assert '"equal": true' in (tmp_path / "v.json").read_text()
    cut = subprocess.run([str(EGOVLAB), "verify", str(SCENARIOS / "small-dc.yml"), "--fault", "town--core-1"],
                         capture_output=True, text=True, timeout=120)
    assert cut.returncode == 1 and "reply-port-down" in cut.stdout
    bad = subprocess.run([str(EGOVLAB), "verify", str(SCENARIOS / "small-dc.yml"), "--fault", "nowhere"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "neither a link nor a switch" in bad.stderr and "Traceback" not in bad.stderr
