"""The built-in Đồng Tháp scenario holds the document's figures (DIGEST.md)."""
from __future__ import annotations

from collections import Counter

from egovlab.inventory import addressing, loader
from egovlab.inventory.graph import site_graph

from .conftest import DONGTHAP


def test_counts_follow_the_document(dongthap):
    kinds = Counter(s.kind for s in dongthap.sites.values())
    assert kinds["district"] == 12  # §VIII.2.a: 10 huyện/thị xã + 2 thành phố; Table 9 §II
    assert kinds["department"] == 22  # §VIII.2.a
    assert kinds["commune"] == 143  # assumption, marked as such
    assert kinds["public-service-centre"] == 1 and kinds["soc"] == 1
    assert kinds["provincial-dc"] == 1 and kinds["backup-dc"] == 1 and kinds["national"] == 1
    named = [n for n, s in dongthap.sites.items() if s.kind == "department" and not s.generated]
    assert len(named) == 20


def test_generated_sites_are_marked(dongthap):
    for name, site in dongthap.sites.items():
        if site.kind == "commune":
            assert site.generated and site.ref
    assert all(s.generated for n, s in dongthap.sites.items() if n.startswith("so-nganh-"))


def test_internet_lines_at_the_data_centre(dongthap):
    lines = sorted(l.bandwidth for l in dongthap.links if l.kind == "internet" and "provincial-dc" in (l.a, l.b))
    assert lines == [80_000_000, 100_000_000, 100_000_000]  # §VII.4.b


def test_provincial_dc_has_33_servers_in_six_zones(dongthap):
    servers = [r for r in dongthap.servers() if r.site == "provincial-dc"]
    assert len(servers) == 33  # §VII.4.b
    assert set(dongthap.sites["provincial-dc"].zones) == {"dmz", "internal", "db", "san", "mgmt", "soc"}
    assert all(r.server.physical for r in servers if r.zone == "db")  # §VIII.2.d: all DB servers physical


def test_video_conference_and_targets(dongthap):
    vc = dongthap.spec.workload.video_conference
    assert (vc.rooms.value, vc.endpoints.value, vc.meetings_per_month.value) == (5, 192, 20)
    assert vc.rooms.basis == "document"
    g = dongthap.spec.workload.growth
    assert g.online_dossiers["commune"][2025].value == 0.6 and g.online_dossiers["commune"][2025].basis == "document"
    assert g.online_dossiers["province"][2030].value == 1.0 and g.online_meetings[2025].value == 0.8


def test_every_district_is_dual_homed_and_every_site_reaches_both_dcs(dongthap):
    for d in dongthap.sites_of_kind("district"):
        roles = sorted(l.role for l in dongthap.links if l.a == d and l.kind == "tslcd-l2")
        assert roles == ["backup", "primary"]
    g = site_graph(dongthap)
    import networkx as nx
    assert nx.is_connected(nx.Graph(g))
    # cutting any single core-facing link of a district leaves it connected
    for d in dongthap.sites_of_kind("district"):
        for link in [l for l in dongthap.links if l.a == d]:
            h = nx.MultiGraph(g)
            h.remove_edge(link.a, link.b, key=link.name)
            assert nx.has_path(h, d, "provincial-dc")


def test_ipv6_stages_hold_in_the_plan(dongthap):
    plan = dongthap.plan
    assert dongthap.phase.name == "phase-2"
    stages = Counter(dongthap.stages.values())
    assert stages["v6-only"] == 1 and stages["v4-only"] == 142 and stages["dual-stack"] > 0
    for host in plan.hosts.values():
        stage = dongthap.stages[host.site]
        assert (host.ipv4 is not None) == (stage != "v6-only"), host
        assert (host.ipv6 is not None) == (stage != "v4-only"), host
    # documentation/benchmark prefixes only, so a leak is obvious
    for h in plan.hosts.values():
        if h.ipv4:
            assert h.ipv4 in __import__("netaddr").IPNetwork("198.18.0.0/15") or str(h.ipv4).startswith("203.0.113.")
        if h.ipv6:
            assert str(h.ipv6).startswith("2001:db8:")


def test_every_dc_server_has_an_out_of_band_management_address(dongthap):
    for ref in dongthap.servers():
        addr = dongthap.plan.hosts[ref.name]
        if ref.zone:
            assert addr.mgmt_ipv4 is not None and addr.mgmt_ipv6 is not None


def test_recorded_allocations_are_complete_and_in_use(dongthap):
    recorded = addressing.read_allocations(addressing.allocation_path(DONGTHAP))
    assert dongthap.plan.new == [] and dongthap.plan.renumbered == []
    assert recorded == dongthap.plan.allocations  # nothing stale, nothing missing


def test_builtin_name_loads_the_same_file():
    assert loader.resolve_path("dongthap").resolve() == DONGTHAP.resolve()
