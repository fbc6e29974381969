"""The emulated network as data: which switches, hosts and links a Scenario becomes.

Pure (no Mininet, no root): the builder turns this into a running network, the SDN compiler
reads its graph, tests check it without a kernel.

Mapping:
- every site is one switch — its LAN switch, whose uplink port plays the CPE (the document's
  CPE is a fibre converter with a LAN port: a port, not a switching point);
- a district adds an aggregation switch ("switch gom") that its communes and its own LAN
  switch hang off; the district's uplinks start there;
- a core site is one switch (the TSLCD level II provincial core / PoP);
- a data centre is a core switch, one switch per zone, and an out-of-band management switch
  that every server's second interface joins;
- the national network and the Internet are one switch each with their hosts;
- every scenario link is one emulated link between the switches of its two sites, with its
  bandwidth, delay, loss and role.

Node names are short (`<prefix>s12`, `<prefix>h34`) because Linux interface names hold 15
characters; `EmulationPlan` maps them to scenario names both ways.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import netaddr
import networkx as nx

from egovlab.inventory.scenario import Scenario
from egovlab.inventory.schema import DC_KINDS

DEFAULT_PREFIX = "eg"
LAN_BANDWIDTH = 1_000_000_000  # access links inside a site: 1 Gbps, not shaped


@dataclass(frozen=True)
class SwitchNode:
    name: str  # short node name, e.g. "egs12"
    label: str  # what it is in scenario terms, e.g. "h-cao-lanh/agg"
    site: str
    role: str  # lan | agg | core | dc-core | zone | oob
    zone: str | None
    dpid: int


@dataclass(frozen=True)
class Address:
    ip: netaddr.IPAddress
    prefixlen: int

    def __str__(self) -> str:
        return f"{self.ip}/{self.prefixlen}"


@dataclass(frozen=True)
class HostNode:
    name: str  # short node name, e.g. "egh34"
    label: str  # the scenario's host name, e.g. "so-y-te-h1"
    site: str
    zone: str | None
    role: str  # host | server
    ipv4: Address | None
    ipv6: Address | None
    mgmt_ipv4: Address | None = None  # eth1 on the DC's out-of-band network
    mgmt_ipv6: Address | None = None
    index: int = 0  # the host's number; its MACs derive from it

    @property
    def mac(self) -> str:
        return host_mac(self.index, 0)

    @property
    def mgmt_mac(self) -> str:
        return host_mac(self.index, 1)


def host_mac(index: int, interface: int) -> str:
    """Deterministic, locally administered MACs: 02:e6:<interface>:<index, 24 bits>."""
    return f"02:e6:{interface:02x}:{(index >> 16) & 0xff:02x}:{(index >> 8) & 0xff:02x}:{index & 0xff:02x}"


@dataclass(frozen=True)
class EmuLink:
    a: str  # node names
    b: str
    kind: str  # access | mgmt | fabric | a scenario link kind (tslcd-l2, internet, ...)
    bandwidth: int  # bits per second
    delay_ms: float | None = None
    loss_pct: float | None = None
    role: str = "primary"
    scenario_link: str | None = None  # the Scenario link it emulates, if any
    a_port: int = 0  # port numbers: switches count from 1, hosts from 0 (eth0, eth1)
    b_port: int = 0

    def intf(self, node: str) -> str:
        """The Linux interface name of this link's end on `node` (Mininet's naming)."""
        return f"{node}-eth{self.a_port if node == self.a else self.b_port}"

    def port(self, node: str) -> int:
        return self.a_port if node == self.a else self.b_port


@dataclass
class EmulationPlan:
    scenario: str
    prefix: str
    switches: dict[str, SwitchNode] = field(default_factory=dict)
    hosts: dict[str, HostNode] = field(default_factory=dict)
    links: list[EmuLink] = field(default_factory=list)
    site_switch: dict[str, str] = field(default_factory=dict)  # site -> switch its links end on
    zone_switch: dict[tuple[str, str], str] = field(default_factory=dict)  # (dc, zone) -> switch
    by_label: dict[str, str] = field(default_factory=dict)  # scenario name -> node name

    @property
    def node_count(self) -> int:
        return len(self.switches) + len(self.hosts)

    def node(self, label_or_name: str) -> str:
        """A node name from either its short name or its scenario label."""
        if label_or_name in self.switches or label_or_name in self.hosts:
            return label_or_name
        return self.by_label[label_or_name]

    def label(self, name: str) -> str:
        node = self.switches.get(name) or self.hosts[name]
        return node.label

    def links_of_scenario_link(self, link_name: str) -> list[EmuLink]:
        return [l for l in self.links if l.scenario_link == link_name]

    def graph(self) -> nx.MultiGraph:
        """Nodes and links, each edge keyed by its index in `links` (ports come from the builder)."""
        g = nx.MultiGraph()
        for s in self.switches.values():
            g.add_node(s.name, type="switch", site=s.site, role=s.role, zone=s.zone, dpid=s.dpid)
        for h in self.hosts.values():
            g.add_node(h.name, type="host", site=h.site, zone=h.zone, role=h.role)
        for i, l in enumerate(self.links):
            g.add_edge(l.a, l.b, key=i, kind=l.kind, bandwidth=l.bandwidth, role=l.role,
                       scenario_link=l.scenario_link)
        return g

    def site_nodes(self, site: str) -> list[str]:
        return [n for n, s in self.switches.items() if s.site == site] + \
               [n for n, h in self.hosts.items() if h.site == site]


def _addr(ip, subnet) -> Address | None:
    return None if ip is None else Address(ip, subnet.prefixlen)


def emulation_plan(sc: Scenario, prefix: str = DEFAULT_PREFIX, hosts_per_site: int | None = None) -> EmulationPlan:
    """The network to emulate. `hosts_per_site` caps representative hosts per site (None: the plan's)."""
    if sc.plan is None:
        raise ValueError("scenario must be planned (loader.load plans it)")
    plan = EmulationPlan(sc.name, prefix)
    counter = {"s": 0, "h": 0}

    def switch(label: str, site: str, role: str, zone: str | None = None) -> str:
        counter["s"] += 1
        name = f"{prefix}s{counter['s']}"
        plan.switches[name] = SwitchNode(name, label, site, role, zone, dpid=counter["s"])
        plan.by_label[label] = name
        return name

    def host(addr, on_switch: str, oob_switch: str | None) -> None:
        counter["h"] += 1
        name = f"{prefix}h{counter['h']}"
        subnet = sc.plan.subnets[addr.subnet]
        oob = sc.plan.subnets.get(f"oob:{addr.site}") if addr.mgmt_ipv4 else None
        plan.hosts[name] = HostNode(
            name, addr.name, addr.site, addr.zone, addr.role,
            _addr(addr.ipv4, subnet.ipv4), _addr(addr.ipv6, subnet.ipv6),
            _addr(addr.mgmt_ipv4, oob.ipv4) if oob else None, _addr(addr.mgmt_ipv6, oob.ipv6) if oob else None,
            index=counter["h"])
        plan.by_label[addr.name] = name
        plan.links.append(EmuLink(name, on_switch, "access", LAN_BANDWIDTH))
        if oob_switch and oob:
            plan.links.append(EmuLink(name, oob_switch, "mgmt", LAN_BANDWIDTH))

    hosts_of_site: dict[str, list] = {}
    for addr in sc.plan.hosts.values():
        hosts_of_site.setdefault(addr.site, []).append(addr)

    for site_name, site in sc.sites.items():
        addrs = hosts_of_site.get(site_name, [])
        if site.kind in DC_KINDS:
            core = switch(f"{site_name}/core", site_name, "dc-core")
            plan.site_switch[site_name] = core
            oob = switch(f"{site_name}/oob", site_name, "oob")
            for zone in site.zones:
                zs = switch(f"{site_name}/{zone}", site_name, "zone", zone)
                plan.zone_switch[(site_name, zone)] = zs
                plan.links.append(EmuLink(core, zs, "fabric", LAN_BANDWIDTH))
            for addr in addrs:
                host(addr, plan.zone_switch[(site_name, addr.zone)] if addr.zone else core, oob)
            continue
        lan = switch(f"{site_name}/lan", site_name, "core" if site.kind == "core" else "lan")
        plan.site_switch[site_name] = lan
        if site.kind == "district":
            agg = switch(f"{site_name}/agg", site_name, "agg")
            plan.site_switch[site_name] = agg
            plan.links.append(EmuLink(lan, agg, "fabric", LAN_BANDWIDTH))
        servers = [a for a in addrs if a.role == "server"]
        hosts = [a for a in addrs if a.role != "server"]
        if hosts_per_site is not None:
            hosts = hosts[:hosts_per_site]
        for addr in servers + hosts:
            host(addr, lan, None)

    for link in sc.links:
        plan.links.append(EmuLink(plan.site_switch[link.a], plan.site_switch[link.b], link.kind, link.bandwidth,
                                  link.delay_ms, link.loss_pct, link.role, link.name))
    _number_ports(plan)
    return plan


def _number_ports(plan: EmulationPlan) -> None:
    """Give every link end a port number, in link order, as Mininet would."""
    used: dict[str, int] = {}
    numbered = []
    for link in plan.links:
        ports = []
        for node in (link.a, link.b):
            first = 0 if node in plan.hosts else 1
            ports.append(used.get(node, first))
            used[node] = ports[-1] + 1
        numbered.append(dataclasses.replace(link, a_port=ports[0], b_port=ports[1]))
    plan.links = numbered


# 802.1D-2004 bridge priorities (multiples of 4096): the root and the secondary root.
RSTP_ROOT_PRIORITY, RSTP_SECONDARY_PRIORITY = 4096, 8192
# A backup link's port path cost: 802.1D-2004's for 100 Mb/s, ten times a 1 Gb/s port's (20,000;
# Open vSwitch costs a port by its reported speed), so a path over primaries always wins.
RSTP_BACKUP_PATH_COST = 200_000


def rstp_priorities(plan: EmulationPlan) -> dict[str, int]:
    """Switch -> RSTP bridge priority for the switches pinned as root and secondary root: the
    TSLCD core switches in plan order (the data-centre cores when a scenario has no core site).

    Left to the default priority, the root is whichever bridge drew the lowest random MAC; when
    that bridge is in a site that is then cut off, every other site re-elects a root, and RSTP
    with stale root information circulating takes tens of seconds to settle. Pinned, only losing
    the core moves the root, to the secondary."""
    cores = [n for n, s in plan.switches.items() if s.role == "core"] or \
        [n for n, s in plan.switches.items() if s.role == "dc-core"]
    return dict(zip(cores, (RSTP_ROOT_PRIORITY, RSTP_SECONDARY_PRIORITY)))


def rstp_port_costs(plan: EmulationPlan) -> dict[str, int]:
    """Interface -> RSTP port path cost for both ends of the scenario's backup links, so the
    spanning tree forwards over the primaries and a backup only carries traffic once they fail
    (left equal, a district whose primary goes to the secondary core would use its backup)."""
    return {link.intf(n): RSTP_BACKUP_PATH_COST for link in plan.links if link.role == "backup"
            for n in (link.a, link.b) if n in plan.switches}


def shard_assignment(plan: EmulationPlan, shards: int) -> dict[str, int]:
    """Switch -> shard index (0-based) for `shards` Open vSwitch daemons: sites kept whole (a
    site's switches share a daemon), in plan order, the shards filled to an equal switch count."""
    if shards <= 1:
        return {name: 0 for name in plan.switches}
    by_site: dict[str, list[str]] = {}
    for name, s in plan.switches.items():
        by_site.setdefault(s.site, []).append(name)
    per_shard = -(-len(plan.switches) // shards)  # ceiling
    out, index, filled = {}, 0, 0
    for names in by_site.values():
        if filled and filled + len(names) > per_shard and index < shards - 1:
            index, filled = index + 1, 0
        for name in names:
            out[name] = index
        filled += len(names)
    return out
