"""What the API shows of a scenario and a lab, as plain data (pure: no lab, no server needed).

- `topology`: the province's sites placed on rings around its root (a radial tree: the core,
  then districts and data centres, then communes around their district), its links, and per
  link whether the lab has it up; drawn by the web view.
- `heatmap`: a probe matrix (from `egovlab probe matrix`) folded to rows x columns with the
  fraction reached and whether any probe differs from the intended policy.
"""
from __future__ import annotations

import math

from egovlab.inventory.graph import site_tree
from egovlab.inventory.scenario import Scenario


def _leaves(children: dict, node: str | None) -> int:
    kids = children.get(node, [])
    return max(1, sum(_leaves(children, k) for k in kids))


def radial_layout(sc: Scenario) -> dict[str, tuple[float, float]]:
    """Site -> (x, y) in [-1, 1]: each subtree gets an arc proportional to its leaves."""
    children = site_tree(sc)
    depth_of: dict[str, int] = {}
    pos: dict[str, tuple[float, float]] = {}

    def place(node: str, depth: int, start: float, span: float) -> None:
        depth_of[node] = depth
        angle = start + span / 2
        pos[node] = (depth * math.cos(angle), depth * math.sin(angle))
        kids = children.get(node, [])
        total = sum(_leaves(children, k) for k in kids)
        for k in kids:
            share = span * _leaves(children, k) / total
            place(k, depth + 1, start, share)
            start += share

    roots = children.get(None, [])
    total = sum(_leaves(children, r) for r in roots)
    start = 0.0
    for r in roots:
        share = 2 * math.pi * _leaves(children, r) / total
        place(r, 0 if len(roots) == 1 else 1, start, share)
        start += share
    deepest = max(depth_of.values(), default=1) or 1
    return {n: (round(x / deepest, 4), round(y / deepest, 4)) for n, (x, y) in pos.items()}


def topology(sc: Scenario, down_links: set[str] | None = None, lab_up: bool = False) -> dict:
    """Sites and links of the scenario; a link's status is up/down from the lab, or unknown without one."""
    down_links = down_links or set()
    xy = radial_layout(sc)
    sites = [{"name": n, "kind": s.kind, "title": s.title, "x": xy[n][0], "y": xy[n][1],
              "zones": sorted(s.zones) if s.zones else []} for n, s in sc.sites.items()]
    links = [{"name": l.name, "a": l.a, "b": l.b, "kind": l.kind, "role": l.role,
              "status": ("down" if l.name in down_links else "up") if lab_up else "unknown"} for l in sc.links]
    dcs = [d for d in sc.data_centres()]
    return {"scenario": sc.name, "sites": sites, "links": links, "data_centres": dcs}


def heatmap(summary: dict) -> dict:
    """Rows (sources) x columns (targets): reached/probed and whether any probe differs from intent."""
    rows = list(dict.fromkeys(r["source"] for r in summary.get("results", [])))
    cols = list(dict.fromkeys(r["target"] for r in summary.get("results", [])))
    cells: dict[tuple[str, str], dict] = {}
    for r in summary.get("results", []):
        c = cells.setdefault((r["source"], r["target"]), {"probed": 0, "reached": 0, "intended": 0, "differ": 0})
        c["probed"] += 1
        c["reached"] += bool(r["reachable"])
        c["intended"] += bool(r["intended"])
        c["differ"] += bool(r["reachable"]) != bool(r["intended"])
    return {"rows": rows, "columns": cols,
            "cells": [{"source": s, "target": t, **c} for (s, t), c in cells.items()],
            "probes": summary.get("probes", 0), "differ": summary.get("differ", 0)}
