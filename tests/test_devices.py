"""The pure parts behind the NAPALM driver: device names, wiring as LLDP, MAC tables from the
compiled program, rendered rules and their diff, policy candidates (no root, no lab)."""
from __future__ import annotations

import pytest
import yaml

from egovlab.inventory import addressing, loader, policy_edit
from egovlab.inventory.errors import EgovlabError
from egovlab.sdn import compiler, entries, render
from egovlab.topology import devices
from egovlab.topology.model import emulation_plan

from .conftest import SCENARIOS


@pytest.fixture(scope="module")
def province(dongthap):
    return dongthap, emulation_plan(dongthap, prefix="eg")


def test_device_names_resolve_both_ways_and_unknown_ones_are_refused(province):
    sc, plan = province
    inventory = devices.inventory(plan)
    assert len(inventory) == len(plan.switches) + len(plan.hosts) == 470
    for d in inventory:
        assert devices.resolve(plan, d["name"]) == d["node"] == devices.resolve(plan, d["node"])
        assert "/" not in d["name"]  # a URL path segment
    assert devices.resolve(plan, "h-cao-lanh/agg") == devices.resolve(plan, "h-cao-lanh:agg")
    with pytest.raises(EgovlabError, match="unknown device 'nowhere:lan'"):
        devices.resolve(plan, "nowhere:lan")


def test_lldp_from_the_wiring_is_symmetric_and_covers_every_link(province):
    _, plan = province
    seen = 0
    for node in [*plan.switches, *plan.hosts]:
        name = devices.name_of(plan, node)
        for intf, [n] in devices.lldp_neighbors(plan, node).items():
            peer = devices.resolve(plan, n["hostname"])
            assert devices.lldp_neighbors(plan, peer)[n["port"]] == [{"hostname": name, "port": intf}]
            seen += 1
    assert seen == 2 * len(plan.links)
    detail = devices.lldp_neighbors_detail(plan, plan.by_label["web-dvc-1"])
    [entry] = detail[f"{plan.by_label['web-dvc-1']}-eth0"]
    assert entry["remote_system_capab"] == ["bridge"] and entry["remote_chassis_id"].count(":") == 5


def test_the_mac_table_of_a_switch_reaches_every_host(province):
    sc, plan = province
    programs = compiler.compile_network(sc, plan)
    node = plan.site_switch["h-cao-lanh"]
    table = entries.mac_table(plan, node, programs[plan.switches[node].dpid])
    ports = {p.interface for p in devices.ports(plan, node)}
    assert {e["mac"] for e in table} == {h.mac for h in plan.hosts.values()}
    assert all(e["interface"] in ports and e["static"] for e in table)
    # a host of the district's own LAN by its access port, the rest by the routes towards them
    lan = plan.by_label["h-cao-lanh/lan"]
    here = {e["mac"]: e["interface"] for e in entries.mac_table(plan, lan, programs[plan.switches[lan].dpid])}
    local = [(host, port) for host, (edge, port) in compiler.attachments(plan).items() if edge == lan]
    assert local and all(here[plan.hosts[host].mac] == f"{lan}-eth{port}" for host, port in local)
    oob = next(s for s in plan.switches.values() if s.role == "oob" and s.site == "provincial-dc")
    mgmt = {e["mac"] for e in entries.mac_table(plan, oob.name, programs[oob.dpid])}
    assert mgmt == {h.mgmt_mac for h in plan.hosts.values() if h.site == "provincial-dc" and h.mgmt_ipv4}


def test_rendered_programs_diff_line_by_line(province):
    sc, plan = province
    before = compiler.compile_network(sc, plan)
    raw = yaml.safe_load(open(sc.source).read())
    allocations = addressing.read_allocations(addressing.allocation_path(sc.source))
    _, changed = policy_edit.apply(raw, "- {from: kind:commune, to: service:csdl}", "merge", "candidate",
                                   allocations)
    after = compiler.compile_network(changed, plan)
    diffs = {plan.switches[n].label: render.program_diff(before[s.dpid], after[s.dpid], s.label)
             for n, s in plan.switches.items()}
    touched = {k: v for k, v in diffs.items() if v}
    assert touched and all(line.startswith(("+", "-", "@")) for d in touched.values() for line in d.splitlines())
    assert any("+table=1(policy)" in d for d in touched.values())
    first = next(iter(before.values()))
    assert render.program_diff(first, first, "x") == ""


def test_candidates_in_the_scenario_policy_format():
    raw = yaml.safe_load((SCENARIOS / "small-dc.yml").read_text())
    flow = {"from": "kind:commune", "to": "service:csdl"}
    for text in ("- {from: kind:commune, to: service:csdl}", "allow: [{from: kind:commune, to: service:csdl}]",
                 "policy: {allow: [{from: kind:commune, to: service:csdl}]}"):
        assert policy_edit.parse_candidate(text) == [flow]
    merged = policy_edit.changed(raw, [flow], "merge")
    assert merged["policy"]["allow"][-1] == flow and len(merged["policy"]["allow"]) == len(raw["policy"]["allow"]) + 1
    assert policy_edit.changed(merged, [flow], "merge") == merged  # merging twice adds nothing
    assert policy_edit.changed(raw, [flow], "replace")["policy"]["allow"] == [flow]
    assert raw["policy"]["allow"][-1] != flow  # the input is not modified
    for bad, message in (("- {from: [", "candidate: line 2, column 1: YAML syntax error"),
                         ("42", "expected a list of flows"), ("- [1, 2]", "expected a list of flows"),
                         ("a: &a [*a]", "recursive structure")):
        with pytest.raises(EgovlabError, match=message):
            policy_edit.parse_candidate(bad)
    with pytest.raises(policy_edit.CandidateError, match="makes the scenario invalid"):
        policy_edit.apply(raw, "- {from: zone:nowhere, to: service:csdl}", "merge", "candidate", {})
    with pytest.raises(policy_edit.CandidateError, match="mode"):
        policy_edit.changed(raw, [flow], "append")
    assert len(loader.load_text(yaml.safe_dump(merged), "x.yml").spec.policy.allow) == len(merged["policy"]["allow"])
