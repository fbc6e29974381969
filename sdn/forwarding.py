"""Table 2 of every switch (pure): forwarding by destination prefix along shortest paths, so a
switch's table grows with the sites, not the hosts. Each subnet leaves towards the switch its
hosts hang off, through a fast-failover group whose second bucket is a loop-free alternate next
hop (a cut link is repaired in the switch itself); the routes are aggregated (`aggregate.py`: ORTC), so
a commune's switch holds one default route per IP version. A host is delivered to by its MAC on
its own switch; the address of a host a standby took over is a host route to the standby (its
MAC set on the way); the out-of-band management network is forwarded by MAC alone."""
from __future__ import annotations

import netaddr

from egovlab.inventory.policy import endpoint_of
from egovlab.inventory.scenario import Scenario
from egovlab.topology.model import EmulationPlan, SwitchNode

from .aggregate import WIDTH, PrefixTrie
from .program import ETH, TABLE_FORWARD, TABLE_NO_ROUTE, Group, Rule, masked

ROUTE = 100  # + the prefix length: the longest prefix wins
LOCAL = 300  # a host on this switch, by its MAC (above every route: its own subnet is a drop route)
TAKEOVER = 400  # a taken-over address, wherever it is routed
DST = {4: "ipv4_dst", 6: "ipv6_dst"}
DROP: tuple = ()  # a switch's own subnets: its hosts are delivered by MAC, nothing else of them leaves
UNREACHABLE = (("goto", TABLE_NO_ROUTE),)  # no path (a partitioned network): a table miss, as without a route


def destinations(plan: EmulationPlan, attached: dict[str, tuple[str, int]]) -> dict[int, tuple[PrefixTrie, list[str]]]:
    """IP version -> the trie of destination prefixes and, for each, the switch it hangs off: a
    subnet whose hosts are all on one switch is one prefix; one spread over several (none in the
    plans egovlab makes) is one host route per host."""
    out = {}
    for v in (4, 6):
        on: dict[netaddr.IPNetwork, dict[netaddr.IPNetwork, str]] = {}
        for host, (edge, _) in attached.items():
            addr = plan.hosts[host].ipv4 if v == 4 else plan.hosts[host].ipv6
            if addr is not None:
                subnet = netaddr.IPNetwork(f"{addr.ip}/{addr.prefixlen}").cidr
                on.setdefault(subnet, {})[netaddr.IPNetwork(f"{addr.ip}/{WIDTH[v]}")] = edge
        edge_of: dict[netaddr.IPNetwork, str] = {}
        for subnet, hosts in on.items():
            edges = set(hosts.values())
            edge_of.update({subnet: edges.pop()} if len(edges) == 1 else hosts)
        trie = PrefixTrie(list(edge_of), v)
        out[v] = (trie, [edge_of[p] for p in trie.prefixes])
    return out


def forwarding(plan: EmulationPlan, sw: SwitchNode, attached: dict[str, tuple[str, int]],
               hops: dict[str, dict[str, tuple[int, int | None]]], mgmt_ports: dict[int, str],
               takeovers: dict[str, str],
               dests: dict[int, tuple[PrefixTrie, list[str]]]) -> tuple[dict[int, Group], list[Rule]]:
    groups: dict[int, Group] = {}
    rules = [Rule.make(TABLE_FORWARD, LOCAL, [("output", port)], eth_dst=plan.hosts[host].mgmt_mac)
             for port, host in sorted(mgmt_ports.items())]
    if sw.role == "oob":
        return groups, rules

    def towards(edge: str) -> tuple:
        """The actions that send a packet on towards `edge`: DROP for this switch's own subnets,
        UNREACHABLE where `edge` cannot be reached. (Both explicit: a covering route must not
        carry those addresses elsewhere.)"""
        if edge == sw.name:
            return DROP
        hop = hops.get(sw.name, {}).get(edge)
        if hop is None:
            return UNREACHABLE
        primary, alt = hop
        if alt is None:
            return (("output", primary),)
        gid = primary << 16 | alt
        groups[gid] = Group(gid, ((primary, primary), (alt, alt)))
        return (("group", gid),)

    by_edge = {edge: towards(edge) for edge in {e for _, edges in dests.values() for e in edges}}
    for v, (trie, edges) in dests.items():
        for net, actions in trie.routes([by_edge[edge] for edge in edges]):
            match = {DST[v]: masked(net)} if net.prefixlen else {}
            rules.append(Rule.make(TABLE_FORWARD, ROUTE + net.prefixlen, list(actions), eth_type=ETH[v], **match))
    local = {host: port for host, (edge, port) in attached.items() if edge == sw.name}
    rules += [Rule.make(TABLE_FORWARD, LOCAL, [("output", port)], eth_dst=plan.hosts[host].mac)
              for host, port in sorted(local.items())]
    for old, new in sorted(takeovers.items()):
        if new not in attached:
            continue
        edge, port = attached[new]
        route = (("output", port),) if edge == sw.name else by_edge[edge] if edge in by_edge else towards(edge)
        if route == UNREACHABLE:
            continue  # the standby cannot be reached from here
        actions = [("set_eth_dst", plan.hosts[new].mac), *route]
        for v, addr in ((4, plan.hosts[old].ipv4), (6, plan.hosts[old].ipv6)):
            if addr is not None:
                rules.append(Rule.make(TABLE_FORWARD, TAKEOVER, actions, eth_type=ETH[v], **{DST[v]: str(addr.ip)}))
    return groups, rules


def takeover_allowed(sc: Scenario, plan: EmulationPlan, old: str, new: str) -> bool:
    """A standby may take over a host's address when it runs the same services in the same
    zone (the backup DC's portal for the primary's): nothing else can claim an address."""
    a, b = plan.hosts.get(old), plan.hosts.get(new)
    if a is None or b is None or a.name == b.name or a.zone is None or a.zone != b.zone:
        return False
    services = endpoint_of(sc, a.label).services
    return bool(services) and set(services) <= set(endpoint_of(sc, b.label).services)
