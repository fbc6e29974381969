"""The emulation plan and the probe plan, without a kernel: what the province becomes."""
from __future__ import annotations

import copy
from collections import Counter

import pytest

from egovlab.inventory.policy import Endpoint, allowed, endpoint_of
from egovlab.topology.model import emulation_plan, rstp_port_costs, rstp_priorities, shard_assignment
from egovlab.topology.probes import analyse, matrix_plan, representatives


@pytest.fixture(scope="module")
def plan(dongthap):
    return emulation_plan(dongthap)


def test_one_switch_per_site_plus_district_aggregation_and_dc_zones(dongthap, plan):
    roles = Counter(s.role for s in plan.switches.values())
    assert roles["agg"] == 12  # one "switch gom" per district
    assert roles["zone"] == 6 + 5  # the provincial DC's six zones, the backup DC's five
    assert roles["dc-core"] == 2 and roles["oob"] == 2 and roles["core"] == 2
    assert roles["lan"] == len(dongthap.sites) - 2 - 2  # every other site has its LAN switch
    assert len(plan.hosts) == len(dongthap.plan.hosts) == 260


def test_every_scenario_link_is_one_emulated_link_with_its_bandwidth(dongthap, plan):
    for link in dongthap.links:
        emu = plan.links_of_scenario_link(link.name)
        assert len(emu) == 1 and emu[0].bandwidth == link.bandwidth and emu[0].role == link.role
    ftth = plan.links_of_scenario_link("inet-ftth-1")[0]
    assert {plan.switches[ftth.a].site, plan.switches[ftth.b].site} == {"provincial-dc", "internet"}


def test_names_fit_linux_interfaces_and_ports_are_numbered_like_mininet(plan):
    ports: dict[str, list[int]] = {}
    for link in plan.links:
        for node in (link.a, link.b):
            assert len(link.intf(node)) <= 15
            ports.setdefault(node, []).append(link.port(node))
    for node, numbers in ports.items():
        first = 0 if node in plan.hosts else 1
        assert numbers == list(range(first, first + len(numbers))), node


def test_dc_servers_have_a_second_interface_on_the_oob_switch(plan):
    for host in plan.hosts.values():
        links = [l for l in plan.links if host.name in (l.a, l.b)]
        if host.zone:
            assert [l.kind for l in links] == ["access", "mgmt"]
            oob = links[1].b
            assert plan.switches[oob].role == "oob" and host.mgmt_ipv4 is not None
        else:
            assert [l.kind for l in links] == ["access"]


def test_macs_are_unique_and_locally_administered(plan):
    macs = [h.mac for h in plan.hosts.values()] + [h.mgmt_mac for h in plan.hosts.values()]
    assert len(set(macs)) == len(macs)
    assert all(int(m.split(":")[0], 16) & 0x02 for m in macs)


def test_hosts_per_site_caps_representatives_but_keeps_servers(dongthap):
    small = emulation_plan(dongthap, hosts_per_site=0)
    assert all(h.role == "server" for h in small.hosts.values())
    assert sum(h.zone is not None for h in small.hosts.values()) == 33 + 9  # both DCs
    assert len(small.hosts) == 44  # and the national servers


def test_policy_intent(dongthap):
    citizen = endpoint_of(dongthap, "internet-h1")
    web = endpoint_of(dongthap, "web-dvc-1")
    db = endpoint_of(dongthap, "db-1")
    app = endpoint_of(dongthap, "app-motcua-1")
    assert allowed(dongthap, citizen, web, "tcp/443", 4)
    assert not allowed(dongthap, citizen, web, "tcp/22", 4)
    assert not allowed(dongthap, citizen, db, "tcp/5432", 4)
    assert allowed(dongthap, app, db, "tcp/5432", 6)
    assert not allowed(dongthap, web, db, "tcp/5432", 4)  # the DMZ never talks to the DB directly
    jump = endpoint_of(dongthap, "jump-1")
    assert allowed(dongthap, jump, db, "tcp/22", 4) and not allowed(dongthap, web, db, "tcp/22", 4)
    # agency isolation: a commune reaches its own district, not another one
    commune = Endpoint("h-cao-lanh-xa-01")
    assert allowed(dongthap, commune, Endpoint("h-cao-lanh"), "tcp/445", 4)
    assert not allowed(dongthap, commune, Endpoint("h-lap-vo"), "tcp/445", 4)
    assert not allowed(dongthap, commune, Endpoint("h-cao-lanh-xa-02"), "icmp", 4)


