"""Table 1 of an edge switch (pure): the policy, stateful and default deny. Established and
related traffic passes, counted by the zone pair its connection was marked with; a new
connection passes (committed, its conntrack mark naming its zone pair) only where
`inventory.policy.Intent` allows it from that host to that address and port; the rest is
dropped and counted. Every Internet source is metered (`ddos.py`)."""
from __future__ import annotations

import netaddr

from egovlab.inventory.policy import ICMP_ECHO, Intent
from egovlab.inventory.scenario import Scenario
from egovlab.inventory.schema import PortSpec
from egovlab.topology.model import EmulationPlan, HostNode

from . import ddos
from .program import (CT_EST as EST, CT_NEW as NEW, CT_REL as REL, CT_ZONE, DROP_COUNTER, ETH, TABLE_FORWARD,
                      TABLE_POLICY, Meter, Rule, masked)

ICMP = {4: ("ip_proto", 1, "icmpv4_type"), 6: ("ip_proto", 58, "icmpv6_type")}


def port_match(port: str, version: int) -> dict:
    """The OpenFlow match of one policy port ('any': no match on the protocol at all)."""
    spec = PortSpec.parse(port)
    if spec.proto == "any":
        return {}
    if spec.proto == "icmp":
        field, proto, type_field = ICMP[version]
        return {field: proto, type_field: ICMP_ECHO[version]}
    return {"ip_proto": 6 if spec.proto == "tcp" else 17, f"{spec.proto}_dst": spec.number}


def zone_of(sc: Scenario, ep) -> str:
    """What traffic accounting calls an endpoint's zone: its DC zone, else its site's kind."""
    return ep.zone or sc.sites[ep.site].kind


def zone_pairs(sc: Scenario, plan: EmulationPlan) -> dict[tuple[str, str], int]:
    """(source zone, destination zone) -> counter id; the same on every compile of the scenario."""
    intent = Intent(sc)
    zones = sorted({zone_of(sc, intent.endpoints[h.label]) for h in plan.hosts.values()})
    return {(a, b): DROP_COUNTER + 1 + i for i, (a, b) in enumerate((a, b) for a in zones for b in zones)}


class PolicyIndex:
    """The policy for the emulated hosts: `inventory.policy.Intent` (the one reading of the
    scenario's flows) keyed by node name, with the zone pair each connection counts under."""

    def __init__(self, sc: Scenario, plan: EmulationPlan):
        self.sc = sc
        self.intent = Intent(sc)
        self.endpoints = {h.name: self.intent.endpoints[h.label] for h in plan.hosts.values()}
        self.hosts = plan.hosts
        self.node = {h.label: h.name for h in plan.hosts.values()}
        self.pair_ids = zone_pairs(sc, plan)
        self._allowed: dict[str, dict[str, dict[int, set[str]]]] = {}

    def zone(self, host: str) -> str:
        return zone_of(self.sc, self.endpoints[host])

    def pair(self, src: str, dst: str) -> int:
        """The counter id (and conntrack mark) of traffic from src's zone to dst's."""
        return self.pair_ids[(self.zone(src), self.zone(dst))]

    def allowed(self, src: str) -> dict[str, dict[int, set[str]]]:
        """dst host -> IP version -> ports that new connections from `src` may open."""
        if src not in self._allowed:
            by_label = self.intent.ports_from(self.hosts[src].label)
            self._allowed[src] = {self.node[d]: v for d, v in by_label.items() if d in self.node}
        return self._allowed[src]

    def marks(self) -> dict[str, set[int]]:
        """host -> the zone-pair marks of the connections its edge sees (the reply enters at the
        destination's edge, so both ends of an allowed connection count it)."""
        out: dict[str, set[int]] = {}
        for host in self.hosts:
            out.setdefault(host, set()).add(self.pair(host, host))
            for dst in self.allowed(host):
                mark = self.pair(host, dst)
                out[host].add(mark)
                out.setdefault(dst, set()).add(mark)
        return out


def new_connection_rules(index: PolicyIndex, host: HostNode, port: int) -> list[Rule]:
    """Table-1 rules for new connections from one host: its own segment, then one per allowed
    (destination, port)."""
    rules: list[Rule] = []

    def actions(dst: str) -> list:  # commit, marked with the zone pair its bytes count under
        return [("ct_commit", CT_ZONE, index.pair(host.name, dst)), ("goto", TABLE_FORWARD)]

    own = {4: host.ipv4, 6: host.ipv6}
    keys = {v: (ETH[v], f"ipv{v}_src", f"ipv{v}_dst") for v in (4, 6)}
    for version, addr in own.items():  # inside one LAN or zone there is no boundary to enforce
        if addr is None:
            continue
        eth, k_src, k_dst = keys[version]
        net = netaddr.IPNetwork(f"{addr.ip}/{addr.prefixlen}")
        rules.append(Rule.make(TABLE_POLICY, 200, actions(host.name), ct_state=NEW, in_port=port, eth_type=eth,
                               **{k_src: str(addr.ip), k_dst: masked(net)}))
    for dst, by_version in sorted(index.allowed(host.name).items()):
        d = index.hosts[dst]
        for version, ports in sorted(by_version.items()):
            s_addr, d_addr = own[version], d.ipv4 if version == 4 else d.ipv6
            if s_addr is None or d_addr is None:
                continue
            eth, k_src, k_dst = keys[version]
            base = {"eth_type": eth, "in_port": port, k_src: str(s_addr.ip), k_dst: str(d_addr.ip)}
            for p in sorted(ports) if "any" not in ports else ["any"]:
                extra = port_match(p, version)
                rules.append(Rule.make(TABLE_POLICY, 100 + len(extra), actions(dst), ct_state=NEW, **base, **extra))
    return rules


def policy_table(sc: Scenario, index: PolicyIndex, host_ports: dict[int, str], marks: dict[str, set[int]],
                 ddos_rate_kbps: int) -> tuple[list[Rule], dict[int, Meter]]:
    """Table 1 of a switch with hosts on `host_ports` (port -> host), and its meters."""
    rules = [Rule.make(TABLE_POLICY, 1000, [("goto", TABLE_FORWARD)], ct_state=state) for state in (EST, REL)]
    for mark in sorted({m for host in host_ports.values() for m in marks.get(host, ())}):
        rules.append(Rule.make(TABLE_POLICY, 1010, [("goto", TABLE_FORWARD)], counter=mark, ct_state=EST, ct_mark=mark))
    rules.append(Rule.make(TABLE_POLICY, 0, [], counter=DROP_COUNTER))
    meters: dict[int, Meter] = {}
    for port, host in sorted(host_ports.items()):
        mine = new_connection_rules(index, index.hosts[host], port)
        if sc.sites[index.hosts[host].site].kind == "internet" and ddos_rate_kbps:
            meter, mine, extra = ddos.metered(port, mine, sorted(marks.get(host, ())), ddos_rate_kbps)
            meters[meter.meter_id] = meter
            rules += extra
        rules += mine
    return rules, meters
