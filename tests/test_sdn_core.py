"""The controller's pure core with a fake clock and in-memory switches (Faucet's way of testing
valve): what it sends is applied to tables held here, and `verify`'s walker then asks of those
tables whether a connection still gets through."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from egovlab.inventory import loader, policy_edit
from egovlab.inventory.policy import Intent
from egovlab.sdn import compiler, verify
from egovlab.sdn.core import COALESCE_S, ControllerCore, Update, drift
from egovlab.sdn.program import TABLE_FINGERPRINT, fingerprint
from egovlab.topology import faults
from egovlab.topology.model import emulation_plan

from .conftest import SCENARIOS


class FakeSwitch:
    """An OpenFlow 1.3 table set in memory: rules keyed as a switch keys them (table, priority,
    match), groups by id. `watch` is called after every message, to check states in between."""

    def __init__(self, dpid: int, watch=None):
        self.dpid, self.rules, self.groups, self.meters, self.watch = dpid, {}, {}, {}, watch

    def apply(self, message) -> None:
        for op in message.ops:
            kind = op[0]
            if kind in ("meter_add", "meter_modify"):
                self.meters[op[1].meter_id] = op[1]
            elif kind == "meter_delete":
                self.meters.pop(op[1], None)
            elif kind in ("group_add", "group_modify"):
                self.groups[op[1].group_id] = op[1]
            elif kind == "flow_add":
                r = op[1]
                self.rules[(r.table, r.priority, r.match)] = r
            elif kind == "flow_delete":
                r = op[1]
                self.rules.pop((r.table, r.priority, r.match), None)
            elif kind == "group_delete":
                self.groups.pop(op[1], None)
            if self.watch:
                self.watch(self)

    def program(self, name: str) -> compiler.SwitchProgram:
        """What it holds, but for the fingerprint (which is no part of any compiled program)."""
        rules = [r for r in self.rules.values() if r.table != TABLE_FINGERPRINT]
        return compiler.SwitchProgram(self.dpid, name, rules, dict(self.groups), dict(self.meters))

    def fingerprint(self) -> int | None:
        return next((r.cookie for r in self.rules.values() if r.table == TABLE_FINGERPRINT), None)


def _lab(name: str = "small-dc.yml"):
    sc = loader.load(SCENARIOS / name)
    plan = emulation_plan(sc)
    core = ControllerCore(sc, plan)
    switches = {s.dpid: FakeSwitch(s.dpid) for s in plan.switches.values()}
    for dpid, sw in switches.items():
        _connect(core, sw)
    return sc, plan, core, switches


def _connect(core, sw: FakeSwitch) -> Update:
    """A switch connects: the controller asks for its fingerprint and rule count; unless they name
    its program, it reads what the switch holds and sends the difference; the switch confirms
    (the barrier's reply)."""
    if core.holds_program(sw.dpid, sw.fingerprint(), len(sw.program("").rules)):
        update = Update(sw.dpid, ())
    else:
        update = core.switch_up(sw.dpid, sw.program(""))
        sw.apply(update)
    core.synced(sw.dpid)
    return update


def _tables(programs: dict[int, compiler.SwitchProgram]) -> dict[int, compiler.SwitchProgram]:
    """Programs as a switch holds them: a table is a set of rules, not a list."""
    key = lambda r: (r.table, -r.priority, r.match)  # noqa: E731
    return {dpid: dataclasses.replace(p, rules=sorted(p.rules, key=key)) for dpid, p in programs.items()}


def _programs(plan, switches) -> dict[int, compiler.SwitchProgram]:
    names = {s.dpid: s.name for s in plan.switches.values()}
    return _tables({dpid: sw.program(names[dpid]) for dpid, sw in switches.items()})


def _compiled(sc, plan, **kw) -> dict[int, compiler.SwitchProgram]:
    return _tables(compiler.compile_network(sc, plan, **kw))


def _reaches(sc, plan, switches, src: str, dst: str, port: int, down=frozenset(), version: int = 4) -> bool:
    walker = verify.Walker(plan, _programs(plan, switches), down)
    out = verify.connect(walker, plan.by_label[src], plan.by_label[dst], version, verify.PortClass("tcp", port))
    return out.kind == "delivered"


def test_switches_brought_up_hold_exactly_the_compiled_program_and_it_equals_the_intent():
    sc, plan, core, switches = _lab()
    assert core.installed == set(switches) and core.stats["installs"] == len(switches)
    assert verify.verify(Intent(sc), plan, _programs(plan, switches)).equal
    assert core.switch_up(999, compiler.SwitchProgram(999, "")) is None  # an unknown switch gets nothing


def test_a_restarted_controller_sends_a_switch_only_what_differs_from_what_it_holds():
    """The warm start: a switch that kept its program (fail-secure) is known by its fingerprint
    and sent nothing; one left half-updated (its fingerprint removed first) holding a stale rule,
    group and meter, and lacking a rule, is read and gets exactly those fixed."""
    sc, plan, core, switches = _lab()
    restarted = ControllerCore(sc, plan)
    dpid = plan.switches[plan.node("dc/core")].dpid
    assert all(_connect(restarted, sw).ops == () for sw in switches.values())  # by fingerprint
    assert restarted.installed == set(switches) and restarted.stats["warm_starts"] == len(switches)

    sw = switches[dpid]
    wanted = _programs(plan, {dpid: sw})[dpid]
    missing = wanted.rules[0]
    del sw.rules[(missing.table, missing.priority, missing.match)]
    stale = compiler.Rule.make(compiler.TABLE_FORWARD, 7, [("output", 1)], eth_type=0x0800, ipv4_dst="192.0.2.9")
    sw.rules[(stale.table, stale.priority, stale.match)] = stale
    sw.groups[4242] = compiler.Group(4242, ((1, 2),))
    sw.meters[77] = compiler.Meter(77, 1000, 100)
    held = len(sw.program("").rules)
    assert not ControllerCore(sc, plan).holds_program(dpid, sw.fingerprint(), held + 1)  # another count
    sw.rules = {k: r for k, r in sw.rules.items() if r.table != TABLE_FINGERPRINT}  # an update cut short
    again = ControllerCore(sc, plan)
    assert not again.holds_program(dpid, sw.fingerprint(), held)
    update = again.switch_up(dpid, sw.program(""))
    assert update.changed_rules == 2 and update.ops[-1] == ("flow_add", fingerprint(wanted))
    assert update.ops[0] == ("flow_delete", compiler.Rule(TABLE_FINGERPRINT, 0, (), ()))
    assert {op[0] for op in update.ops} == {"flow_add", "flow_delete", "group_delete", "meter_delete", "barrier"}
    sw.apply(update)
    assert _programs(plan, {dpid: sw})[dpid] == wanted


def test_a_cut_is_coalesced_then_reprogrammed_and_a_connection_still_gets_through():
    sc, plan, core, switches = _lab()
    a, b = faults.resolve(plan, "link-down", "town--core-1")
    assert _reaches(sc, plan, switches, "town-h1", "web-1", 443)
    assert core.port_status(a, True, now=10.0) == 10.0 + COALESCE_S  # the first change schedules
    assert core.port_status(b, True, now=10.01) is None  # the other end of the same cut: nothing new
    assert core.stats["failovers"] == 1
    updates, why = core.reprogram(set(switches))
    assert why == f"{a} down" and core.stats["recomputes"] == 1 and core.pending_since is None
    for u in updates:
        switches[u.dpid].apply(u)
    down = core.down_links()
    assert _programs(plan, switches) == _compiled(sc, plan, down=down)
    assert _reaches(sc, plan, switches, "town-h1", "web-1", 443, down)
    assert not _reaches(sc, plan, switches, "town-h1", "db-1", 5432, down)  # the policy still holds
    assert verify.verify(Intent(sc), plan, _programs(plan, switches), down).equal
    # repaired: back to the intact program
    core.port_status(a, False, now=20.0)
    core.port_status(b, False, now=20.0)
    for u in core.reprogram(set(switches))[0]:
        switches[u.dpid].apply(u)
    assert _programs(plan, switches) == _compiled(sc, plan)


def test_the_move_to_a_new_program_is_hitless():
    """Between any two messages, every rule the old and the new program share is in place."""
    sc, plan, core, switches = _lab()
    old = {dpid: dict(sw.rules) for dpid, sw in switches.items()}
    a, _ = faults.resolve(plan, "link-down", "town--core-1")
    core.port_status(a, True, now=0.0)
    updates, _ = core.reprogram(set(switches))
    new = compiler.compile_network(sc, plan, down=core.down_links())
    missing = []

    def watch(sw: FakeSwitch) -> None:
        shared = set(old[sw.dpid]) & {(r.table, r.priority, r.match) for r in new[sw.dpid].rules}
        missing.extend(shared - set(sw.rules))

    changed = 0
    for u in updates:
        switches[u.dpid].watch = watch
        switches[u.dpid].apply(u)
        changed += u.changed_rules
    assert changed > 0 and not missing
    for u in updates:  # groups before rules that use them; deletions after additions
        kinds = [op[0] for op in u.ops if not (op[0].startswith("flow") and op[1].table == TABLE_FINGERPRINT)]
        if "flow_add" in kinds and "flow_delete" in kinds:
            assert kinds.index("flow_add") < kinds.index("flow_delete")
        # the fingerprint goes first and comes back last, each side of a barrier
        assert u.ops[:2] == (("flow_delete", compiler.Rule(TABLE_FINGERPRINT, 0, (), ())), ("barrier",))
        assert u.ops[-2:] == (("barrier",), ("flow_add", fingerprint(new[u.dpid])))


def test_address_claims_only_a_standby_of_the_same_service_may_take_over():
    sc, plan, core, switches = _lab()
    web1, web2, db1 = (plan.hosts[plan.by_label[h]] for h in ("web-1", "web-2", "db-1"))
    v4, v6 = str(web1.ipv4.ip), str(web1.ipv6.ip)
    assert core.claim(v4, web1.mac, now=1.0) == (True, None)  # its own address
    assert core.claim(v4, db1.mac, now=1.0) == (False, None)  # another service's server
    assert core.claim(v6, db1.mac, now=1.0) == (False, None)  # ... in either IP version
    assert core.claim("198.51.100.9", db1.mac, now=1.0) == (True, None)  # not a lab address: nothing to do
    accepted, at = core.claim(v4, web2.mac, now=2.0)
    assert accepted and at == 2.0 + COALESCE_S and core.takeovers == {web1.name: web2.name}
    # the same standby announcing the IPv6 address (its neighbour advertisement) is the same takeover
    assert core.claim(v6, web2.mac, now=2.05) == (True, None) and core.stats["takeovers"] == 1
    # hosts keep the owner's MAC: the fabric re-addresses the frames while the takeover lasts
    assert core.neighbour(v4) == web1.mac and core.neighbour(v6, "nd") == web1.mac
    assert core.stats["arp_answers"] == 1 and core.stats["nd_answers"] == 1
    assert core.neighbour("198.51.100.9") is None
    for u in core.reprogram(set(switches))[0]:
        switches[u.dpid].apply(u)
    assert _programs(plan, switches) == _compiled(sc, plan, takeovers={web1.name: web2.name})
    # the owner announcing its own address again (either version) takes it back: the plan's program again
    accepted, at = core.claim(v6, web1.mac, now=3.0)
    assert accepted and at == 3.0 + COALESCE_S and core.takeovers == {} and core.stats["givebacks"] == 1
    assert core.claim(v4, web1.mac, now=3.01) == (True, None) and core.stats["givebacks"] == 1
    assert core.neighbour(v4) == web1.mac and core.neighbour(str(web2.ipv4.ip)) == web2.mac
    for u in core.reprogram(set(switches))[0]:
        switches[u.dpid].apply(u)
    assert _programs(plan, switches) == _compiled(sc, plan)
    # and a second takeover after the giveback is one again
    assert core.claim(v6, web2.mac, now=4.0)[1] == 4.0 + COALESCE_S and core.stats["takeovers"] == 2


def test_a_policy_reload_moves_the_switches_and_a_changed_network_is_refused():
    sc, plan, core, switches = _lab()
    raw = yaml.safe_load((SCENARIOS / "small-dc.yml").read_text())
    new_raw, new_sc = policy_edit.apply(raw, "- {from: kind:commune, to: service:csdl}", "merge", "candidate", {})
    assert not _reaches(sc, plan, switches, "town-xa-01-h1", "db-1", 5432)
    updates = core.reload(new_sc, emulation_plan(new_sc), set(switches))
    assert core.stats["reloads"] == 1 and sum(u.changed_rules for u in updates) > 0
    for u in updates:
        switches[u.dpid].apply(u)
    assert _reaches(new_sc, plan, switches, "town-xa-01-h1", "db-1", 5432)
    grown = dataclasses.replace(plan, links=plan.links[:-1])
    with pytest.raises(ValueError, match="changes the network itself"):
        core.reload(new_sc, grown, set(switches))


def test_updates_go_only_to_connected_switches():
    sc, plan, core, switches = _lab()
    a, _ = faults.resolve(plan, "link-down", "town--core-1")
    core.port_status(a, True, now=0.0)
    some = set(list(switches)[:2])
    updates, _ = core.reprogram(some)
    assert {u.dpid for u in updates} <= some and all(isinstance(u, Update) for u in updates)
    assert updates and all(u.ops for u in updates)  # a switch whose program stays is sent nothing


def test_drift_counts_what_a_switch_holds_beyond_or_short_of_its_program():
    sc, plan, core, switches = _lab()
    dpid, program = next((d, p) for d, p in sorted(core.programs.items()) if p.groups)
    held = dataclasses.replace(program)
    assert drift(held, program) == {"missing_rules": 0, "extra_rules": 0, "groups": 0, "meters": 0}
    rules = list(program.rules)
    changed = dataclasses.replace(rules[1], priority=rules[1].priority + 1)
    gid = next(iter(program.groups))
    held = dataclasses.replace(program, rules=[rules[0], changed, *rules[2:]][1:],
                               groups={**program.groups, gid: dataclasses.replace(program.groups[gid], buckets=())})
    assert drift(held, program) == {"missing_rules": 2, "extra_rules": 1, "groups": 1, "meters": 0}
