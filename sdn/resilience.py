"""What each failure does to the intended flows, from the model alone (pure: no lab, no root).

A failure is a set of interfaces down, as the lab's own faults resolve it (`topology.faults`):
a scenario link, a switch, a site cut off (`isolate`), a data centre dark. Once the controller
has re-converged (`sdn.paths`: the graph its forwarding is compiled from, without what is
down), an intended flow between two hosts is

- **lost** when a host's access port is down or the two edge switches are no longer connected,
- **moved** when it still gets through but its primary path used what failed (the backup path
  or another route carries it),
- **untouched** otherwise.

The policy is enforced at the edges whatever the path, so connectivity decides. "Intended"
is `inventory.policy.Intent`, the one reading of the flows; `egovlab verify --fault X
--reconverged` proves the same outcome through the compiled tables for any one failure.
"""
from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

import networkx as nx

from egovlab.inventory.policy import Intent
from egovlab.inventory.scenario import Scenario
from egovlab.topology import faults
from egovlab.topology.model import EmulationPlan

from .paths import attachments, next_hops, topology_graph


FAULT_OF_KIND = {"link": "link-down", "switch": "switch-down", "site": "isolate", "dc": "dc-down"}


@dataclass(frozen=True)
class Failure:
    kind: str  # link | switch | site | dc | links (two links at once)
    target: str
    down: frozenset[str]  # the interfaces it takes down


def single(plan: EmulationPlan, kind: str, target: str) -> Failure:
    """The failure a lab fault of this kind makes (`egovlab fault ACTION TARGET`)."""
    return Failure(kind, target, frozenset(faults.resolve(plan, FAULT_OF_KIND[kind], target)))


@dataclass
class Effect:
    failure: Failure
    lost: list[tuple[str, str]] = field(default_factory=list)  # (source host, destination host), intended
    moved: list[tuple[str, str]] = field(default_factory=list)
    untouched: int = 0
    sites_cut_off: list[str] = field(default_factory=list)  # sites whose hosts lose an intended flow

    def summary(self, sc: Scenario) -> dict:
        return {"kind": self.failure.kind, "target": self.failure.target, "lost": len(self.lost),
                "moved": len(self.moved), "untouched": self.untouched, "sites_cut_off": self.sites_cut_off,
                "lan_users_cut_off": sum(sc.lan_size(s) for s in self.sites_cut_off)}


class Model:
    """The intended flows of a scenario's emulation plan and their primary paths, computed once;
    `effect(down)` is then cheap enough to try every failure, and every pair of link failures."""

    def __init__(self, sc: Scenario, plan: EmulationPlan, intent: Intent | None = None):
        self.sc, self.plan = sc, plan
        intent = intent or Intent(sc)
        self.attach = attachments(plan)
        self.access = {h: next(l.intf(sw) for l in plan.links if l.kind == "access" and {l.a, l.b} == {h, sw})
                       for h, (sw, _) in self.attach.items()}
        # flows by the scenario's host names (what users read); the plan's nodes behind them
        self.node = {plan.hosts[n].label: n for n in self.attach}
        hosts = sorted(self.node)
        self.flows = [(s, d) for s in hosts for d in hosts if s != d and intent.ports(s, d)]
        self.by_switches: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        self.pairs_of: dict[str, set[tuple[str, str]]] = defaultdict(set)  # switch -> pairs it ends
        self.flows_of: dict[str, list[tuple[str, str]]] = defaultdict(list)  # host -> its flows
        for s, d in self.flows:
            pair = (self.edge(s), self.edge(d))
            self.by_switches[pair].append((s, d))
            self.pairs_of[pair[0]].add(pair)
            self.pairs_of[pair[1]].add(pair)
            self.flows_of[s].append((s, d))
            self.flows_of[d].append((s, d))
        self.link_of_interface = {l.intf(n): i for i, l in enumerate(plan.links) for n in (l.a, l.b)}
        # each switch pair's primary path, as the links (plan indexes) it crosses: the path the
        # compiled forwarding takes, hop by hop (`paths.next_hops`, ties to the first neighbour by
        # name). A shortest path of the model's own broke ties otherwise: for 100 of the
        # province's 902 pairs it named another path than the switches', and a flow crossing the
        # DC interconnect was called untouched by its cut (the soak found it losing datagrams).
        hops = next_hops(plan, topology_graph(plan))
        link_at = {(n, l.port(n)): (i, l.b if n == l.a else l.a) for i, l in enumerate(plan.links)
                   for n in (l.a, l.b) if n in plan.switches}
        self.uses: dict[int, set[tuple[str, str]]] = defaultdict(set)  # link index -> switch pairs over it
        for a, b in self.by_switches:
            here = a
            while here != b and b in hops.get(here, {}):
                i, here = link_at[(here, hops[here][b][0])]
                self.uses[i].add((a, b))

    def edge(self, host: str) -> str:
        """The edge switch of a host (by its scenario name)."""
        return self.attach[self.node[host]][0]

    def effect(self, failure: Failure) -> Effect:
        down = faults.with_peers(self.plan, failure.down)
        g = topology_graph(self.plan, set(down))
        component = {n: i for i, comp in enumerate(nx.connected_components(g)) for n in comp}
        main = _main(component)
        dead_hosts = {self.plan.hosts[n].label for n, intf in self.access.items() if intf in down}
        # only pairs with an end outside the main component can be cut apart, and only the
        # flows of a host whose own port is down die with it: look at those, not at every pair
        candidates = {pair for n, c in component.items() if c != main for pair in self.pairs_of.get(n, ())}
        touched_pairs = {pair for pair in candidates if component[pair[0]] != component[pair[1]]}
        lost = [f for pair in touched_pairs for f in self.by_switches[pair]]
        lost += [f for h in dead_hosts for f in self.flows_of.get(h, ()) if (self.edge(f[0]), self.edge(f[1]))
                 not in touched_pairs]
        lost = list(dict.fromkeys(lost))
        lost_set = set(lost)
        via_down = {pair for intf in down if (i := self.link_of_interface.get(intf)) is not None
                    for pair in self.uses.get(i, ())}
        moved = [f for pair in via_down if pair not in touched_pairs for f in self.by_switches[pair]
                 if f not in lost_set]
        sites = sorted({self.plan.hosts[self.node[h]].site for f in lost for h in f
                        if h in dead_hosts or component[self.edge(h)] != main})
        return Effect(failure, sorted(lost), sorted(moved), len(self.flows) - len(lost) - len(moved), sites)


