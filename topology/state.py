"""Where a running lab records itself, so that other processes (fault, probe, down) find it."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

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


def read_state(prefix: str) -> dict | None:
    try:
        return json.loads((state_dir(prefix) / "lab.json").read_text())
    except (OSError, ValueError):
        return None


def write_state(prefix: str, state: dict) -> None:
    d = state_dir(prefix)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "lab.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(d / "lab.json")


def remove_state(prefix: str) -> None:
    """The lab's state directory and all in it (faults, controller status, deploy keys)."""
    shutil.rmtree(state_dir(prefix), ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """A process that exists and is not a zombie (this machine's init does not always reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def claim(prefix: str, pid: int | None = None) -> None:
    """Record that this process (or `pid`, a child it hands the bring-up to) is bringing the lab
    up, before anything of it is made, so that a `down` at any moment finds the process to stop;
    refuse a prefix that another live process holds."""
    pid = pid or os.getpid()
    held = read_state(prefix)
    if held and held.get("pid") and held["pid"] not in (os.getpid(), pid, os.getppid()) and pid_alive(held["pid"]):
        coming = "coming up" if held.get("phase") == "starting" else "up"
        raise EgovlabError(f"a lab with prefix '{prefix}' is already {coming} (pid {held['pid']}): "
                           f"`egovlab down --prefix {prefix}` stops it")
    if held and held.get("pid") == pid and held.get("phase") != "starting":
        return  # already further than a claim (a parent handing over moments after the child's start)
    write_state(prefix, {"prefix": prefix, "pid": pid, "phase": "starting", "started": time.time()})


def release(prefix: str, pid: int | None = None) -> None:
    """Remove the claim of this process (or `pid`) if nothing more was recorded (a bring-up that
    never began)."""
    held = read_state(prefix)
    if held and held.get("pid") in (os.getpid(), pid) and held.get("phase") == "starting":
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
    write_state(prefix, {**(read_state(prefix) or {}), "snapshot": str(path), "origin": origin,
                         "origin_sha256": hashlib.sha256(text.encode()).hexdigest()})
    return path


def origin_changed(state: dict) -> str:
    """unchanged | changed | deleted | unknown: the source file now, against the lab's snapshot."""
    origin, digest = state.get("origin"), state.get("origin_sha256")
    if not origin or not digest:
        return "unknown"
    try:
        now = hashlib.sha256(Path(origin).read_bytes()).hexdigest()
    except FileNotFoundError:
        return "deleted"
    except OSError:
        return "unknown"
    return "unchanged" if now == digest else "changed"
