"""The SDN compiler, without a switch: policy rules against intent, paths and fast-failover groups."""
from __future__ import annotations

import netaddr
import networkx as nx
import pytest

from egovlab.inventory.policy import allowed, endpoint_of
from egovlab.sdn import compiler
from egovlab.topology.model import emulation_plan

from .flows import lookup


@pytest.fixture(scope="module")
def plan(dongthap):
    return emulation_plan(dongthap)


@pytest.fixture(scope="module")
def programs(dongthap, plan):
    return compiler.compile_network(dongthap, plan)


def _opens(rules, src, dst, port: str, version: int) -> bool:
    """Would table 1 commit a new connection src -> dst on `port` (as the switch would match)?"""
    s_addr = str((src.ipv4 if version == 4 else src.ipv6).ip)
    d_addr = str((dst.ipv4 if version == 4 else dst.ipv6).ip)
    k_src, k_dst = ("ipv4_src", "ipv4_dst") if version == 4 else ("ipv6_src", "ipv6_dst")
    want = compiler.port_match(port, version)
    for rule in rules:
        m = dict(rule.match)
        if rule.table != compiler.TABLE_POLICY or m.get(k_src) != s_addr:
            continue
        dst_m = m.get(k_dst)
        if isinstance(dst_m, tuple):
            if netaddr.IPAddress(d_addr) not in netaddr.IPNetwork(f"{dst_m[0]}/{dst_m[1]}"):
                continue
        elif dst_m != d_addr:
            continue
        extra = {k: v for k, v in m.items() if k not in ("eth_type", "in_port", k_src, k_dst, "ct_state")}
        if all(want.get(k) == v for k, v in extra.items()):
            return True
    return False


@pytest.mark.parametrize("src,dst", [("internet-h1", "web-dvc-1"), ("internet-h1", "db-1"), ("web-dvc-1", "app-motcua-1"),
                                     ("web-dvc-1", "db-1"), ("app-motcua-1", "db-1"), ("jump-1", "db-1"),
                                     ("so-y-te-h1", "app-qlvb-1"), ("so-y-te-h1", "db-1"),
                                     ("h-cao-lanh-xa-01-h1", "h-cao-lanh-h1"), ("h-cao-lanh-xa-01-h1", "h-lap-vo-h1"),
                                     ("tp-sa-dec-xa-01-h1", "app-motcua-1"), ("lgsp-1", "ngsp-1"),
                                     ("db-1", "bk-db-1"), ("web-ttdt-1", "siem-1")])
def test_every_zone_pair_and_port_compiles_to_exactly_the_intent(dongthap, plan, programs, src, dst):
    """For each pair: every port the scenario knows, IPv4 and IPv6, allowed iff the policy allows."""
    from egovlab.sdn.compiler import attachments
    s, d = plan.hosts[plan.node(src)], plan.hosts[plan.node(dst)]
    edge, _ = attachments(plan)[s.name]
    rules = programs[plan.switches[edge].dpid].rules
    ports = sorted({p for svc in dongthap.spec.services.values() for p in svc.ports} | {"icmp", "tcp/22", "tcp/445"})
    checked = 0
    for version in (4, 6):
        if (s.ipv4 if version == 4 else s.ipv6) is None or (d.ipv4 if version == 4 else d.ipv6) is None:
            continue
        for port in ports:
            want = allowed(dongthap, endpoint_of(dongthap, src), endpoint_of(dongthap, dst), port, version)
            assert _opens(rules, s, d, port, version) == want, (src, dst, port, version, want)
            checked += 1
    assert checked > 0


def test_policy_is_stateful_and_default_deny(programs):
    for prog in programs.values():
        policy = [r for r in prog.rules if r.table == compiler.TABLE_POLICY]
        if not policy:
            continue
        unmetered = lambda r: tuple(a for a in r.actions if a[0] != "meter")  # noqa: E731
        established = [r for r in policy if dict(r.match).get("ct_state") == (0x22, 0x22)]
        assert established and all(unmetered(r) == (("goto", compiler.TABLE_FORWARD),) for r in established)
        new = [r for r in policy if dict(r.match).get("ct_state") == (0x21, 0x21)]
        assert new and all(unmetered(r)[0][:2] == ("ct_commit", compiler.CT_ZONE) for r in new)
        # nothing else passes: every rule without a conntrack state is the counted default deny
        stateless = [r for r in policy if "ct_state" not in dict(r.match)]
        assert stateless == [compiler.Rule(compiler.TABLE_POLICY, 0, (), (), compiler.DROP_COUNTER)]


