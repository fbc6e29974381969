"""Cross-reference checks over a resolved scenario: every problem, each with its field path."""
from __future__ import annotations

import itertools

import networkx as nx

from .errors import Problem
from .scenario import Scenario
from .schema import DC_KINDS, SITE_KINDS, SelectorSpec


def check(sc: Scenario) -> list[Problem]:
    problems: list[Problem] = []
    for checker in (_sites, _links, _servers, _services, _policy, _pools, _ipv6, _workload):
        problems.extend(checker(sc))
    # Connectivity is only meaningful once every link is sound; otherwise it repeats their problems.
    if not any(p.path.startswith(("sites.", "links")) for p in problems):
        problems.extend(_connected(sc))
    return problems


def _unknown_site(sc: Scenario, name: str) -> str | None:
    return None if name in sc.sites else f"unknown site '{name}'"


def _sites(sc: Scenario) -> list[Problem]:
    out: list[Problem] = []
    spec_sites = sc.spec.sites
    for name, site in spec_sites.items():
        path = f"sites.{name}"
        if site.parent is not None and (msg := _unknown_site(sc, site.parent)):
            out.append(Problem(f"{path}.parent", msg))
        if site.zones and site.kind not in DC_KINDS:
            out.append(Problem(f"{path}.zones", f"a '{site.kind}' site has no data-centre zones "
                                                f"(only {' and '.join(DC_KINDS)} sites do)"))
        if site.communes is not None:
            if site.kind != "district":
                out.append(Problem(f"{path}.communes", f"only district sites have communes, this one is '{site.kind}'"))
            else:
                from .scenario import commune_names
                for cname in commune_names(name, site.communes.count):
                    if cname in spec_sites:
                        out.append(Problem(f"{path}.communes", f"generated commune '{cname}' clashes with site "
                                                               f"'sites.{cname}'"))
        if site.hosts is not None and site.lan_size is not None and site.hosts > site.lan_size:
            out.append(Problem(f"{path}.hosts", f"{site.hosts} hosts do not fit a LAN of {site.lan_size} "
                                                f"devices (lan_size)"))
    # A parent chain that loops makes "the district of a commune" meaningless.
    g = nx.DiGraph((n, s.parent) for n, s in sc.sites.items() if s.parent in sc.sites)
    for cycle in nx.simple_cycles(g):
        first = min(cycle)
        chain = cycle[cycle.index(first):] + cycle[:cycle.index(first)] + [first]
        out.append(Problem(f"{sc.site_paths[first]}.parent", f"parent cycle: {' -> '.join(chain)}"))
    return out


def _links(sc: Scenario) -> list[Problem]:
    out: list[Problem] = []
    seen: dict[str, str] = {}
    for link in sc.links:
        base = link.path
        is_uplink = ".uplinks[" in base or base.endswith(".parent")
        for i, end in enumerate((link.a, link.b)):
            if is_uplink and i == 0:
                continue
            if msg := _unknown_site(sc, end):
                out.append(Problem(base if is_uplink else f"{base}.endpoints[{i}]", msg))
        if link.a == link.b:
            out.append(Problem(base, f"link from '{link.a}' to itself"))
        if link.name in seen:
            out.append(Problem(base, f"duplicate link name '{link.name}' (also {seen[link.name]})"))
        seen.setdefault(link.name, base)
    return out


def _servers(sc: Scenario) -> list[Problem]:
    out: list[Problem] = []
    first: dict[str, str] = {}
    for ref in sc.servers():
        if ref.name in first:
            out.append(Problem(ref.path, f"duplicate server name '{ref.name}' (also {first[ref.name]})"))
        elif ref.name in sc.sites:
            out.append(Problem(ref.path, f"server name '{ref.name}' is also a site name"))
        first.setdefault(ref.name, ref.path)
        for i, svc in enumerate(ref.server.runs):
            if svc not in sc.spec.services:
                out.append(Problem(f"{ref.path}.runs[{i}]", f"unknown service '{svc}'"))
    host_names = {h for s in sc.sites for h in sc.host_names(s)}
    for name in sorted(host_names & set(first)):
        out.append(Problem(first[name], f"server name '{name}' clashes with a generated host name"))
    return out


