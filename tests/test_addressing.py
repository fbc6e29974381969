"""The address planner: the buddy allocator, and properties over random valid provinces."""
from __future__ import annotations

import itertools

import netaddr
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egovlab.inventory import addressing, loader
from egovlab.inventory.addressing import PrefixPool, ipv4_prefix_for


def net(text: str) -> netaddr.IPNetwork:
    return netaddr.IPNetwork(text)


def test_pool_allocates_lowest_block_of_best_size():
    pool = PrefixPool([net("198.18.0.0/24")])
    assert pool.allocate(26) == net("198.18.0.0/26")
    assert pool.allocate(25) == net("198.18.0.128/25")
    assert pool.allocate(26) == net("198.18.0.64/26")
    assert pool.allocate(26) is None


def test_pool_reserve_carves_exact_block_and_refuses_taken_space():
    pool = PrefixPool([net("198.18.0.0/24")])
    assert pool.reserve(net("198.18.0.64/26"))
    assert not pool.reserve(net("198.18.0.64/27"))  # inside what was reserved
    assert not pool.reserve(net("198.19.0.0/26"))  # outside the pool
    got = sorted(str(pool.allocate(26)) for _ in range(3))
    assert got == ["198.18.0.0/26", "198.18.0.128/26", "198.18.0.192/26"]


def test_pool_over_several_networks_and_ipv6():
    pool = PrefixPool([net("2001:db8::/63")])
    assert [str(pool.allocate(64)) for _ in range(2)] == ["2001:db8::/64", "2001:db8:0:1::/64"]
    assert pool.allocate(64) is None
    multi = PrefixPool([net("198.18.0.0/30"), net("198.18.1.0/30")])
    assert [str(multi.allocate(31)) for _ in range(4)] == \
        ["198.18.0.0/31", "198.18.0.2/31", "198.18.1.0/31", "198.18.1.2/31"]


def test_ipv4_prefix_sizing_keeps_gateway_reserved_and_broadcast():
    assert ipv4_prefix_for(0) == 28  # .1 gateway, .2-.9 reserved, broadcast
    assert ipv4_prefix_for(5) == 28
    assert ipv4_prefix_for(6) == 27
    assert ipv4_prefix_for(100) == 25


# -- random valid provinces ------------------------------------------------------------------

@st.composite
def provinces(draw) -> dict:
    stages = st.sampled_from(["v4-only", "dual-stack", "v6-only"])
    n_districts = draw(st.integers(1, 5))
    sites: dict = {
        "core": {"kind": "core"},
        "dc": {"kind": "provincial-dc", "uplinks": [{"to": "core", "bandwidth": "1Gbps"}],
               "zones": {"dmz": {"servers": {f"web-{i}": {"role": "web"} for i in range(draw(st.integers(1, 4)))}},
                         "db": {"servers": {"db-1": {"role": "db"}}}}},
    }
    for d in range(n_districts):
        sites[f"d{d}"] = {"kind": "district", "parent": "core", "lan_size": draw(st.integers(0, 300)),
                          "ipv6": draw(stages),
                          "communes": {"count": draw(st.integers(0, 6)), "basis": "assumption", "ref": "t",
                                       "lan_size": draw(st.integers(0, 60)), "ipv6": draw(stages)}}
        if draw(st.booleans()):
            sites[f"d{d}"]["uplinks"] = [{"to": "core"}, {"to": "dc", "role": "backup"}]
    for i in range(draw(st.integers(0, 4))):
        sites[f"dept{i}"] = {"kind": "department", "parent": "core", "lan_size": draw(st.integers(3, 200)),
                             "hosts": draw(st.integers(0, 3)), "ipv6": draw(stages)}
    return {
        "scenario": "random",
        "addressing": {"ipv4_pools": ["198.18.0.0/16", "198.51.100.0/24"], "ipv4_link_pool": "198.19.0.0/22",
                       "ipv6_prefix": "2001:db8:100::/44",
                       "lan_headroom": draw(st.sampled_from([0, 0.25, 1.0]))},
        "sites": sites,
    }


def load(spec: dict, allocations=None):
    return loader.load_text(yaml.safe_dump(spec), "random.yml", allocations)


def assert_disjoint(networks: list[netaddr.IPNetwork]) -> None:
    ordered = sorted(networks, key=lambda n: (n.version, n.first))
    for a, b in itertools.pairwise(ordered):
        assert a.version != b.version or a.last < b.first, f"{a} overlaps {b}"


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(provinces())
def test_plan_has_no_overlaps_and_every_block_is_inside_its_pool(spec):
    sc = load(spec)
    blocks = {k: netaddr.IPNetwork(v) for k, v in sc.plan.allocations.items()}
    assert_disjoint(list(blocks.values()))
    a = sc.spec.addressing
    for key, block in blocks.items():
        if key.startswith("v4:link:"):
            assert block in a.ipv4_link_pool
        elif key.startswith("v4:"):
            assert any(block in p for p in a.ipv4_pools)
        else:
            assert block in a.ipv6_prefix


@PROPERTY
@given(provinces())
def test_every_host_address_is_unique_inside_its_subnet_and_follows_its_stage(spec):
    sc = load(spec)
    seen: set = set()
    for host in sc.plan.hosts.values():
        subnet = sc.plan.subnets[host.subnet]
        stage = sc.stages[host.site]
        assert (host.ipv4 is None) == (stage == "v6-only")
        assert (host.ipv6 is None) == (stage == "v4-only")
        for addr, block in ((host.ipv4, subnet.ipv4), (host.ipv6, subnet.ipv6)):
            if addr is not None:
                assert addr in block and addr not in (block.network, block.broadcast, block[1])
                assert addr not in seen
                seen.add(addr)
    for link in sc.plan.links.values():
        assert link.ipv4.prefixlen == 31 and link.ipv6.prefixlen == 127


@PROPERTY
@given(provinces(), st.integers(1, 150), st.integers(0, 5))
def test_adding_a_site_leaves_every_existing_allocation_unchanged(spec, lan, communes):
    before = load(spec).plan.allocations
    spec["sites"]["zz-new"] = {"kind": "district", "parent": "core", "lan_size": lan,
                               "communes": {"count": communes, "basis": "assumption", "ref": "t"}}
    spec["sites"]["aa-new"] = {"kind": "department", "parent": "core", "lan_size": lan}
    after = load(spec, before).plan
    assert {k: after.allocations[k] for k in before} == before
    assert after.renumbered == []
    assert len(after.new) > 0


@PROPERTY
@given(provinces())
def test_plan_is_deterministic(spec):
    assert load(spec).plan.allocations == load(spec).plan.allocations


def test_an_outgrown_lan_is_renumbered_alone(mini_text):
    first = loader.load_text(mini_text, "mini.yml").plan.allocations
    grown = mini_text.replace("    parent: core\n", "    parent: core\n    lan_size: 400\n", 1)
    after = loader.load_text(grown, "mini.yml", first).plan
    assert after.renumbered == ["v4:lan:town"]
    changed = {k for k in first if after.allocations[k] != first[k]}
    assert changed == {"v4:lan:town"}
    assert netaddr.IPNetwork(after.allocations["v4:lan:town"]).size >= 512


def test_allocation_file_round_trip(tmp_path, mini_text):
    sc = loader.load_text(mini_text, "mini.yml")
    path = tmp_path / "mini.allocations.yml"
    addressing.write_allocations(path, sc.plan.allocations)
    assert addressing.read_allocations(path) == sc.plan.allocations
    again = loader.load_text(mini_text, "mini.yml", addressing.read_allocations(path)).plan
    assert again.new == [] and again.allocations == sc.plan.allocations
