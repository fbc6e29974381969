"""Where a running lab records itself, so that other processes (fault, probe, down) find it."""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from egovlab.inventory.errors import EgovlabError

STATE_ROOT = Path(os.environ.get("EGOVLAB_STATE_DIR", "/run/egovlab"))


class LabError(EgovlabError):
    """The lab cannot run here or failed to come up (not bad input: exit code 1)."""

    exit_code = 1


DATA_ROOT = Path(os.environ.get("EGOVLAB_DATA_DIR", "/srv/egovlab"))


def state_dir(prefix: str) -> Path:
    return STATE_ROOT / prefix


def data_dir(prefix: str) -> Path:
    """What services deployed on the lab's hosts keep (databases, configuration, logs)."""
    return DATA_ROOT / prefix


class LabSpec(BaseModel):
    """What was asked for: the same spec gives the same lab (names, addresses, program)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    prefix: str
    hosts_per_site: int | None = None
    controller: tuple[str, int] | None = None  # an outside controller (HOST, PORT); None: egovlab's or standalone
    sdn: bool = True  # under egovlab's own controller (when no outside one is given)
    ovs_shards: int = 1

    @property
    def own_controller(self) -> bool:
        """Run by egovlab's own controller (it programs the switches and answers ARP/ND), not
        standalone and not by an outside one."""
        return self.sdn and self.controller is None


class LabRecord(BaseModel):
    """A lab's one record (lab.json in its state directory): the spec, the process that owns the
    lab, the snapshot of the scenario it runs from, and what is live once it is up. Every
    operation on a running lab (fault, status, probe, deploy, drill, NAPALM, policy, metrics,
    verify --prefix) reads this, never the scenario's source file."""

    model_config = ConfigDict(extra="forbid")
    spec: LabSpec
    pid: int
    phase: Literal["starting", "up"] = "starting"
    started: float
    # the snapshot: the validated scenario's text kept in the state directory, and where it came from
    snapshot: str | None = None
    origin: str | None = None
    origin_sha256: str | None = None
    # live, once up
    scenario: str | None = None  # its name
    source: str | None = None  # the scenario in force: the snapshot, or a committed policy version of it
    policy_versions: list[str] = []
    switches: int = 0
    datapath: str | None = None
    pids: dict[str, int] = {}

    @property
    def prefix(self) -> str:
        return self.spec.prefix


def read_state(prefix: str) -> LabRecord | None:
    """The lab's record, or None when there is none (or it is unreadable: `down` still cleans up)."""
    try:
        return LabRecord.model_validate_json((state_dir(prefix) / "lab.json").read_bytes())
    except (OSError, ValidationError):
        return None


def write_state(record: LabRecord) -> None:
    d = state_dir(record.prefix)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "lab.json.tmp"
    tmp.write_text(record.model_dump_json(indent=1))
    tmp.replace(d / "lab.json")


def update_state(prefix: str, **changes) -> LabRecord:
    """The record with these fields changed (validated), written back."""
    record = read_state(prefix)
    if record is None:
        raise LabError(f"lab '{prefix}' has no record (it went down?)")
    record = LabRecord.model_validate({**record.model_dump(), **changes})
    write_state(record)
    return record


def remove_state(prefix: str) -> None:
    """The lab's state directory and all in it (faults, controller status, deploy keys)."""
    shutil.rmtree(state_dir(prefix), ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """A process that exists and is not a zombie (this machine's init does not always reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def claim(spec: LabSpec, pid: int | None = None) -> None:
    """Record that this process (or `pid`, a child it hands the bring-up to) is bringing the lab
    up, before anything of it is made, so that a `down` at any moment finds the process to stop;
    refuse a prefix that another live process holds."""
    pid = pid or os.getpid()
    held = read_state(spec.prefix)
    if held and held.pid not in (os.getpid(), pid, os.getppid()) and pid_alive(held.pid):
        coming = "coming up" if held.phase == "starting" else "up"
        raise EgovlabError(f"a lab with prefix '{spec.prefix}' is already {coming} (pid {held.pid}): "
                           f"`egovlab down --prefix {spec.prefix}` stops it")
    if held and held.pid == pid and (held.phase != "starting" or held.snapshot):
        return  # already further than a claim (a parent handing over moments after the child's start)
    write_state(LabRecord(spec=spec, pid=pid, started=time.time()))


def release(prefix: str, pid: int | None = None) -> None:
    """Remove the claim of this process (or `pid`) if nothing more was recorded (a bring-up that
    never began)."""
    held = read_state(prefix)
    if held and held.pid in (os.getpid(), pid) and held.phase == "starting":
        remove_state(prefix)


def record_snapshot(prefix: str, origin: str, text: str, allocations_text: str) -> Path:
    """Keep the validated scenario (its text and the allocations its addresses came from) in the
    lab's record: every later operation on the lab reads this, never the source file again, so
    editing, replacing or deleting that file changes nothing of the running lab."""
    d = state_dir(prefix)
    d.mkdir(parents=True, exist_ok=True)
    path = d / "scenario.yml"
    path.write_text(text, encoding="utf-8")
    (d / "scenario.allocations.yml").write_text(allocations_text, encoding="utf-8")
    update_state(prefix, snapshot=str(path), source=str(path), origin=origin,
                 origin_sha256=hashlib.sha256(text.encode()).hexdigest())
    return path


def origin_changed(record: LabRecord) -> str:
    """unchanged | changed | deleted | unknown: the source file now, against the lab's snapshot."""
    origin, digest = record.origin, record.origin_sha256
    if not origin or not digest:
        return "unknown"
    try:
        now = hashlib.sha256(Path(origin).read_bytes()).hexdigest()
    except FileNotFoundError:
        return "deleted"
    except OSError:
        return "unknown"
    return "unchanged" if now == digest else "changed"