def test_the_destination_edge_commits_what_the_fabric_brings_its_hosts_keeping_the_mark(plan, programs):
    """So that replies are established in that switch's own conntrack (one per Open vSwitch daemon
    when a lab is sharded), without relabelling a connection the source's edge marked."""
    by_name = {p.name: p for p in programs.values()}
    for host, (sw, port) in compiler.attachments(plan).items():
        commits = [r for r in by_name[sw].rules if r.table == compiler.TABLE_CLASSIFY
                   and dict(r.match).get("eth_dst") == plan.hosts[host].mac]
        assert {dict(r.match)["eth_type"] for r in commits} == {0x0800, 0x86DD}, host
        for r in commits:
            assert r.actions == (("ct_commit", compiler.CT_ZONE, None), ("goto", compiler.TABLE_FORWARD))
            # below the host port's own classification: from the host itself, policy comes first
            host_port = [x for x in by_name[sw].rules if x.table == compiler.TABLE_CLASSIFY
                         and dict(x.match).get("in_port") == port and dict(x.match).get("eth_type") == 0x0800]
            assert host_port and all(x.priority > r.priority for x in host_port)


def test_connections_are_marked_and_counted_by_their_zone_pair(dongthap, plan, programs):
    """The mark a new connection is committed with names its zone pair, and the edges of both
    ends count its established packets under that mark (the reply enters at the far edge)."""
    names = compiler.counter_names(dongthap, plan)
    zones = {h.name: compiler.zone_of(dongthap, endpoint_of(dongthap, h.label)) for h in plan.hosts.values()}
    edge_of = {h: sw for h, (sw, _) in compiler.attachments(plan).items()}
    by_ip = {str(a.ip): h.name for h in plan.hosts.values() for a in (h.ipv4, h.ipv6) if a is not None}
    counted = {p.name: {dict(r.match)["ct_mark"] for r in p.rules if "ct_mark" in dict(r.match)}
               for p in programs.values()}
    checked = 0
    for prog in programs.values():
        for r in prog.rules:
            m = dict(r.match)
            if m.get("ct_state") != (0x21, 0x21) or ("ipv4_dst" not in m and "ipv6_dst" not in m):
                continue
            dst = by_ip.get(m.get("ipv4_dst", m.get("ipv6_dst")))
            if dst is None:  # the host's own subnet
                continue
            src = by_ip[m.get("ipv4_src", m.get("ipv6_src"))]
            mark = next(a for a in r.actions if a[0] == "ct_commit")[2]
            assert names[mark] == (zones[src], zones[dst])
            assert mark in counted[edge_of[src]] and mark in counted[edge_of[dst]]
            checked += 1
    assert checked > 1000
    assert compiler.DROP_COUNTER not in names and len(set(names)) == len(names)
    assert compiler.counter_names(dongthap, plan) == names  # stable across compiles


def test_arp_and_nd_go_to_the_controller_and_nothing_floods(programs):
    for prog in programs.values():
        t0 = [r for r in prog.rules if r.table == 0]
        assert any(dict(r.match) == {"eth_type": 0x0806} and r.actions == (("controller",),) for r in t0)
        assert any(dict(r.match).get("icmpv6_type") == 135 and r.actions == (("controller",),) for r in t0)
        assert not any(a[0] == "output" and a[1] in (0xFFFFFFFB, 0xFFFFFFFC) for r in prog.rules for a in r.actions)


def test_every_host_is_reachable_from_every_switch_and_alternates_are_loop_free(plan, programs):
    """Every switch sends every host's addresses (both versions) towards its edge switch along the
    shortest path, through the failover group of the path; the edge delivers by MAC."""
    g = compiler.topology_graph(plan)
    hops = compiler.next_hops(plan, g)
    simple = compiler.simple_graph(g)
    dist = dict(nx.all_pairs_dijkstra_path_length(simple, weight="weight"))
    attached = compiler.attachments(plan)
    for prog in programs.values():
        sw = plan.switches[prog.name]
        if sw.role == "oob":  # the out-of-band network: the DC's servers' management interfaces only
            macs = {dict(r.match)["eth_dst"] for r in prog.rules if r.table == compiler.TABLE_FORWARD}
            assert macs == {h.mgmt_mac for h in plan.hosts.values() if h.zone and h.site == sw.site}
            continue
        for host, (edge, port) in attached.items():
            h = plan.hosts[host]
            for eth, field, addr in ((0x0800, "ipv4_dst", h.ipv4), (0x86DD, "ipv6_dst", h.ipv6)):
                if addr is None:
                    continue
                rule = lookup(prog, compiler.TABLE_FORWARD, {"eth_type": eth, field: str(addr.ip), "eth_dst": h.mac})
                if edge == sw.name:
                    assert rule.actions == (("output", port),), (prog.name, host)
                    continue
                primary, alt = hops[sw.name][edge]
                want = ("output", primary) if alt is None else ("group", primary << 16 | alt)
                assert rule.actions == (want,), (prog.name, host, field)
        for gid, group in prog.groups.items():
            if group.kind != "ff":
                continue
            (p1, _), (p2, _) = group.buckets
            assert p1 != p2  # the alternate leaves by another port
    for s, table in hops.items():
        for dst, (primary, alt) in table.items():
            if alt is None:
                continue
            n = next(n for n in simple[s] if simple[s][n]["ports"][s] == alt)
            assert dist[n][dst] < dist[n][s] + dist[s][dst]  # loop-free alternate condition


