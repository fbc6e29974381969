"""The pure compiler: Scenario + emulated topology -> OpenFlow 1.3 rules per switch, as data.

No switch, no controller: unit tests call it directly, the os-ken adapter only translates.

Pipeline on every switch:
- table 0 (classify): ARP and IPv6 neighbour solicitations go to the controller (it answers
  for every planned address: no flooding anywhere); IP from a host port goes through
  conntrack into table 1; IP from a switch port goes straight to table 2 (policy is enforced
  once, at the source's edge), committed to conntrack first when it is for a host of this
  switch (so its replies are established here too); everything else is dropped.
- table 1 (policy, edge switches): established/related traffic passes; a new connection
  passes (and is committed, its conntrack mark naming its zone pair) only if the scenario's
  policy allows it from that host to that address and port; the rest is dropped. Counting
  rules (bytes per zone pair, drops) carry a counter id in their cookie for the metrics.
- table 2 (forward): by destination MAC to the port towards the host, through an OpenFlow
  fast-failover group whose second bucket is a loop-free alternate next hop, so a cut link is
  repaired in the switch itself.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import networkx as nx

import netaddr

from egovlab.inventory.policy import Intent, endpoint_of
from egovlab.inventory.scenario import Scenario
from egovlab.topology.model import EmulationPlan, HostNode

TABLE_CLASSIFY, TABLE_POLICY, TABLE_FORWARD = 0, 1, 2
CT_ZONE = 1
BACKUP_COST = 10  # links with role 'backup' carry traffic only when the primary path is gone
# Cookies: every rule the controller installs carries COOKIE in its top bits (re-sync deletes by
# cookie and mask); counting rules add COUNTED and their counter id, so the controller can read
# exactly those back in one flow-stats request per switch.
COOKIE = 0xE6 << 48
COOKIE_MASK = 0xFFFF << 48
COUNTED = 1 << 32
DROP_COUNTER = 1  # the counter id of table 1's default-deny rule; zone pairs count from 2
TAP_GROUP = 0x7F000001  # above every fast-failover id (primary << 16 | alternate)
# DDoS protection (§VIII.2.đ): every Internet source is held to this rate towards the DC. The
# document gives no figure; 5 Mbps per source is an assumption (about 5 % of one leased line).
DDOS_RATE_KBPS = 5_000
DDOS_BURST_KB = 500


@dataclass(frozen=True)
class Rule:
    table: int
    priority: int
    match: tuple  # sorted (field, value) pairs, OpenFlow 1.3 OXM field names as os-ken spells them
    actions: tuple  # ("output", port) | ("group", id) | ("goto", table) | ("controller",) | ("ct", ...)
    counter: int = 0  # 0, DROP_COUNTER or a zone pair's id (see zone_pairs): read back for metrics

    @staticmethod
    def make(table: int, priority: int, actions: list, counter: int = 0, **match) -> "Rule":
        return Rule(table, priority, tuple(sorted(match.items())), tuple(actions), counter)

    @property
    def cookie(self) -> int:
        return COOKIE | (COUNTED | self.counter if self.counter else 0)


@dataclass(frozen=True)
class Group:
    group_id: int
    buckets: tuple  # ((watch_port, out_port), ...) in preference order
    kind: str = "ff"  # ff: fast failover | all: a copy to every bucket (the TAP)
    set_eth_dst: str | None = None  # 'all' groups: the sensor's MAC on the copy


@dataclass(frozen=True)
class Meter:
    meter_id: int
    rate_kbps: int
    burst_kb: int


@dataclass
class SwitchProgram:
    dpid: int
    name: str
    rules: list[Rule] = field(default_factory=list)
    groups: dict[int, Group] = field(default_factory=dict)
    meters: dict[int, Meter] = field(default_factory=dict)


def topology_graph(plan: EmulationPlan, down: set[str] = frozenset()) -> nx.MultiGraph:
    """Switch-to-switch graph with costs; `down` names links (a-b intf names) to leave out."""
    g = nx.MultiGraph()
    g.add_nodes_from(plan.switches)
    for i, link in enumerate(plan.links):
        if link.a in plan.switches and link.b in plan.switches and link.intf(link.a) not in down:
            g.add_edge(link.a, link.b, key=i, weight=BACKUP_COST if link.role == "backup" else 1,
                       ports={link.a: link.port(link.a), link.b: link.port(link.b)})
    return g


def _simple(g: nx.MultiGraph) -> nx.Graph:
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
    simple = _simple(g)
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



PORT_MATCH = {"icmp": {4: {"ip_proto": 1, "icmpv4_type": 8}, 6: {"ip_proto": 58, "icmpv6_type": 128}}}


def _port_match(port: str, version: int) -> list[dict]:
    if port == "any":
        return [{}]
    if port == "icmp":
        return [PORT_MATCH["icmp"][version]]
    proto, number = port.split("/")
    if proto == "tcp":
        return [{"ip_proto": 6, "tcp_dst": int(number)}]
    return [{"ip_proto": 17, "udp_dst": int(number)}]


def zone_of(sc: Scenario, ep) -> str:
    """What traffic accounting calls an endpoint's zone: its DC zone, else its site's kind."""
    return ep.zone or sc.sites[ep.site].kind


def zone_pairs(sc: Scenario, plan: EmulationPlan) -> dict[tuple[str, str], int]:
    """(source zone, destination zone) -> counter id; the same on every compile of the scenario."""
    zones = sorted({zone_of(sc, endpoint_of(sc, h.label)) for h in plan.hosts.values()})
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


def policy_rules(index: PolicyIndex, host: HostNode, port: int) -> list[Rule]:
    """Table-1 rules for new connections from one host: one per allowed (destination, port)."""
    rules: list[Rule] = []
    new = (0x21, 0x21)  # +trk+new

    def actions(dst: str) -> list:  # commit, marked with the zone pair its bytes count under
        return [("ct_commit", CT_ZONE, index.pair(host.name, dst)), ("goto", TABLE_FORWARD)]

    own = {4: host.ipv4, 6: host.ipv6}
    # Inside one LAN or zone there is no boundary to enforce.
    for version, addr in own.items():
        if addr is None:
            continue
        eth, (k_src, k_dst) = (0x0800, ("ipv4_src", "ipv4_dst")) if version == 4 else (0x86DD, ("ipv6_src", "ipv6_dst"))
        subnet = f"{addr.ip}/{addr.prefixlen}"
        net = netaddr.IPNetwork(subnet)
        rules.append(Rule.make(TABLE_POLICY, 200, actions(host.name), ct_state=new, in_port=port, eth_type=eth,
                               **{k_src: str(addr.ip), k_dst: (str(net.network), str(net.netmask))}))
    for dst, by_version in sorted(index.allowed(host.name).items()):
        d = index.hosts[dst]
        for version, ports in sorted(by_version.items()):
            s_addr, d_addr = own[version], d.ipv4 if version == 4 else d.ipv6
            if s_addr is None or d_addr is None:
                continue
            eth, (k_src, k_dst) = (0x0800, ("ipv4_src", "ipv4_dst")) if version == 4 else (0x86DD, ("ipv6_src", "ipv6_dst"))
            base = {"eth_type": eth, "in_port": port, k_src: str(s_addr.ip), k_dst: str(d_addr.ip)}
            for p in sorted(ports) if "any" not in ports else ["any"]:
                for extra in _port_match(p, version):
                    rules.append(Rule.make(TABLE_POLICY, 100 + len(extra), actions(dst), ct_state=new, **base, **extra))
    return rules


def tap_sensor(sc: Scenario, plan: EmulationPlan) -> HostNode | None:
    """The SOC's sensor: the first server of the primary DC's SOC zone whose role names a TAP or IDS."""
    soc = [h for h in plan.hosts.values() if h.zone == "soc" and sc.sites[h.site].kind == "provincial-dc"]
    roles = {r.name: r.server.role.lower() for r in sc.servers()}
    return next((h for h in soc if "tap" in roles.get(h.label, "") or "ids" in roles.get(h.label, "")),
                soc[0] if soc else None)


def compile_network(sc: Scenario, plan: EmulationPlan, down: set[str] = frozenset(),
                    ddos_rate_kbps: int = DDOS_RATE_KBPS,
                    takeovers: dict[str, str] | None = None) -> dict[int, SwitchProgram]:
    """Every switch's rules, groups and meters; `down` names switch interfaces known to be down;
    `takeovers` maps a host to the standby that took over its address (see `takeover_allowed`):
    frames still addressed to the old host's MAC are re-addressed to the standby's in the fabric."""
    g = topology_graph(plan, down)
    hops = next_hops(plan, g)
    attached = attachments(plan)
    index = PolicyIndex(sc, plan)
    sensor = tap_sensor(sc, plan)
    programs = {s.dpid: SwitchProgram(s.dpid, s.name) for s in plan.switches.values()}
    host_ports: dict[str, dict[int, str]] = {}
    for host, (sw, port) in attached.items():
        host_ports.setdefault(sw, {})[port] = host
    # Both edges of a connection see its packets (the reply enters at the destination's edge).
    pairs_by_host: dict[str, set[int]] = {}
    for host in attached:
        pairs_by_host.setdefault(host, set()).add(index.pair(host, host))
        for dst in index.allowed(host):
            mark = index.pair(host, dst)
            pairs_by_host[host].add(mark)
            pairs_by_host.setdefault(dst, set()).add(mark)
    mgmt_ports: dict[str, dict[int, str]] = {}
    for link in plan.links:
        if link.kind == "mgmt":
            host, sw = (link.a, link.b) if link.a in plan.hosts else (link.b, link.a)
            mgmt_ports.setdefault(sw, {})[link.port(sw)] = host
    for sw_name, sw in plan.switches.items():
        prog = programs[sw.dpid]
        r = prog.rules
        # table 0: classify
        r.append(Rule.make(TABLE_CLASSIFY, 1000, [("controller",)], eth_type=0x0806))
        r.append(Rule.make(TABLE_CLASSIFY, 1000, [("controller",)], eth_type=0x86DD, ip_proto=58, icmpv6_type=135))
        for icmp6 in (133, 134, 136, 143):  # RS, RA, NA, MLDv2: the controller speaks for every address
            r.append(Rule.make(TABLE_CLASSIFY, 1000, [], eth_type=0x86DD, ip_proto=58, icmpv6_type=icmp6))
        for port in sorted(host_ports.get(sw_name, {})):
            for eth in (0x0800, 0x86DD):
                r.append(Rule.make(TABLE_CLASSIFY, 500, [("ct", CT_ZONE, TABLE_POLICY)], in_port=port, eth_type=eth))
        for eth in (0x0800, 0x86DD):
            r.append(Rule.make(TABLE_CLASSIFY, 100, [("goto", TABLE_FORWARD)], eth_type=eth))
        # The destination's edge commits what the fabric delivers to its hosts (the source's edge
        # let it in), so that the replies entering here are established in this switch's own
        # conntrack too: a lab spread over several Open vSwitch daemons has one per daemon. The
        # mark is left as it is (None): where one daemon runs every switch, the connection is the
        # one the source's edge committed, marked with its zone pair.
        for host in sorted(host_ports.get(sw_name, {}).values()):
            for eth in (0x0800, 0x86DD):
                r.append(Rule.make(TABLE_CLASSIFY, 400, [("ct_commit", CT_ZONE, None), ("goto", TABLE_FORWARD)],
                                   eth_type=eth, eth_dst=plan.hosts[host].mac))
        # TAP: the primary DC's core copies every packet entering it (from the Internet lines,
        # the TSLCD and every zone but the SOC's own) to the SOC's sensor (§VIII.2.đ).
        soc_switch = plan.zone_switch.get((sw.site, "soc"))
        if sensor is not None and sw.role == "dc-core" and sw.site == sensor.site and soc_switch:
            soc_port = next(l.port(sw_name) for l in plan.links if {l.a, l.b} == {sw_name, soc_switch})
            prog.groups[TAP_GROUP] = Group(TAP_GROUP, ((0, soc_port),), kind="all", set_eth_dst=sensor.mac)
            for link in plan.links:
                if sw_name in (link.a, link.b) and link.port(sw_name) != soc_port:
                    for eth in (0x0800, 0x86DD):
                        r.append(Rule.make(TABLE_CLASSIFY, 150, [("group", TAP_GROUP), ("goto", TABLE_FORWARD)],
                                           in_port=link.port(sw_name), eth_type=eth))
        # table 1: policy at the edge. Established traffic passes, counted by the zone pair its
        # connection was marked with; what no rule lets through is dropped and counted.
        if host_ports.get(sw_name):
            est, rel = (0x22, 0x22), (0x24, 0x24)  # +trk+est, +trk+rel
            for state in (est, rel):
                r.append(Rule.make(TABLE_POLICY, 1000, [("goto", TABLE_FORWARD)], ct_state=state))
            marks = sorted({m for host in host_ports[sw_name].values() for m in pairs_by_host.get(host, ())})
            for mark in marks:
                r.append(Rule.make(TABLE_POLICY, 1010, [("goto", TABLE_FORWARD)], counter=mark, ct_state=est,
                                   ct_mark=mark))
            r.append(Rule.make(TABLE_POLICY, 0, [], counter=DROP_COUNTER))
            for port, host in sorted(host_ports[sw_name].items()):
                rules = policy_rules(index, plan.hosts[host], port)
                if sc.sites[plan.hosts[host].site].kind == "internet" and ddos_rate_kbps:
                    # DDoS: one meter per Internet source, on new and established traffic alike.
                    meter = Meter(port, ddos_rate_kbps, DDOS_BURST_KB)
                    prog.meters[meter.meter_id] = meter
                    metered = [("meter", meter.meter_id), ("goto", TABLE_FORWARD)]
                    rules = [dataclasses.replace(x, actions=(("meter", meter.meter_id),) + x.actions) for x in rules]
                    for state in (est, rel):
                        r.append(Rule.make(TABLE_POLICY, 1015, metered, ct_state=state, in_port=port))
                    for mark in sorted(pairs_by_host.get(host, ())):
                        r.append(Rule.make(TABLE_POLICY, 1020, metered, counter=mark, ct_state=est, ct_mark=mark,
                                           in_port=port))
                r.extend(rules)
        # the out-of-band management network: its own segment, no policy, forwarded by MAC
        for port, host in sorted(mgmt_ports.get(sw_name, {}).items()):
            for eth in (0x0800, 0x86DD):
                r.append(Rule.make(TABLE_CLASSIFY, 500, [("goto", TABLE_FORWARD)], in_port=port, eth_type=eth))
            r.append(Rule.make(TABLE_FORWARD, 100, [("output", port)], eth_dst=plan.hosts[host].mgmt_mac))
        if sw.role == "oob":
            continue
        # table 2: forward by destination MAC
        towards: dict[str, list] = {}
        for host, (edge, port) in attached.items():
            if edge == sw_name:
                towards[host] = [("output", port)]
                continue
            hop = hops.get(sw_name, {}).get(edge)
            if hop is None:
                continue  # unreachable from here (a partitioned network)
            primary, alt = hop
            if alt is None:
                towards[host] = [("output", primary)]
            else:
                gid = primary << 16 | alt
                prog.groups[gid] = Group(gid, ((primary, primary), (alt, alt)))
                towards[host] = [("group", gid)]
        for host, actions in towards.items():
            r.append(Rule.make(TABLE_FORWARD, 100, actions, eth_dst=plan.hosts[host].mac))
        for old, new in (takeovers or {}).items():
            if new in towards:
                r.append(Rule.make(TABLE_FORWARD, 200, [("set_eth_dst", plan.hosts[new].mac), *towards[new]],
                                   eth_dst=plan.hosts[old].mac))
    return programs


def takeover_allowed(sc: Scenario, plan: EmulationPlan, old: str, new: str) -> bool:
    """A standby may take over a host's address when it runs the same services in the same
    zone (the backup DC's portal for the primary's): nothing else can claim an address."""
    a, b = plan.hosts.get(old), plan.hosts.get(new)
    if a is None or b is None or a.name == b.name or a.zone is None or a.zone != b.zone:
        return False
    services = endpoint_of(sc, a.label).services
    return bool(services) and set(services) <= set(endpoint_of(sc, b.label).services)


def neighbour_table(plan: EmulationPlan) -> dict[str, str]:
    """Every planned address -> the MAC the controller answers ARP/NS with."""
    table = {}
    for h in plan.hosts.values():
        for a in (h.ipv4, h.ipv6):
            if a is not None:
                table[str(a.ip)] = h.mac
        for a in (h.mgmt_ipv4, h.mgmt_ipv6):
            if a is not None:
                table[str(a.ip)] = h.mgmt_mac
    return table


def counter_names(sc: Scenario, plan: EmulationPlan) -> dict[int, tuple[str, str]]:
    """counter id -> (source zone, destination zone); DROP_COUNTER is the default deny."""
    return {i: pair for pair, i in zone_pairs(sc, plan).items()}
