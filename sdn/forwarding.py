"""Table 2 of every switch (pure): forwarding by destination MAC along shortest paths, through
fast-failover groups whose second bucket is a loop-free alternate next hop (a cut link is
repaired in the switch itself); frames for a host whose address a standby took over are
re-addressed to the standby; the out-of-band management network is forwarded by MAC alone."""
from __future__ import annotations

from egovlab.inventory.policy import endpoint_of
from egovlab.inventory.scenario import Scenario
from egovlab.topology.model import EmulationPlan, SwitchNode

from .program import TABLE_FORWARD, Group, Rule


def forwarding(plan: EmulationPlan, sw: SwitchNode, attached: dict[str, tuple[str, int]],
               hops: dict[str, dict[str, tuple[int, int | None]]], mgmt_ports: dict[int, str],
               takeovers: dict[str, str]) -> tuple[dict[int, Group], list[Rule]]:
    groups: dict[int, Group] = {}
    rules = [Rule.make(TABLE_FORWARD, 100, [("output", port)], eth_dst=plan.hosts[host].mgmt_mac)
             for port, host in sorted(mgmt_ports.items())]
    if sw.role == "oob":
        return groups, rules
    towards: dict[str, list] = {}
    for host, (edge, port) in attached.items():
        if edge == sw.name:
            towards[host] = [("output", port)]
            continue
        hop = hops.get(sw.name, {}).get(edge)
        if hop is None:
            continue  # unreachable from here (a partitioned network)
        primary, alt = hop
        if alt is None:
            towards[host] = [("output", primary)]
        else:
            gid = primary << 16 | alt
            groups[gid] = Group(gid, ((primary, primary), (alt, alt)))
            towards[host] = [("group", gid)]
    rules += [Rule.make(TABLE_FORWARD, 100, actions, eth_dst=plan.hosts[host].mac) for host, actions in towards.items()]
    for old, new in takeovers.items():
        if new in towards:
            rules.append(Rule.make(TABLE_FORWARD, 200, [("set_eth_dst", plan.hosts[new].mac), *towards[new]],
                                   eth_dst=plan.hosts[old].mac))
    return groups, rules


def takeover_allowed(sc: Scenario, plan: EmulationPlan, old: str, new: str) -> bool:
    """A standby may take over a host's address when it runs the same services in the same
    zone (the backup DC's portal for the primary's): nothing else can claim an address."""
    a, b = plan.hosts.get(old), plan.hosts.get(new)
    if a is None or b is None or a.name == b.name or a.zone is None or a.zone != b.zone:
        return False
    services = endpoint_of(sc, a.label).services
    return bool(services) and set(services) <= set(endpoint_of(sc, b.label).services)