def test_forwarding_grows_with_sites_not_hosts(dongthap, plan, programs):
    """A commune's switch, with one way out: per IP version a default route, and its own subnet
    dropped (its hosts are delivered by MAC, so a stray packet for the segment never leaves it)."""
    for commune in ("h-lap-vo-xa-03", "tp-sa-dec-xa-01"):  # IPv4 only; IPv6 only
        lan = plan.switches[plan.site_switch[commune]]
        table = [r for r in programs[lan.dpid].rules if r.table == compiler.TABLE_FORWARD]
        routes = [r for r in table if "eth_dst" not in dict(r.match)]
        hosts = [h for h, (edge, _) in compiler.attachments(plan).items() if edge == lan.name]
        families = len({v for h in hosts for v, a in ((4, plan.hosts[h].ipv4), (6, plan.hosts[h].ipv6)) if a})
        defaults = [r for r in routes if dict(r.match).keys() == {"eth_type"}]
        assert len(defaults) == 2 and len({r.actions for r in defaults}) == 1 and defaults[0].actions != ()
        assert len(routes) == 2 + families and all(r.actions == () for r in routes if r not in defaults)
        assert len(table) == len(routes) + len(hosts)
    # the whole program: rules ~ switches x sites, where it was switches x hosts
    forwarding = sum(1 for p in programs.values() for r in p.rules if r.table == compiler.TABLE_FORWARD)
    assert forwarding < len(plan.switches) * len(dongthap.sites) / 10


def test_a_dual_homed_district_has_a_fast_failover_group_towards_the_dc(plan, programs):
    link = plan.links_of_scenario_link("h-cao-lanh--core-1")[0]
    agg = plan.switches[link.a]
    groups = programs[agg.dpid].groups
    assert any(g.buckets[0][0] == link.port(link.a) for g in groups.values())


def test_a_cut_link_moves_the_primary_path(dongthap, plan, programs):
    link = plan.links_of_scenario_link("h-cao-lanh--core-1")[0]
    cut = compiler.compile_network(dongthap, plan, down={link.intf(link.a), link.intf(link.b)})
    agg = plan.switches[link.a].dpid
    outputs_before = {a for r in programs[agg].rules if r.table == 2 for a in r.actions}
    outputs_after = {a for r in cut[agg].rules if r.table == 2 for a in r.actions}
    assert ("output", link.port(link.a)) not in outputs_after
    assert not any(a[0] == "group" and (a[1] >> 16) == link.port(link.a) for a in outputs_after)
    assert outputs_before != outputs_after


def test_neighbour_table_answers_for_every_planned_address(plan):
    table = compiler.neighbour_table(plan)
    for h in plan.hosts.values():
        for a in (h.ipv4, h.ipv6):
            if a is not None:
                assert table[str(a.ip)] == h.mac


def test_the_tap_copies_everything_entering_the_dc_core_to_the_soc_sensor(dongthap, plan, programs):
    sensor = compiler.tap_sensor(dongthap, plan)
    assert sensor.label == "ids-1"
    core = plan.switches[plan.node("provincial-dc/core")]
    tap = programs[core.dpid].groups[compiler.TAP_GROUP]
    soc = plan.zone_switch[("provincial-dc", "soc")]
    soc_port = next(l.port(core.name) for l in plan.links if {l.a, l.b} == {core.name, soc})
    assert tap.kind == "all" and tap.buckets == ((0, soc_port),) and tap.set_eth_dst == sensor.mac
    mirrored = {dict(r.match)["in_port"] for r in programs[core.dpid].rules if ("group", compiler.TAP_GROUP) in r.actions}
    ports = {l.port(core.name) for l in plan.links if core.name in (l.a, l.b)}
    assert mirrored == ports - {soc_port}  # Internet lines, uplinks, interconnect, every zone but the SOC
    internet = {l.port(core.name) for l in plan.links if core.name in (l.a, l.b) and l.kind == "internet"}
    assert len(internet) == 3 and internet <= mirrored
    assert not any(compiler.TAP_GROUP in p.groups for d, p in programs.items() if d != core.dpid)


def test_every_internet_source_is_metered(dongthap, plan, programs):
    citizens = [h for h in plan.hosts.values() if h.site == "internet"]
    edge = plan.switches[plan.site_switch["internet"]]
    prog = programs[edge.dpid]
    assert len(prog.meters) == len(citizens) and all(m.rate_kbps == compiler.DDOS_RATE_KBPS for m in prog.meters.values())
    for rule in prog.rules:
        if rule.table == compiler.TABLE_POLICY and "in_port" in dict(rule.match):
            assert rule.actions[0][0] == "meter"  # new and established traffic alike
    others = [p for d, p in programs.items() if d != edge.dpid]
    assert not any(p.meters for p in others)
