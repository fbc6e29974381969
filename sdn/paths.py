"""Forwarding paths of the compiled program (pure): the switch graph, each host's attachment,
shortest-path next hops with a loop-free alternate for the fast-failover groups."""
from __future__ import annotations

import networkx as nx
import numpy as np
from scipy.sparse.csgraph import dijkstra

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
    """switch -> destination switch -> (primary port, loop-free alternate port or None).

    The primary is the neighbour on a cheapest path to the destination (ties to the first by
    name); the alternate, the next-cheapest neighbour whose own path to the destination does not
    come back through this switch (the loop-free alternate condition, RFC 5286). Distances for
    all pairs at once (scipy's Dijkstra), each switch's neighbours against every destination as
    one array operation."""
    simple = simple_graph(g)
    names = sorted(simple)
    index = {n: i for i, n in enumerate(names)}
    weights = nx.to_scipy_sparse_array(simple, nodelist=names, weight="weight", format="csr")
    dist = dijkstra(weights, directed=False)
    hops: dict[str, dict[str, tuple[int, int | None]]] = {s: {} for s in names}
    columns = np.arange(len(names))
    for s in names:
        i = index[s]
        neighbours = sorted(simple[s])
        if not neighbours:
            continue
        rows = np.array([index[n] for n in neighbours])
        w = np.array([simple[s][n]["weight"] for n in neighbours], dtype=float)
        ports = [simple[s][n]["ports"][s] for n in neighbours]
        cost = w[:, None] + dist[rows, :]  # neighbour x destination: the cost through that neighbour
        primary = cost.argmin(axis=0)  # the first minimum: ties go to the first neighbour by name
        loop_free = dist[rows, :] < dist[rows, i][:, None] + dist[i, :][None, :]
        cost_alt = np.where(loop_free, cost, np.inf)
        cost_alt[primary, columns] = np.inf  # the alternate is another neighbour than the primary
        alt = cost_alt.argmin(axis=0)
        reachable = np.isfinite(cost[primary, columns]).tolist()
        has_alt = np.isfinite(cost_alt[alt, columns]).tolist()
        mine = hops[s]
        for j, (dst, p, a) in enumerate(zip(names, primary.tolist(), alt.tolist())):
            if j != i and reachable[j]:
                mine[dst] = (ports[p], ports[a] if has_alt[j] else None)
    return hops
