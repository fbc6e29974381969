"""The controller's decisions, pure (Faucet's split of `valve` from its Ryu glue): which ports
count as down, when a burst of changes is recomputed, the hitless move from one program to the
next, which address claims are takeovers, what a policy reload changes. Every method takes the
event (and `now`, so tests pass a fake clock) and returns what to send as plain data; the os-ken
adapter (`app.py`) only decodes events, calls these methods and encodes what they return.

Messages (`Op`): ("meter_add"|"meter_modify", Meter), ("group_add"|"group_modify", Group),
("flow_add", Rule), ("flow_delete", Rule), ("group_delete", id), ("meter_delete", id),
("barrier",). A switch that connects and holds its program's fingerprint (`program.fingerprint`)
with the right rule count is left alone; otherwise it is read (its rules with this controller's
cookie, its groups and meters) and sent only what differs from its program. Either way a
restarted controller leaves the tables a fail-secure switch kept forwarding with untouched.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from egovlab.inventory.scenario import Scenario
from egovlab.topology.model import EmulationPlan

from . import compiler
from .compiler import SwitchProgram
from .program import TABLE_FINGERPRINT, Rule, fingerprint

COALESCE_S = 0.2  # port changes arriving within this window are recomputed together

Op = tuple


@dataclass(frozen=True)
class Update:
    dpid: int
    ops: tuple[Op, ...]

    @property
    def changed_rules(self) -> int:
        return sum(1 for op in self.ops if op[0] in ("flow_add", "flow_delete") and op[1].table != TABLE_FINGERPRINT)


def diff(old: SwitchProgram, new: SwitchProgram) -> tuple[Op, ...]:
    """Move a switch from one program to the next without a gap: meters and groups first, then
    rules added or changed (an add of an existing match replaces it in place), what is gone last."""
    ops: list[Op] = []
    for mid, meter in sorted(new.meters.items()):
        if old.meters.get(mid) != meter:
            ops.append(("meter_modify" if mid in old.meters else "meter_add", meter))
    for gid, group in sorted(new.groups.items()):
        if old.groups.get(gid) != group:
            ops.append(("group_modify" if gid in old.groups else "group_add", group))
    ops.append(("barrier",))
    old_rules, new_rules = set(old.rules), set(new.rules)
    ops += [("flow_add", r) for r in sorted(new_rules - old_rules, key=_order)]
    kept = {(r.table, r.priority, r.match) for r in new_rules}
    ops += [("flow_delete", r) for r in sorted(old_rules - new_rules, key=_order)
            if (r.table, r.priority, r.match) not in kept]
    ops.append(("barrier",))
    ops += [("group_delete", gid) for gid in sorted(set(old.groups) - set(new.groups))]
    ops += [("meter_delete", mid) for mid in sorted(set(old.meters) - set(new.meters))]
    return tuple(ops)


def drift(held: SwitchProgram, program: SwitchProgram) -> dict[str, int]:
    """How far what a switch holds (read back from it) is from its program: rules missing or
    changed, rules it should not hold, groups and meters that differ. All zero: exactly the program."""
    old, new = set(held.rules), set(program.rules)
    differ = lambda a, b: sum(1 for k in set(a) | set(b) if a.get(k) != b.get(k))  # noqa: E731
    return {"missing_rules": len(new - old), "extra_rules": len(old - new),
            "groups": differ(held.groups, program.groups), "meters": differ(held.meters, program.meters)}


def stamped(ops: tuple[Op, ...], program: SwitchProgram) -> tuple[Op, ...]:
    """An update that leaves the switch holding `program`: the old fingerprint removed before
    anything changes, the new one written once the switch has confirmed the rest (barriers), so a
    controller that dies half-way leaves a switch with no fingerprint, read in full next time."""
    unstamp = Rule(TABLE_FINGERPRINT, 0, (), ())
    return (("flow_delete", unstamp), ("barrier",), *ops, ("barrier",), ("flow_add", fingerprint(program)))


def _order(rule) -> tuple:
    return rule.table, -rule.priority, repr(rule.match)


@dataclass
class ControllerCore:
    scenario: Scenario
    plan: EmulationPlan
    down: set[str] = field(default_factory=set)  # switch interfaces reported down
    takeovers: dict[str, str] = field(default_factory=dict)  # host -> the standby that took over its address
    stats: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("installs", "warm_starts", "resync_rule_changes", "recomputes", "reloads", "failovers", "takeovers", "givebacks", "arp_answers",
         "nd_answers"), 0))
    installed: set[int] = field(default_factory=set)
    pending_since: float | None = None  # a recomputation is scheduled
    reasons: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.compiler = compiler.Compiler(self.scenario, self.plan)  # a cut recompiles forwarding only
        self.programs = self.compiler.programs()
        self.neighbours = compiler.neighbour_table(self.plan)
        self.counter_names = compiler.counter_names(self.scenario, self.plan)
        self.link_ends = {link.intf(node) for link in self.plan.links for node in (link.a, link.b)}
        self.by_mac = {h.mac: h.name for h in self.plan.hosts.values()}
        self.owners = {str(a.ip): h.name for h in self.plan.hosts.values() for a in (h.ipv4, h.ipv6) if a is not None}

    # -- switches -----------------------------------------------------------------------------

    def holds_program(self, dpid: int, fingerprint_cookie: int | None, rules: int) -> bool:
        """A connecting switch reports the fingerprint rule's cookie (None: it has none) and how
        many rules of this controller it holds: True when that is its program, rule for rule
        (then nothing is sent; it counts as programmed once it confirms, `synced`)."""
        program = self.programs.get(dpid)
        if program is None or fingerprint_cookie != fingerprint(program).cookie or rules != len(program.rules):
            return False
        self.stats["installs"] += 1
        self.stats["warm_starts"] += 1
        return True

    def switch_up(self, dpid: int, held: SwitchProgram) -> Update | None:
        """A connected switch holding `held` (read from it): what moves it to its program (None:
        not a switch of this lab). It counts as programmed once it confirms (`synced`)."""
        program = self.programs.get(dpid)
        if program is None:
            return None
        update = Update(dpid, stamped(diff(held, program), program))
        self.stats["installs"] += 1
        self.stats["resync_rule_changes"] += update.changed_rules
        return update

    def synced(self, dpid: int) -> None:
        """The switch answered the barrier after its update: it holds its program."""
        self.installed.add(dpid)

    def down_links(self) -> set[str]:
        """Both ends of a link count as down when either end is."""
        out = set(self.down)
        for link in self.plan.links:
            ends = {link.intf(link.a), link.intf(link.b)}
            if ends & self.down:
                out |= ends
        return out

    def port_status(self, name: str, is_down: bool, now: float) -> float | None:
        """A port went down or up; the time to recompute at, if a recomputation is newly due. A
        port no link of the plan ends on (a bridge's own internal port) changes nothing."""
        if name not in self.link_ends or is_down == (name in self.down):
            return None
        before = self.down_links()
        (self.down.add if is_down else self.down.discard)(name)
        after = self.down_links()
        if after == before:  # the other end of an already failed link, or no change
            return None
        self.stats["failovers"] += len(after - before) // 2  # links newly down (two ends each)
        return self._schedule(f"{name} {'down' if is_down else 'up'}", now)

    def _schedule(self, why: str, now: float) -> float | None:
        """One recomputation for a burst of changes (a DC going dark downs some 80 ports at once),
        a moment after the first: the switches' fast-failover groups carry traffic meanwhile."""
        self.reasons.append(why)
        if self.pending_since is not None:
            return None
        self.pending_since = now
        return now + COALESCE_S

    def reprogram(self, connected: set[int]) -> tuple[list[Update], str]:
        """Recompile for the network as it is now: the hitless updates of the connected switches,
        and why (the changes that were coalesced)."""
        self.pending_since = None
        reasons, self.reasons = self.reasons, []
        why = ", ".join(reasons[:3]) + (f" and {len(reasons) - 3} more" if len(reasons) > 3 else "")
        self.stats["recomputes"] += 1
        return self._recompile(connected), why

    def _recompile(self, connected: set[int]) -> list[Update]:
        old = self.programs
        self.programs = self.compiler.programs(self.down_links(), self.takeovers)
        return [Update(dpid, stamped(diff(old[dpid], self.programs[dpid]), self.programs[dpid]))
                for dpid in sorted(connected) if dpid in old and old[dpid] != self.programs[dpid]]

    # -- addresses ------------------------------------------------------------------------------

    def neighbour(self, address: str, kind: str = "arp") -> str | None:
        """The MAC to answer an ARP request or neighbour solicitation with (None: stay silent)."""
        mac = self.neighbours.get(address)
        if mac is not None:
            self.stats[f"{kind}_answers"] += 1
        return mac

    def claim(self, address: str, mac: str, now: float) -> tuple[bool, float | None]:
        """A gratuitous announcement of `address` by `mac` (a gratuitous ARP, or an unsolicited
        IPv6 neighbour advertisement): (accepted, time to recompute at). A takeover only when the
        address is another host's and the scenario lets this host stand in for it (a standby
        DC's server); the same standby announcing the owner's other address (the second IP
        version) is the same takeover; the owner announcing its own address again takes it back
        (the fail-back); anything else is ignored.

        The neighbour table never changes: hosts keep the owner's MAC for its addresses, and
        while a takeover lasts the fabric re-addresses those frames to the standby (a host route
        with set_eth_dst). Answering with the standby's MAC instead made hosts keep sending to it
        after the giveback: citizens timed out for more than 24 s after a failback (measured)."""
        owner = self.owners.get(address)
        claimer = self.by_mac.get(mac)
        if owner is None or claimer is None:
            return True, None  # not a lab address, or not a lab host: nothing to do
        if claimer == owner:
            if owner not in self.takeovers:
                return True, None  # its own address, announced again
            del self.takeovers[owner]
            self.stats["givebacks"] += 1
            return True, self._schedule(f"{address} given back to {owner}", now)
        if self.takeovers.get(owner) == claimer:
            return True, None  # already this standby's: the other address of the same takeover
        if not compiler.takeover_allowed(self.scenario, self.plan, owner, claimer):
            return False, None
        self.takeovers[owner] = claimer
        self.stats["takeovers"] += 1
        return True, self._schedule(f"{address} taken over by {claimer}", now)

    # -- policy ---------------------------------------------------------------------------------

    def reload(self, scenario: Scenario, plan: EmulationPlan, connected: set[int]) -> list[Update]:
        """A changed policy for the same network: the hitless updates to it. A scenario that
        changes the network itself is refused (ValueError): that needs a new lab."""
        if plan.switches != self.plan.switches or plan.hosts != self.plan.hosts or plan.links != self.plan.links:
            raise ValueError(f"{scenario.source}: changes the network itself, not only its policy: restart the lab")
        self.scenario = scenario
        self.compiler = compiler.Compiler(scenario, self.plan)
        self.counter_names = compiler.counter_names(scenario, self.plan)
        self.stats["reloads"] += 1
        return self._recompile(connected)

    def status(self) -> dict:
        return {"switches": len(self.programs), "installed": sorted(self.installed),
                "rules": sum(len(p.rules) for p in self.programs.values()),
                "groups": sum(len(p.groups) for p in self.programs.values()),
                "down": sorted(self.down), **self.stats}