def _main(component: dict[str, int]) -> int:
    """The component of the most switches: whoever is not in it is what got cut off."""
    sizes: dict[int, int] = defaultdict(int)
    for c in component.values():
        sizes[c] += 1
    return max(sizes, key=lambda c: (sizes[c], -c))


def single_failures(sc: Scenario, plan: EmulationPlan) -> list[Failure]:
    """Every scenario link, every switch, every site cut off from the rest, every data centre."""
    out = [single(plan, "link", l.name) for l in sc.links if plan.links_of_scenario_link(l.name)]
    out += [single(plan, "switch", s.label) for s in plan.switches.values()]
    out += [single(plan, "site", site) for site in sorted({s.site for s in plan.switches.values()})]
    out += [single(plan, "dc", dc) for dc in sc.data_centres()]
    return out


def link_pairs(singles: list[Failure]) -> list[Failure]:
    links = [f for f in singles if f.kind == "link"]
    return [Failure("links", f"{a.target} + {b.target}", a.down | b.down) for a, b in itertools.combinations(links, 2)]


def analyze(sc: Scenario, plan: EmulationPlan, depth: int = 1) -> dict:
    """The report of `egovlab analyze resilience`: every failure's effect, and the single points
    of failure (a single failure that loses intended flows) ranked by what they cut off."""
    model = Model(sc, plan)
    singles = single_failures(sc, plan)
    effects = [model.effect(f) for f in singles]
    report = {"scenario": sc.name, "depth": depth, "hosts": len(model.attach), "intended_flows": len(model.flows),
              "failures": [e.summary(sc) for e in effects]}
    spof = [e for e in effects if e.lost and e.failure.kind in ("link", "switch")]
    spof.sort(key=lambda e: (-len(e.sites_cut_off), -sum(sc.lan_size(s) for s in e.sites_cut_off), -len(e.lost),
                             e.failure.target))
    report["single_points_of_failure"] = [e.summary(sc) for e in spof]
    if depth >= 2:
        pairs = [model.effect(f) for f in link_pairs(singles)]
        # a pair matters when it loses flows that neither of its links loses alone
        alone = {e.failure.target: set(e.lost) for e in effects if e.failure.kind == "link"}
        worse = []
        for e in pairs:
            a, b = e.failure.target.split(" + ")
            extra = set(e.lost) - alone[a] - alone[b]
            if extra:
                worse.append({**e.summary(sc), "lost_only_together": len(extra)})
        worse.sort(key=lambda r: (-len(r["sites_cut_off"]), -r["lost_only_together"], r["target"]))
        report["link_pairs"] = {"pairs": len(pairs), "losing_more_together": len(worse), "worst": worse}
    return report
