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
from egovlab.sdn.core import COALESCE_S, ControllerCore, Install, Update
from egovlab.topology import faults
from egovlab.topology.model import emulation_plan

from .conftest import SCENARIOS


class FakeSwitch:
    """An OpenFlow 1.3 table set in memory: rules keyed as a switch keys them (table, priority,
    match), groups by id. `watch` is called after every message, to check states in between."""

    def __init__(self, dpid: int, watch=None):
        self.dpid, self.rules, self.groups, self.meters, self.watch = dpid, {}, {}, {}, watch

    def apply(self, message) -> None:
        if isinstance(message, Install):  # delete what the controller installed, then everything anew
            p = message.program
            self.rules = {(r.table, r.priority, r.match): r for r in p.rules}
            self.groups, self.meters = dict(p.groups), dict(p.meters)
            return
        for op in message.ops:
            kind = op[0]
            if kind in ("group_add", "group_modify"):
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
        return compiler.SwitchProgram(self.dpid, name, list(self.rules.values()), dict(self.groups), dict(self.meters))


def _lab(name: str = "small-dc.yml"):
    sc = loader.load(SCENARIOS / name)
    plan = emulation_plan(sc)
    core = ControllerCore(sc, plan)
    switches = {s.dpid: FakeSwitch(s.dpid) for s in plan.switches.values()}
    for dpid, sw in switches.items():
        for message in core.switch_up(dpid):
            sw.apply(message)
    return sc, plan, core, switches


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
    assert core.switch_up(999) == []  # an unknown switch gets nothing


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
        kinds = [op[0] for op in u.ops]
        if "flow_add" in kinds and "flow_delete" in kinds:
            assert kinds.index("flow_add") < kinds.index("flow_delete")


def test_address_claims_only_a_standby_of_the_same_service_may_take_over():
    sc, plan, core, switches = _lab()
    web1, web2, db1 = (plan.hosts[plan.by_label[h]] for h in ("web-1", "web-2", "db-1"))
    assert core.claim(str(web1.ipv4.ip), web1.mac, now=1.0) == (True, None)  # its own address
    assert core.claim(str(web1.ipv4.ip), db1.mac, now=1.0) == (False, None)  # another service's server
    assert core.claim("198.51.100.9", db1.mac, now=1.0) == (True, None)  # not a lab address: nothing to do
    accepted, at = core.claim(str(web1.ipv4.ip), web2.mac, now=2.0)
    assert accepted and at == 2.0 + COALESCE_S and core.takeovers == {web1.name: web2.name}
    assert core.neighbour(str(web1.ipv4.ip)) == web2.mac and core.stats["arp_answers"] == 1
    assert core.neighbour("198.51.100.9") is None
    for u in core.reprogram(set(switches))[0]:
        switches[u.dpid].apply(u)
    assert _programs(plan, switches) == _compiled(sc, plan, takeovers={web1.name: web2.name})
    # the owner announcing its own address again takes it back: the program is the plan's again
    accepted, at = core.claim(str(web1.ipv4.ip), web1.mac, now=3.0)
    assert accepted and at == 3.0 + COALESCE_S and core.takeovers == {} and core.stats["givebacks"] == 1
    assert core.neighbour(str(web1.ipv4.ip)) == web1.mac and core.neighbour(str(web2.ipv4.ip)) == web2.mac
    for u in core.reprogram(set(switches))[0]:
        switches[u.dpid].apply(u)
    assert _programs(plan, switches) == _compiled(sc, plan)


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
    assert {u.dpid for u in updates} == some and all(isinstance(u, Update) for u in updates)
