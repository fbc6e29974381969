"""The pure compiler: Scenario + emulated topology -> OpenFlow 1.3 rules per switch, as data.

No switch, no controller: unit tests call it directly, the os-ken adapter only translates, and
`verify` walks what it returns. One stage per concern, each its own module:

- table 0, classify (`classify.py`): ARP/ND to the controller, IP from hosts through conntrack,
  IP from the fabric straight to forwarding;
- the TAP (`tap.py`): the primary DC's core copies what enters it to the SOC's sensor;
- table 1, policy (`policy_table.py`): stateful, default deny, at the source's edge, from the
  one policy model (`inventory.policy`); DDoS meters on Internet sources (`ddos.py`);
- table 2, forwarding (`forwarding.py`, paths from `paths.py`, routes from `aggregate.py`): by
  destination prefix through fast-failover groups with a loop-free alternate, to the host by MAC
  on its own switch; address takeovers.
"""
from __future__ import annotations

from egovlab.inventory.scenario import Scenario
from egovlab.topology.model import EmulationPlan

from .classify import classify
from .ddos import DDOS_BURST_KB, DDOS_RATE_KBPS
from .forwarding import destinations, forwarding, takeover_allowed
from .paths import BACKUP_COST, attachments, next_hops, simple_graph, topology_graph
from .policy_table import PolicyIndex, policy_table, port_match, zone_of, zone_pairs
from .program import (COOKIE, COOKIE_MASK, COUNTED, CT_ZONE, DROP_COUNTER, TABLE_CLASSIFY, TABLE_FORWARD, TABLE_POLICY,
                      Group, Meter, Rule, SwitchProgram)
from .tap import TAP_GROUP, tap, tap_sensor

__all__ = ["BACKUP_COST", "COOKIE", "COOKIE_MASK", "COUNTED", "Compiler", "CT_ZONE", "DDOS_BURST_KB", "DDOS_RATE_KBPS",
           "DROP_COUNTER", "TABLE_CLASSIFY", "TABLE_FORWARD", "TABLE_POLICY", "TAP_GROUP", "Group", "Meter",
           "PolicyIndex", "Rule", "SwitchProgram", "attachments", "compile_network", "counter_names", "policy_table",
           "neighbour_table", "next_hops", "port_match", "simple_graph", "takeover_allowed", "tap_sensor", "topology_graph",
           "zone_of", "zone_pairs"]


def _ports_by_switch(plan: EmulationPlan, kind: str) -> dict[str, dict[int, str]]:
    """switch -> port -> host, for the hosts' data (`access`) or management (`mgmt`) interfaces."""
    out: dict[str, dict[int, str]] = {}
    for link in plan.links:
        if link.kind == kind:
            host, sw = (link.a, link.b) if link.a in plan.hosts else (link.b, link.a)
            out.setdefault(sw, {})[link.port(sw)] = host
    return out


class Compiler:
    """One scenario on one network: what does not depend on the links' state (classification, the
    TAP, the policy tables and meters) compiled once; the forwarding compiled for each state asked
    for, so that the controller's re-optimisation after a cut recomputes paths and routes only."""

    def __init__(self, sc: Scenario, plan: EmulationPlan, ddos_rate_kbps: int = DDOS_RATE_KBPS):
        self.plan = plan
        self.attached = attachments(plan)
        self.dests = destinations(plan, self.attached)
        index = PolicyIndex(sc, plan)
        marks = index.marks()
        sensor = tap_sensor(sc, plan)
        host_ports, self.mgmt_ports = _ports_by_switch(plan, "access"), _ports_by_switch(plan, "mgmt")
        self.static: dict[str, SwitchProgram] = {}
        for name, sw in plan.switches.items():
            prog = self.static[name] = SwitchProgram(sw.dpid, sw.name)
            mine = host_ports.get(name, {})
            prog.rules += classify(plan, mine, self.mgmt_ports.get(name, {}))
            tap_groups, tap_rules = tap(plan, sw, sensor)
            prog.groups.update(tap_groups)
            prog.rules += tap_rules
            if mine:
                rules, prog.meters = policy_table(sc, index, mine, marks, ddos_rate_kbps)
                prog.rules += rules

    def programs(self, down: set[str] = frozenset(), takeovers: dict[str, str] | None = None) -> dict[int, SwitchProgram]:
        """Every switch's rules, groups and meters with the interfaces in `down` down and the
        `takeovers` (host -> the standby that took over its address) in force."""
        hops = next_hops(self.plan, topology_graph(self.plan, down))
        programs = {}
        for name, sw in self.plan.switches.items():
            static = self.static[name]
            groups, rules = forwarding(self.plan, sw, self.attached, hops, self.mgmt_ports.get(name, {}),
                                       takeovers or {}, self.dests)
            programs[sw.dpid] = SwitchProgram(sw.dpid, sw.name, static.rules + rules, {**static.groups, **groups},
                                              dict(static.meters))
        return programs


def compile_network(sc: Scenario, plan: EmulationPlan, down: set[str] = frozenset(),
                    ddos_rate_kbps: int = DDOS_RATE_KBPS,
                    takeovers: dict[str, str] | None = None) -> dict[int, SwitchProgram]:
    """Every switch's rules, groups and meters; `down` names switch interfaces known to be down;
    `takeovers` maps a host to the standby that took over its address (see `takeover_allowed`):
    frames still addressed to the old host's address are sent to the standby, its MAC set."""
    return Compiler(sc, plan, ddos_rate_kbps).programs(down, takeovers)


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
