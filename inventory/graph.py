"""The province as a graph (networkx): sites are nodes, links are edges keyed by link name."""
from __future__ import annotations

import networkx as nx

from .scenario import Scenario


def site_graph(sc: Scenario) -> nx.MultiGraph:
    g = nx.MultiGraph(name=sc.name)
    for name, site in sc.sites.items():
        g.add_node(name, kind=site.kind, title=site.title, stage=sc.stages[name], generated=site.generated)
    for link in sc.links:
        g.add_edge(link.a, link.b, key=link.name, kind=link.kind, bandwidth=link.bandwidth,
                   delay_ms=link.delay_ms, loss_pct=link.loss_pct, role=link.role)
    return g


def primary_parent(sc: Scenario, site: str) -> str | None:
    """Where a site hangs in the province's tree: its parent, else its first primary uplink."""
    s = sc.sites[site]
    if s.parent:
        return s.parent
    for up in s.uplinks:
        if up.role == "primary":
            return up.to
    return None


def site_tree(sc: Scenario) -> dict[str | None, list[str]]:
    """children[parent] -> sites, in declaration order; children[None] are the roots."""
    children: dict[str | None, list[str]] = {}
    for name in sc.sites:
        children.setdefault(primary_parent(sc, name), []).append(name)
    return children


def redundant_links(sc: Scenario) -> list[str]:
    """Links whose two sites stay connected without them: a cut of one must cost no intended flow."""
    g, out = site_graph(sc), []
    for link in sc.links:
        g.remove_edge(link.a, link.b, key=link.name)
        if nx.has_path(g, link.a, link.b):
            out.append(link.name)
        g.add_edge(link.a, link.b, key=link.name)
    return out
