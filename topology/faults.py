"""Faults on a running lab: links, switches, sites, whole data centres; each one timestamped.

A fault sets the interfaces it concerns administratively down (both ends of a link, every port
of a switch), so the switches see carrier loss as from a real cut. Works from any process:
the lab's node names and interfaces come from the scenario, which the lab's state file names.
Every fault is appended to `faults.jsonl` in the lab's state directory.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from pyroute2.netlink.exceptions import NetlinkError

from egovlab.inventory.errors import EgovlabError

from . import netns, netstate, ovs_shards
from .model import EmulationPlan
from .state import state_dir

ACTIONS = ("link-down", "link-up", "switch-down", "switch-up", "isolate", "restore", "dc-down", "dc-up")
REPAIR = {"link-down": "link-up", "switch-down": "switch-up", "isolate": "restore", "dc-down": "dc-up"}
UP_ACTIONS = tuple(REPAIR.values())  # the rest take interfaces down


@dataclass
class FaultRecord:
    time: float  # UNIX time, seconds
    action: str
    target: str
    interfaces: list[str]

    @property
    def iso(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time)) + f".{int(self.time * 1000) % 1000:03d}Z"


def _switch_interfaces(plan: EmulationPlan, switches: set[str]) -> list[str]:
    """The root-namespace ends of every link of these switches (host ends live in namespaces)."""
    out = []
    for link in plan.links:
        for node in (link.a, link.b):
            if node in switches:
                out.append(link.intf(node))
        # a link between two switches: both ends are in the root namespace
    return sorted(set(out))


def with_peers(plan: EmulationPlan, interfaces) -> set[str]:
    """The interfaces down once these are: a link with one end down is down at both, as the
    peer of a veth loses its carrier (what the switches, and so the controller, then see)."""
    down = set(interfaces)
    return down | {l.intf(n) for l in plan.links if l.intf(l.a) in down or l.intf(l.b) in down for n in (l.a, l.b)}


def resolve(plan: EmulationPlan, action: str, target: str) -> list[str]:
    """The interfaces a fault touches, or a clear error naming what exists."""
    sites = {s.site for s in plan.switches.values()}
    if action in ("link-down", "link-up"):
        links = plan.links_of_scenario_link(target)
        if not links:
            raise EgovlabError(f"unknown link '{target}' (see `egovlab plan FILE --view links`)")
        return sorted({l.intf(n) for l in links for n in (l.a, l.b)})
    if action in ("switch-down", "switch-up"):
        name = plan.by_label.get(target) or (target if target in plan.switches else None)
        if name is None and target in plan.site_switch:
            name = plan.site_switch[target]
        if name is None or name not in plan.switches:
            raise EgovlabError(f"unknown switch '{target}': give a node name (egs12), a label (h-cao-lanh/agg) "
                               f"or a site name")
        return _switch_interfaces(plan, {name})
    if action in ("isolate", "restore"):
        if target not in sites:
            raise EgovlabError(f"unknown site '{target}'")
        own = {n for n, s in plan.switches.items() if s.site == target}
        return sorted({l.intf(n) for l in plan.links if l.scenario_link and (l.a in own or l.b in own)
                       for n in (l.a, l.b)})
    if action in ("dc-down", "dc-up"):
        dcs = {s.site for s in plan.switches.values() if s.role == "dc-core"}
        if target not in dcs:
            raise EgovlabError(f"'{target}' is not a data centre (data centres: {', '.join(sorted(dcs))})")
        own = {n for n, s in plan.switches.items() if s.site == target}
        return _switch_interfaces(plan, own)
    raise EgovlabError(f"unknown fault '{action}' (expected one of: {', '.join(ACTIONS)})")


def set_state(interfaces: list[str], up: bool, prefix: str | None = None) -> float:
    """Set these interfaces up or down: in the root namespace, or in one of the lab's Open vSwitch
    shard namespaces. Every interface is found first and then set, namespace by namespace, so
    the ends of a cut link go down within a few milliseconds of each other. Returns the UNIX
    time of the first change: when the fault began, not when looking the ends up did."""
    try:
        located = netns.locate(interfaces, [None, *(ovs_shards.running(prefix) if prefix else [])])
    except KeyError as exc:
        raise EgovlabError(f"interface {exc.args[0]} does not exist: is the lab up?") from None
    began = time.time()
    for space, ends in located.items():
        with netns.iproute(space) as ipr:
            for name, idx in ends:
                try:
                    ipr.link("set", index=idx, state="up" if up else "down")
                except NetlinkError as exc:
                    raise EgovlabError(f"cannot set {name} {'up' if up else 'down'}: {exc}") from None
    return began


def inject(plan: EmulationPlan, action: str, target: str) -> FaultRecord:
    interfaces = resolve(plan, action, target)
    up = action in UP_ACTIONS
    log = state_dir(plan.prefix) / "faults.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    # Set and recorded as one: an interrupt between would leave a link cut at one end only, or
    # a fault the log (and so `clear`) does not know.
    with netns.signals_deferred():
        began = set_state(interfaces, up, plan.prefix)
        record = FaultRecord(began, action, target, interfaces)
        with log.open("a") as f:
            f.write(json.dumps(asdict(record)) + "\n")
    return record


def history(prefix: str) -> list[FaultRecord]:
    log = state_dir(prefix) / "faults.jsonl"
    if not log.exists():
        return []
    return [FaultRecord(**json.loads(line)) for line in log.read_text().splitlines() if line.strip()]


def active(prefix: str) -> list[FaultRecord]:
    """Faults still in force: interfaces whose last record set them down."""
    down: dict[str, FaultRecord] = {}
    for rec in history(prefix):
        for intf in rec.interfaces:
            if rec.action.endswith("-down") or rec.action == "isolate":
                down[intf] = rec
            else:
                down.pop(intf, None)
    seen, out = set(), []
    for rec in down.values():
        if id(rec) not in seen:
            seen.add(id(rec))
            out.append(rec)
    return out


def clear(plan: EmulationPlan) -> list[str]:
    """Bring every interface a fault took down back up; returns those interfaces."""
    interfaces = sorted({i for rec in active(plan.prefix) for i in rec.interfaces})
    if interfaces:
        set_state(interfaces, True, plan.prefix)
        log = state_dir(plan.prefix) / "faults.jsonl"
        with log.open("a") as f:
            f.write(json.dumps(asdict(FaultRecord(time.time(), "clear", "*", interfaces))) + "\n")
    return interfaces


def links_down(plan: EmulationPlan) -> dict[str, list[str]]:
    """Scenario links with an end down on the running lab -> those interfaces."""
    ends = {(l.scenario_link, l.intf(n)) for l in plan.links if l.scenario_link for n in (l.a, l.b)
            if n in plan.switches}
    down = netstate.interfaces_down({intf for _, intf in ends}, plan.prefix)
    out: dict[str, list[str]] = {}
    for link, intf in sorted(ends):
        if intf in down:
            out.setdefault(link, []).append(intf)
    return out


def cut_interfaces(plan: EmulationPlan) -> set[str]:
    """Both ends of every cut link: what the controller leaves out of its paths."""
    return {intf for intfs in links_down(plan).values() for intf in intfs}