def _services(sc: Scenario) -> list[Problem]:
    out: list[Problem] = []
    services = sc.spec.services
    runners: dict[tuple[str, str], int] = {}
    for ref in sc.servers():
        for svc in ref.server.runs:
            runners[(svc, ref.site)] = runners.get((svc, ref.site), 0) + 1
    for name, svc in services.items():
        path = f"services.{name}"
        for role, site_name, replicas in (("primary", svc.placement.primary, svc.replicas),
                                          ("backup", svc.placement.backup, svc.backup_replicas)):
            if site_name is None:
                continue
            where = f"{path}.placement.{role}"
            site = sc.sites.get(site_name)
            if site is None:
                out.append(Problem(where, f"unknown site '{site_name}'"))
                continue
            if role == "backup" and site.kind != "backup-dc":
                out.append(Problem(where, f"backup placement must be a backup-dc site, '{site_name}' is '{site.kind}'"))
                continue
            if site.kind in DC_KINDS:
                if svc.zone is None:
                    out.append(Problem(f"{path}.zone", f"a service placed in data centre '{site_name}' needs a zone"))
                elif svc.zone not in site.zones:
                    out.append(Problem(f"{path}.zone", f"zone '{svc.zone}' is not defined in site '{site_name}'"))
            have = runners.get((name, site_name), 0)
            if have < replicas:
                out.append(Problem(where, f"{replicas} replica(s) wanted in '{site_name}' but {have} server(s) "
                                          f"there run '{name}'"))
            if not sc.ipv4_enabled(site_name) and 6 not in svc.ip_versions:
                out.append(Problem(where, f"site '{site_name}' is v6-only but service '{name}' is v4-only"))
        for i, dep in enumerate(svc.depends_on):
            if dep not in services:
                out.append(Problem(f"{path}.depends_on[{i}]", f"unknown service '{dep}'"))
            elif dep == name:
                out.append(Problem(f"{path}.depends_on[{i}]", f"service '{name}' depends on itself"))
    g = nx.DiGraph((n, d) for n, s in services.items() for d in s.depends_on if d in services and d != n)
    for cycle in sorted(nx.simple_cycles(g), key=sorted):
        first = min(cycle)
        chain = cycle[cycle.index(first):] + cycle[:cycle.index(first)] + [first]
        out.append(Problem(f"services.{first}.depends_on", f"dependency cycle: {' -> '.join(chain)}"))
    return out


def selector_problem(sc: Scenario, selector: SelectorSpec) -> str | None:
    if selector.kind == "any":
        return None
    kind, ref = selector.kind, selector.ref
    if kind == "site":
        return _unknown_site(sc, ref)
    if kind == "service":
        return None if ref in sc.spec.services else f"unknown service '{ref}'"
    if kind == "kind":
        if ref not in SITE_KINDS:
            return f"unknown site kind '{ref}' (expected one of: {', '.join(SITE_KINDS)})"
        return None if sc.sites_of_kind(ref) else f"no site is of kind '{ref}'"
    defined = {z for dc in sc.data_centres() for z in sc.sites[dc].zones}
    if ref not in defined:
        return f"zone '{ref}' is not defined in any data centre"
    return None


def _policy(sc: Scenario) -> list[Problem]:
    out: list[Problem] = []
    for i, flow in enumerate(sc.spec.policy.allow):
        path = f"policy.allow[{i}]"
        for field, selectors in (("from", flow.source), ("to", flow.to)):
            for j, selector in enumerate(selectors):
                where = f"{path}.{field}" + (f"[{j}]" if len(selectors) > 1 else "")
                if msg := selector_problem(sc, selector):
                    out.append(Problem(where, msg))
        if flow.ports is None and not all(t.kind == "service" for t in flow.to):
            out.append(Problem(f"{path}.ports", "ports are required unless 'to' names services"))
        sources = [s for sel in flow.source for s in _selected_sites(sc, sel)]
        for target in flow.to:
            svc_name = target.ref
            svc = sc.spec.services.get(svc_name) if target.kind == "service" else None
            if svc is None:
                continue
            missing = sorted(set(flow.ip) - set(svc.ip_versions))
            if missing and "ip" in flow.model_fields_set:  # by default a flow uses what the service speaks
                out.append(Problem(f"{path}.ip", f"service '{svc_name}' does not speak IPv{missing[0]}"))
            # A client that speaks only the one family the service lacks can never reach it.
            for version, stage in ((4, "v4-only"), (6, "v6-only")):
                if version in svc.ip_versions:
                    continue
                stranded = [s for s in sources if sc.stages[s] == stage]
                if stranded:
                    out.append(Problem(f"{path}.from", f"site '{stranded[0]}' is {stage} but service "
                                                       f"'{svc_name}' is {'v6' if version == 4 else 'v4'}-only"))
    return out