def test_matrix_plan_covers_kinds_zones_and_stages(dongthap, plan):
    rows = representatives(dongthap, plan)
    assert {"zone:dmz", "zone:db", "kind:internet", "kind:department"} <= set(rows)
    assert {"kind:commune (v4-only)", "kind:commune (v6-only)"} <= set(rows)
    probes = matrix_plan(dongthap, plan)
    v6_only = [p for p in probes if p.source == "kind:commune (v6-only)"]
    assert v6_only and all(p.version == 6 for p in v6_only)
    assert all(p.version == 4 for p in probes if p.source == "kind:commune (v4-only)")
    allowed_ = {(p.source, p.target, p.port) for p in probes if p.intended}
    assert ("kind:internet", "service:cong-dvc", "tcp/443") in allowed_
    assert ("kind:internet", "service:csdl", "tcp/5432") not in allowed_
    # a commune's "district" column is its own district
    to_district = [p for p in probes if p.source == "kind:commune (v4-only)" and p.target == "kind:district"]
    assert {p.dst_host for p in to_district} == {"tp-sa-dec-h1"} and any(p.intended for p in to_district)


def test_failover_analysis():
    sent = [(i, 100.0 + i * 0.001) for i in range(1000)]
    received = [x for x in sent if not 400 <= x[0] < 450]
    stats = analyse(received, 1000, 0.001, cut_at=100.4)
    assert stats["lost"] == 50 and stats["received"] == 950
    assert stats["outage_ms"] == pytest.approx(50.0)
    assert stats["first_loss_after_cut_ms"] == pytest.approx(0.0, abs=1e-6)
    assert analyse(sent, 1000, 0.001, 100.4)["outage_ms"] == 0
    assert analyse([], 10, 0.001, 0)["lost"] == 10


@pytest.mark.parametrize("shards", [2, 4, 8, 16])
def test_shards_keep_sites_whole_and_share_the_switches_out_evenly(plan, shards):
    placed = shard_assignment(plan, shards)
    assert set(placed) == set(plan.switches) and set(placed.values()) == set(range(shards))
    for site in {s.site for s in plan.switches.values()}:  # a site's switches share a daemon
        assert len({placed[n] for n, s in plan.switches.items() if s.site == site}) == 1
    sizes = Counter(placed.values())
    biggest_site = max(Counter(s.site for s in plan.switches.values()).values())
    assert max(sizes.values()) <= -(-len(plan.switches) // shards) + biggest_site


def test_one_shard_is_the_system_daemon(plan):
    assert set(shard_assignment(plan, 1).values()) == {0}


def test_the_core_is_pinned_as_rstp_root_and_secondary_root(plan):
    assert rstp_priorities(plan) == {plan.node("core-1/lan"): 4096, plan.node("core-2/lan"): 8192}
    # a scenario without a TSLCD core: the data-centre cores take the roles
    no_core = copy.copy(plan)
    no_core.switches = {n: s for n, s in plan.switches.items() if s.role != "core"}
    assert rstp_priorities(no_core) == {plan.node("provincial-dc/core"): 4096, plan.node("backup-dc/core"): 8192}


def test_backup_links_cost_more_to_the_spanning_tree_than_primaries(dongthap, plan):
    costs = rstp_port_costs(plan)
    backups = [l for l in dongthap.links if l.role == "backup"]
    assert backups and len(costs) == 2 * len(backups)  # both ends of every backup, nothing else
    sa_dec = next(l for l in plan.links if l.scenario_link == "tp-sa-dec--core-1")  # its backup
    assert costs[sa_dec.intf(sa_dec.a)] == costs[sa_dec.intf(sa_dec.b)] == 200_000
    assert not any(l.intf(l.a) in costs for l in plan.links if l.role == "primary")
