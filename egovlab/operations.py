"""What the CLI verbs and the REST API both do to a running lab: one function per operation, no
printing. Bringing labs up and down is `egovlab.lifecycle`.

The CLI (`egovlab.cli`) renders the results as tables; the API (`egovlab.api`) returns them as
JSON. Long operations (bringing a lab up, a probe matrix, a simulation) run the CLI verb itself
in a child process when the API starts them, so both really take the same path.
"""
from __future__ import annotations

import functools
import re
from typing import NamedTuple

from egovlab import params
from egovlab.inventory import loader
from egovlab.inventory.errors import EgovlabError
from egovlab.inventory.scenario import Scenario
from egovlab.topology import faults
from egovlab.topology.model import EmulationPlan, emulation_plan
from egovlab.topology.state import LabError, LabRecord, LabSpec, read_state

PREFIX_RE = re.compile(params.PREFIX_PATTERN)


def check_prefix(prefix: str) -> str:
    if not PREFIX_RE.fullmatch(prefix):
        raise EgovlabError(f"prefix '{prefix}': 2 to 4 lower-case letters (node names are PREFIXs1, PREFIXh1, ...)")
    return prefix


def parse_controller(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise EgovlabError(f"--controller: expected HOST:PORT, got '{value}'")
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise EgovlabError("--controller: the lab's controller must be on this machine (127.0.0.1)")
    return ("127.0.0.1" if host == "localhost" else host, int(port))


class RunningLab(NamedTuple):
    record: LabRecord
    scenario: Scenario
    plan: EmulationPlan


def running_lab(prefix: str) -> RunningLab:
    """The lab up under this prefix: its record, and the scenario and plan of its snapshot (or of
    the policy version committed since), or a clear error."""
    record = read_state(prefix)
    if record is None:
        raise EgovlabError(f"no lab with prefix '{prefix}' is up (egovlab up FILE)")
    if record.phase == "starting" or record.source is None:
        raise LabError(f"lab '{prefix}' is still coming up (pid {record.pid})")
    return RunningLab(record, *_scenario_and_plan(record.source, record.started, record.spec))


@functools.lru_cache(maxsize=16)
def _scenario_and_plan(source: str, started: float, spec: LabSpec) -> tuple[Scenario, EmulationPlan]:
    """The one cache of what a running lab runs: its sources (snapshot, policy versions) never
    change once written, and a lab brought up again under the prefix starts at another time."""
    sc = loader.load(source)
    return sc, emulation_plan(sc, prefix=spec.prefix, hosts_per_site=spec.hosts_per_site)


def programs(lab: RunningLab, down: frozenset[str]) -> dict:
    """The compiled programs of a running lab's switches with these interfaces cut (the province
    compiles in about a second; NAPALM's config getter asks once per switch)."""
    return _programs(lab.record.source, lab.record.started, lab.record.spec, down)


@functools.lru_cache(maxsize=4)
def _programs(source: str, started: float, spec: LabSpec, down: frozenset[str]) -> dict:
    from egovlab.sdn import compiler

    sc, plan = _scenario_and_plan(source, started, spec)
    return compiler.compile_network(sc, plan, down=set(down))


def inject_fault(prefix: str, action: str, target: str) -> faults.FaultRecord:
    if action not in faults.ACTIONS:
        raise EgovlabError(f"unknown fault '{action}' (expected one of: {', '.join(faults.ACTIONS)})")
    _, _, plan = running_lab(prefix)
    return faults.inject(plan, action, target)


def clear_faults(prefix: str) -> list[str]:
    _, _, plan = running_lab(prefix)
    return faults.clear(plan)
