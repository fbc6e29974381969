"""The route aggregation (ORTC) the forwarding table is built from, as a property: for any set of
disjoint prefixes and actions, longest-prefix match over the routes sends every address of every
prefix by that prefix's action, with never more routes than prefixes."""
from __future__ import annotations

import netaddr
import pytest
from hypothesis import given, settings, strategies as st

from egovlab.sdn.aggregate import WIDTH, PrefixTrie


def lpm(routes, addr: int):
    best = max((net for net, _ in routes if addr in net), key=lambda n: n.prefixlen, default=None)
    return None if best is None else dict(routes)[best]


@st.composite
def disjoint_prefixes(draw):
    version = draw(st.sampled_from([4, 6]))
    width = WIDTH[version]
    nets = []
    for _ in range(draw(st.integers(1, 40))):
        length = draw(st.integers(8 if version == 4 else 32, width))
        net = netaddr.IPNetwork((draw(st.integers(0, (1 << width) - 1)) >> (width - length) << (width - length), length),
                                version=version)
        if not any(net in n or n in net for n in nets):
            nets.append(net)
    actions = draw(st.lists(st.sampled_from(["a", "b", "c", "drop"]), min_size=len(nets), max_size=len(nets)))
    return version, nets, actions


@settings(max_examples=300, deadline=None)
@given(disjoint_prefixes())
def test_every_address_of_every_prefix_leaves_by_its_action(case):
    version, nets, actions = case
    trie = PrefixTrie(nets, version)
    want = dict(zip(nets, actions))
    routes = trie.routes([want[n] for n in trie.prefixes])
    assert len(routes) <= len(nets)
    assert routes[0][0].prefixlen == 0  # a default route: what no prefix names is anyone's
    for net in nets:
        for addr in (net.first, net.last, (net.first + net.last) // 2):
            assert lpm(routes, netaddr.IPAddress(addr, version)) == want[net], (net, routes)
    if len(set(actions)) == 1:
        assert len(routes) == 1


def test_overlapping_prefixes_are_refused():
    with pytest.raises(ValueError, match="overlapping"):
        PrefixTrie([netaddr.IPNetwork("10.0.0.0/16"), netaddr.IPNetwork("10.0.1.0/24")], 4)