def _selected_sites(sc: Scenario, selector: SelectorSpec) -> list[str]:
    kind, ref = selector.kind, selector.ref
    if kind == "site":
        return [ref] if ref in sc.sites else []
    if kind == "kind":
        return sc.sites_of_kind(ref)
    if kind == "zone":
        return [dc for dc in sc.data_centres() if ref in sc.sites[dc].zones]
    if kind == "service" and (svc := sc.spec.services.get(ref)):
        return [s for s in (svc.placement.primary, svc.placement.backup) if s in sc.sites]
    return []


def _pools(sc: Scenario) -> list[Problem]:
    a = sc.spec.addressing
    named = [(f"addressing.ipv4_pools[{i}]", p) for i, p in enumerate(a.ipv4_pools)]
    named.append(("addressing.ipv4_link_pool", a.ipv4_link_pool))
    if a.external_ipv4 is not None:
        named.append(("addressing.external_ipv4", a.external_ipv4))
    named.append(("addressing.ipv6_prefix", a.ipv6_prefix))
    if a.external_ipv6 is not None:
        named.append(("addressing.external_ipv6", a.external_ipv6))
    out = []
    for (pa, na), (pb, nb) in itertools.combinations(named, 2):
        if na.version == nb.version and (na in nb or nb in na or na.network in nb or nb.network in na):
            out.append(Problem(pb, f"{nb} overlaps {pa} ({na})"))
    if a.ipv6_prefix.prefixlen > a.site_prefix_length:
        out.append(Problem("addressing.site_prefix_length",
                           f"/{a.site_prefix_length} per site does not fit inside {a.ipv6_prefix}"))
    return out


def _ipv6(sc: Scenario) -> list[Problem]:
    out: list[Problem] = []
    rollout = sc.spec.ipv6
    names = [p.name for p in rollout.phases]
    if rollout.current is not None and rollout.current not in names:
        out.append(Problem("ipv6.current", f"unknown phase '{rollout.current}'"
                                           + (f" (phases: {', '.join(names)})" if names else "")))
    for i, (before, after) in enumerate(itertools.pairwise(rollout.phases)):
        if after.start <= before.start:
            out.append(Problem(f"ipv6.phases[{i + 1}].start",
                               f"{after.start} is not after phase '{before.name}' ({before.start})"))
    for i, phase in enumerate(rollout.phases):
        for site in phase.sites:
            if site not in sc.sites:
                out.append(Problem(f"ipv6.phases[{i}].sites.{site}", f"unknown site '{site}'"))
    for name, count in ((n, names.count(n)) for n in dict.fromkeys(names)):
        if count > 1:
            out.append(Problem("ipv6.phases", f"duplicate phase name '{name}'"))
    return out


def _workload(sc: Scenario) -> list[Problem]:
    w = sc.spec.workload
    if w is None:
        return []
    out = [Problem(f"workload.services.{name}", f"unknown service '{name}'")
           for name in w.services if name not in sc.spec.services]
    for field in ("daily_profile", "weekly_profile"):
        values = getattr(w, field)
        if any(v < 0 for v in values) or sum(values) <= 0:
            out.append(Problem(f"workload.{field}", "weights must be non-negative and not all zero"))
    for name in (w.growth.drivers if w.growth else {}):
        if name not in w.services:
            out.append(Problem(f"workload.growth.drivers.{name}",
                               f"unknown service '{name}' (the workload's services: {', '.join(w.services)})"))
    return out


def _connected(sc: Scenario) -> list[Problem]:
    """Every site must reach a data centre, or it is a site nobody can serve."""
    dcs = [d for d in sc.data_centres()]
    if not dcs:
        return [Problem("sites", "no provincial-dc or backup-dc site: nothing to serve the province")]
    g = nx.Graph()
    g.add_nodes_from(sc.sites)
    g.add_edges_from((l.a, l.b) for l in sc.links if l.a in sc.sites and l.b in sc.sites)
    reach = set().union(*(nx.node_connected_component(g, d) for d in dcs))
    return [Problem(sc.site_paths[s], f"site '{s}' is not connected to any data centre (no uplink or parent)")
            for s in sc.sites if s not in reach and sc.site_paths[s].count(".") == 1]
