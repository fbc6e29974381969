"""Policy changes of a running lab: compare, commit (its controller applies them without a
restart), roll back.

Each committed version is a full scenario file in the lab's state directory
(`scenario-vN.yml`, with the allocations of the original beside it so that no address moves);
the lab's state names the current one, so probes, status and `egovlab down` all see the policy
in force, and the list of versions is what `rollback` walks back through.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from egovlab import operations
from egovlab.inventory import addressing, policy_edit, safe_yaml
from egovlab.inventory.errors import EgovlabError
from egovlab.sdn import compiler, launcher, render
from egovlab.topology import devices, faults
from egovlab.topology.state import LabRecord, state_dir, update_state


def _raw(source: str) -> dict:
    return safe_yaml.read(source)


def _versions(record: LabRecord) -> list[str]:
    """The scenario files the lab has run, oldest first: its snapshot, then each committed policy."""
    return list(record.policy_versions or [record.source])


def current(prefix: str) -> dict:
    record, _, _ = operations.running_lab(prefix)
    return {"version": len(_versions(record)) - 1, "source": Path(record.source).name,
            "policy": policy_edit.policy_text(_raw(record.source))}


def _candidate(prefix: str, text: str, mode: str):
    state, sc, plan = operations.running_lab(prefix)
    source = state.source
    raw = _raw(source)
    allocations = addressing.read_allocations(addressing.allocation_path(source))
    new_raw, new_sc = policy_edit.apply(raw, text, mode, source=f"candidate for lab '{prefix}'",
                                        allocations=allocations)
    return state, sc, plan, raw, new_raw, new_sc


def compare(prefix: str, text: str, mode: str, device: str | None = None) -> dict:
    """The policy's diff and, per switch, the rules it would add and remove (with the links as they are)."""
    state, sc, plan, raw, new_raw, new_sc = _candidate(prefix, text, mode)
    down = faults.cut_interfaces(plan)
    old_programs = compiler.compile_network(sc, plan, down=down)
    new_programs = compiler.compile_network(new_sc, plan, down=down)
    nodes = [devices.resolve(plan, device)] if device else list(plan.switches)
    rules = {}
    for node in nodes:
        if node not in plan.switches:
            continue
        dpid = plan.switches[node].dpid
        diff = render.program_diff(old_programs[dpid], new_programs[dpid], devices.name_of(plan, node))
        if diff:
            rules[devices.name_of(plan, node)] = diff
    changed = sum(len(set(old_programs[d].rules) ^ set(new_programs[d].rules)) for d in old_programs)
    return {"policy_diff": policy_edit.unified(policy_edit.policy_text(raw), policy_edit.policy_text(new_raw),
                                               "policy (running)", "policy (candidate)"),
            "rules": rules, "changed_rules": changed,
            "changed_switches": sum(set(old_programs[d].rules) != set(new_programs[d].rules) for d in old_programs)}


def _reload(prefix: str, source: str) -> dict:
    """Ask the lab's controller to apply the scenario at `source` (its policy) now."""
    return launcher.control(prefix, "reload", {"scenario": source})


def _switch_to(prefix: str, versions: list[str]) -> dict:
    applied = _reload(prefix, versions[-1])
    update_state(prefix, source=versions[-1], policy_versions=versions)
    return {"version": len(versions) - 1, "source": Path(versions[-1]).name, **applied}


def commit(prefix: str, text: str, mode: str) -> dict:
    state, sc, plan, raw, new_raw, new_sc = _candidate(prefix, text, mode)
    versions = _versions(state)
    d = state_dir(prefix)
    path = d / f"scenario-v{len(versions)}.yml"
    path.write_text(yaml.safe_dump(new_raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    allocations = addressing.allocation_path(state.source)
    if allocations.exists():
        shutil.copy(allocations, addressing.allocation_path(path))
    try:
        return _switch_to(prefix, [*versions, str(path)])
    except EgovlabError:
        path.unlink(missing_ok=True)
        addressing.allocation_path(path).unlink(missing_ok=True)
        raise


def rollback(prefix: str) -> dict:
    record, _, _ = operations.running_lab(prefix)
    versions = _versions(record)
    if len(versions) < 2:
        raise EgovlabError(f"lab '{prefix}' runs its original policy: nothing to roll back")
    dropped = versions.pop()
    result = _switch_to(prefix, versions)
    Path(dropped).unlink(missing_ok=True)
    addressing.allocation_path(dropped).unlink(missing_ok=True)
    return result
