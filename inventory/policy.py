"""The scenario's intended policy, evaluated: may this endpoint reach that one on this port?

Default deny; a flow allows traffic from any of its `from` selectors to any of its `to`
selectors on its ports (or, for `service:` targets without ports, the service's ports), for
its IP versions, where the service speaks them. Replies of allowed traffic are implied
(stateful). The emulation's probes and the SDN compiler both ask this one module.
"""
from __future__ import annotations

from dataclasses import dataclass

from .scenario import Scenario
from .schema import Flow


@dataclass(frozen=True)
class Endpoint:
    """Where traffic starts or ends: a host or server at a site (and zone, for DC servers)."""

    site: str
    zone: str | None = None
    services: tuple[str, ...] = ()  # services the endpoint runs (servers)


def endpoint_of(sc: Scenario, host: str) -> Endpoint:
    addr = sc.plan.hosts[host]
    runs: tuple[str, ...] = ()
    for ref in sc.servers():
        if ref.name == host:
            runs = tuple(ref.server.runs)
    return Endpoint(addr.site, addr.zone, runs)


def _matches(sc: Scenario, selector: str, ep: Endpoint) -> bool:
    if selector == "any":
        return True
    kind, ref = selector.split(":", 1)
    if kind == "site":
        return ep.site == ref
    if kind == "kind":
        return sc.sites[ep.site].kind == ref
    if kind == "zone":
        return ep.zone == ref
    return ref in ep.services  # service


def flow_ports(sc: Scenario, flow: Flow, dst: Endpoint) -> set[str]:
    """The ports a flow opens towards `dst` ('any' opens everything)."""
    if flow.ports is not None:
        return set(flow.ports)
    ports: set[str] = set()
    for target in flow.to:
        if target.startswith("service:") and target[8:] in dst.services:
            ports.update(sc.spec.services[target[8:]].ports)
    return ports


def _versions(sc: Scenario, flow: Flow, dst: Endpoint) -> set[int]:
    versions = set(flow.ip)
    for target in flow.to:
        if target.startswith("service:") and target[8:] in dst.services:
            versions &= set(sc.spec.services[target[8:]].ip_versions)
    return versions


def allowing_flows(sc: Scenario, src: Endpoint, dst: Endpoint, port: str, version: int) -> list[Flow]:
    """The flows that allow `port` ('tcp/443', 'udp/514', 'icmp') from src to dst over IPv`version`."""
    found = []
    for flow in sc.spec.policy.allow:
        if not any(_matches(sc, s, src) for s in flow.source):
            continue
        if not any(_matches(sc, t, dst) for t in flow.to):
            continue
        if flow.relation == "parent" and sc.sites[src.site].parent != dst.site:
            continue
        ports = flow_ports(sc, flow, dst)
        if "any" not in ports and port not in ports:
            continue
        if version not in _versions(sc, flow, dst):
            continue
        found.append(flow)
    return found


def allowed(sc: Scenario, src: Endpoint, dst: Endpoint, port: str, version: int) -> bool:
    if src.site == dst.site and src.zone == dst.zone:
        return True  # inside one LAN or zone: no boundary to enforce
    return bool(allowing_flows(sc, src, dst, port, version))
