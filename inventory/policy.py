"""The scenario's intended policy — the one model of it: is this flow intended?

Default deny. A flow opens, from any endpoint its `from` selectors select to any endpoint a
`to` selector selects: its `ports`, or (without ports) the ports of each `service:` target the
destination runs; over the IP versions the flow names, restricted for a `service:` target to
the versions that service speaks, and to the versions both endpoints have an address in (a
site's IPv6 stage: `v4-only` sites have no IPv6, `v6-only` ones no IPv4). `relation: parent`
limits a flow to a site and its parent. Inside one LAN or DC zone everything is open (there
is no boundary to enforce). Replies of intended traffic are implied (stateful).

Selectors and ports are parsed once, at load time (`schema.SelectorSpec`, `schema.PortSpec`);
this module is the only reader of their meaning. The probes, the SDN compiler, `egovlab verify`
and the policy diffs all ask it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .scenario import Scenario
from .schema import Flow, PortSpec, SelectorSpec

FAMILIES = frozenset({4, 6})
ICMP_ECHO = {4: 8, 6: 128}  # 'icmp' in a policy is the echo request (ping); its reply is implied
# ICMPv6 router/neighbour discovery and MLD: link control, not traffic a policy grants. The SDN
# controller answers neighbour solicitations for every planned address; the rest stays on the link.
NEIGHBOUR_DISCOVERY = frozenset({133, 134, 135, 136, 137, 143})


@dataclass(frozen=True)
class Endpoint:
    """Where traffic starts or ends: a host or server at a site (and zone, for DC servers)."""

    site: str
    zone: str | None = None
    services: tuple[str, ...] = ()  # services the endpoint runs (servers)
    families: frozenset[int] = FAMILIES  # the IP versions it has an address in


def endpoint_of(sc: Scenario, host: str) -> Endpoint:
    addr = sc.plan.hosts[host]
    runs = sc.server_runs.get(host, ())
    families = frozenset(v for v, a in ((4, addr.ipv4), (6, addr.ipv6)) if a is not None)
    return Endpoint(addr.site, addr.zone, runs, families)


def selects(sc: Scenario, selector: SelectorSpec, ep: Endpoint) -> bool:
    if selector.kind == "any":
        return True
    if selector.kind == "site":
        return ep.site == selector.ref
    if selector.kind == "kind":
        return sc.sites[ep.site].kind == selector.ref
    if selector.kind == "zone":
        return ep.zone == selector.ref
    return selector.ref in ep.services  # service


def target_grant(sc: Scenario, flow: Flow, target: SelectorSpec) -> tuple[frozenset[int], frozenset[str]]:
    """(IP versions, ports) a flow opens towards what one of its `to` selectors selects."""
    svc = sc.spec.services.get(target.ref) if target.kind == "service" else None
    ports = flow.ports if flow.ports is not None else (svc.ports if svc else [])
    versions = frozenset(flow.ip) & (frozenset(svc.ip_versions) if svc else FAMILIES)
    return versions, frozenset(ports)


def pair_applies(sc: Scenario, flow: Flow, src: Endpoint, dst: Endpoint) -> bool:
    return flow.relation != "parent" or sc.sites[src.site].parent == dst.site


def same_segment(src: Endpoint, dst: Endpoint) -> bool:
    """One LAN or one DC zone: no boundary between them."""
    return src.site == dst.site and src.zone == dst.zone


def _add(out: dict[int, set[str]], versions, ports, src: Endpoint, dst: Endpoint) -> None:
    for v in versions & src.families & dst.families:
        out.setdefault(v, set()).update(ports)


def intended_ports(sc: Scenario, src: Endpoint, dst: Endpoint) -> dict[int, set[str]]:
    """IP version -> the ports new connections from src to dst may open ('any': everything)."""
    out: dict[int, set[str]] = {}
    if same_segment(src, dst):
        _add(out, FAMILIES, {"any"}, src, dst)
        return out
    for flow in sc.spec.policy.allow:
        if not pair_applies(sc, flow, src, dst) or not any(selects(sc, s, src) for s in flow.source):
            continue
        for target in flow.to:
            if selects(sc, target, dst):
                _add(out, *target_grant(sc, flow, target), src, dst)
    return out


def covers(ports: set[str] | frozenset[str], proto: str, number: int | None, version: int) -> bool:
    """Does a port set include a concrete packet (proto 'tcp'/'udp' with a port, 'icmp' with a type)?"""
    if proto == "icmp" and version == 6 and number in NEIGHBOUR_DISCOVERY:
        return False
    if "any" in ports:
        return True
    if proto == "icmp":
        return number == ICMP_ECHO[version] and "icmp" in ports
    return f"{proto}/{number}" in ports


def allowing_flows(sc: Scenario, src: Endpoint, dst: Endpoint, port: str, version: int) -> list[Flow]:
    """The flows that allow `port` ('tcp/443', 'udp/514', 'icmp') from src to dst over IPv`version`."""
    spec = PortSpec.parse(port)
    found = []
    for flow in sc.spec.policy.allow:
        if not pair_applies(sc, flow, src, dst) or not any(selects(sc, s, src) for s in flow.source):
            continue
        grants: dict[int, set[str]] = {}
        for target in flow.to:
            if selects(sc, target, dst):
                _add(grants, *target_grant(sc, flow, target), src, dst)
        if _covers_spec(grants.get(version, set()), spec, version):
            found.append(flow)
    return found


def _covers_spec(ports: set[str], spec: PortSpec, version: int) -> bool:
    if spec.proto == "any":
        return "any" in ports
    return covers(ports, spec.proto, ICMP_ECHO[version] if spec.proto == "icmp" else spec.number, version)


def allowed(sc: Scenario, src: Endpoint, dst: Endpoint, port: str, version: int) -> bool:
    """Is a new connection on `port` from src to dst over IPv`version` intended?"""
    return _covers_spec(intended_ports(sc, src, dst).get(version, set()), PortSpec.parse(port), version)


@dataclass
class Intent:
    """The policy for every pair of a scenario's hosts at once (the compiler's and verify's view):
    the same reading as `intended_ports`, with each selector's hosts computed once."""

    sc: Scenario
    endpoints: dict[str, Endpoint] = field(init=False)
    _selected: dict[str, frozenset[str]] = field(init=False, default_factory=dict)
    _from: dict[str, dict[str, dict[int, set[str]]]] = field(init=False, default_factory=dict)

    def __post_init__(self):
        self.endpoints = {h: endpoint_of(self.sc, h) for h in self.sc.plan.hosts}

    def selected(self, selector: SelectorSpec) -> frozenset[str]:
        if selector not in self._selected:
            self._selected[selector] = frozenset(h for h, e in self.endpoints.items() if selects(self.sc, selector, e))
        return self._selected[selector]

    def ports_from(self, src: str) -> dict[str, dict[int, set[str]]]:
        """dst host -> IP version -> ports that new connections from `src` may open (src itself
        and the hosts of its own segment, open to everything, are left out)."""
        if src not in self._from:
            sc, src_ep, out = self.sc, self.endpoints[src], {}
            for flow in sc.spec.policy.allow:
                if not any(src in self.selected(s) for s in flow.source):
                    continue
                for target in flow.to:
                    versions, ports = target_grant(sc, flow, target)
                    for dst in self.selected(target):
                        dst_ep = self.endpoints[dst]
                        if dst != src and not same_segment(src_ep, dst_ep) and pair_applies(sc, flow, src_ep, dst_ep):
                            _add(out.setdefault(dst, {}), versions, ports, src_ep, dst_ep)
            self._from[src] = {d: v for d, v in out.items() if v}
        return self._from[src]

    def named_ports(self) -> frozenset[str]:
        """Every port the policy or a service names: where intent draws its own boundaries."""
        named = {p for f in self.sc.spec.policy.allow for p in (f.ports or [])}
        named |= {p for svc in self.sc.spec.services.values() for p in svc.ports}
        return frozenset(named)

    def ports(self, src: str, dst: str) -> dict[int, set[str]]:
        src_ep, dst_ep = self.endpoints[src], self.endpoints[dst]
        if same_segment(src_ep, dst_ep):
            return intended_ports(self.sc, src_ep, dst_ep)
        return self.ports_from(src).get(dst, {})
