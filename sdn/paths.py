"""Forwarding paths of the compiled program (pure): the switch graph, each host's attachment,
shortest-path next hops with a loop-free alternate for the fast-failover groups."""
from __future__ import annotations

import networkx as nx

from egovlab.topology.model import EmulationPlan

BACKUP_COST = 10  # links with role 'backup' carry traffic only when the primary path is gone


def topology_graph(plan: EmulationPlan, down: set[str] = frozenset()) -> nx.MultiGraph:
    """Switch-to-switch graph with costs; `down` names links (a-b intf names) to leave out."""
    g = nx.MultiGraph()
    g.add_nodes_from(plan.switches)
    for i, link in enumerate(plan.links):
        if link.a in plan.switches and link.b in plan.switches and link.intf(link.a) not in down:
            g.add_edge(link.a, link.b, key=i, weight=BACKUP_COST if link.role == "backup" else 1,
                       ports={link.a: link.port(link.a), link.b: link.port(link.b)})
    return g


def simple_graph(g: nx.MultiGraph) -> nx.Graph:
    """Cheapest parallel edge between each pair (several Internet lines join the same pair)."""
    h = nx.Graph()
    h.add_nodes_from(g)
    for a, b, data in g.edges(data=True):
        if not h.has_edge(a, b) or data["weight"] < h[a][b]["weight"]:
            h.add_edge(a, b, **data)
    return h


def attachments(plan: EmulationPlan) -> dict[str, tuple[str, int]]:
    """host node -> (edge switch, port) of its data interface."""
    out = {}
    for link in plan.links:
        if link.kind == "access":
            host, sw = (link.a, link.b) if link.a in plan.hosts else (link.b, link.a)
            out[host] = (sw, link.port(sw))
    return out


def next_hops(plan: EmulationPlan, g: nx.MultiGraph) -> dict[str, dict[str, tuple[int, int | None]]]:
    """switch -> destination switch -> (primary port, loop-free alternate port or None)."""
    simple = simple_graph(g)
    dist = dict(nx.all_pairs_dijkstra_path_length(simple, weight="weight"))
    hops: dict[str, dict[str, tuple[int, int | None]]] = {s: {} for s in simple}
    for dst in simple:
        if dst not in dist:
            continue
        # Shortest-path tree towards dst: each switch's next hop is a neighbour on a cheapest path.
        for s in simple:
            if s == dst or dst not in dist[s]:
                continue
            best, alt = None, None
            for n in sorted(simple[s], key=lambda n: (simple[s][n]["weight"] + dist[n].get(dst, 1e9), n)):
                cost = simple[s][n]["weight"] + dist[n].get(dst, float("inf"))
                if best is None:
                    best = (n, cost)
                elif alt is None and dist[n].get(dst, float("inf")) < dist[n].get(s, float("inf")) + dist[s][dst]:
                    alt = n  # loop-free alternate: n's own path to dst does not come back through s
            if best is None or best[1] == float("inf"):
                continue
            primary = simple[s][best[0]]["ports"][s]
            hops[s][dst] = (primary, simple[s][alt]["ports"][s] if alt is not None else None)
    return hops
