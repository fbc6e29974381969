"""The fewest longest-prefix-match routes for a set of disjoint destination prefixes (pure).

ORTC, the Optimal Routing Table Constructor (Draves, King, Venkatachary, Zill; INFOCOM 1999), on
a path-compressed binary trie, with the address space no prefix names left as "don't care": a
packet can only be addressed there if the policy at its source's edge let it through, and that
matches planned addresses only (the compiler makes a switch's own subnets explicit so that a
host's own segment is never a don't-care). Pass 2 gives each trie node the set of actions that
would serve its whole subtree in one route (the intersection of its children's sets, or their
union when that is empty); pass 3 walks down and writes a route only where the action inherited
from above is not in the node's set. A switch whose every remote subnet leaves by one uplink
gets a single default route, whatever the number of sites.
"""
from __future__ import annotations

import collections
from typing import Hashable, Sequence

import netaddr

WIDTH = {4: 32, 6: 128}


class PrefixTrie:
    """The path-compressed binary trie of disjoint prefixes of one IP version, built once and
    asked for the routes of every switch (only the actions differ from switch to switch)."""

    def __init__(self, prefixes: Sequence[netaddr.IPNetwork], version: int):
        self.version, width = version, WIDTH[version]
        self.prefixes = sorted(prefixes, key=lambda n: int(n.network))
        starts = [int(n.network) for n in self.prefixes]
        for a, b, net in zip(starts, starts[1:], self.prefixes):
            if b < a + net.size:
                raise ValueError(f"overlapping prefixes: {net} and {netaddr.IPAddress(b, version)}")
        # nodes in pre-order: (network, length, left child, right child); a leaf's children are
        # (-1, its index in `prefixes`); each node's parent, each leaf's node
        self.nodes: list[tuple[int, int, int, int]] = []
        self.parent: list[int] = []
        self.leaf_node = [0] * len(self.prefixes)

        def build(lo: int, hi: int, parent: int) -> int:
            at = len(self.nodes)
            self.parent.append(parent)
            if hi - lo == 1:
                self.nodes.append((starts[lo], self.prefixes[lo].prefixlen, -1, lo))
                self.leaf_node[lo] = at
                return at
            length = width - (starts[lo] ^ starts[hi - 1]).bit_length()  # where the first and last part
            bit = 1 << (width - length - 1)
            mid = next(i for i in range(lo, hi) if starts[i] & bit)
            self.nodes.append((0, 0, 0, 0))
            left, right = build(lo, mid, at), build(mid, hi, at)
            self.nodes[at] = (starts[lo] & ~((1 << (width - length)) - 1), length, left, right)
            return at

        if self.prefixes:
            build(0, len(self.prefixes), -1)

    def routes(self, actions: Sequence[Hashable]) -> list[tuple[netaddr.IPNetwork, Hashable]]:
        """LPM routes (prefix -> action, shortest prefix first, the first one the default route)
        that send every address of `prefixes[i]` by `actions[i]`; nothing else is promised.
        Actions must be sortable: ties go to the smallest, for a stable program."""
        if not self.nodes:
            return []
        names = sorted(set(actions))
        bit_of = {a: 1 << i for i, a in enumerate(names)}
        # Most leaves of most switches share one action (the way up): a subtree of those alone has
        # just that action, so only the paths to the other leaves are worked out.
        common = bit_of[max(names, key=collections.Counter(actions).__getitem__)]
        dirty: set[int] = set()
        for i, action in enumerate(actions):
            at = self.leaf_node[i] if bit_of[action] != common else -1
            while at >= 0 and at not in dirty:
                dirty.add(at)
                at = self.parent[at]
        sets: dict[int, int] = {}  # pass 2, as bit sets of `names`; a node not in it: {common}
        for at in sorted(dirty, reverse=True):  # children follow their parent in pre-order
            _, _, left, right = self.nodes[at]
            if left < 0:
                sets[at] = bit_of[actions[right]]
            else:
                a, b = sets.get(left, common), sets.get(right, common)
                sets[at] = a & b or a | b
        out: list[tuple[int, int, Hashable]] = []
        stack = [(0, 0)]  # pass 3: (node, the action bit inherited from above; 0 at the root)
        while stack:
            at, inherited = stack.pop()
            net, length, left, right = self.nodes[at]
            here = sets.get(at, common)
            if not here & inherited:
                inherited = here & -here  # the smallest action that serves the whole subtree
                # the root's route is the default route: what lies outside every prefix is don't-care
                net, length = (net, length) if at else (0, 0)
                out.append((net, length, names[inherited.bit_length() - 1]))
            if left >= 0 and at in dirty:
                stack += [(right, inherited), (left, inherited)]
        return [(netaddr.IPNetwork((net, length), version=self.version), action)
                for net, length, action in sorted(out, key=lambda r: (r[1], r[0]))]
