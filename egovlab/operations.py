"""What the CLI verbs and the REST API both do to a lab: one function per operation, no printing.

The CLI (`lab_cli`) renders the results as tables; the API (`egovlab.api`) returns them as JSON.
Long operations (bringing a lab up, a probe matrix, a simulation) run the CLI verb itself in a
child process when the API starts them, so both really take the same path.
"""
from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from egovlab import params
from egovlab.inventory import loader
from egovlab.inventory.errors import EgovlabError
from egovlab.topology import cleanup, faults
from egovlab.topology.model import emulation_plan
from egovlab.topology.state import STATE_ROOT, LabError, claim, pid_alive, read_state, release, remove_state

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


def running_lab(prefix: str):
    """(state, scenario, plan) of the lab up under this prefix, or a clear error."""
    state = read_state(prefix)
    if state is None:
        raise EgovlabError(f"no lab with prefix '{prefix}' is up (egovlab up FILE)")
    if state.get("phase") == "starting":
        raise LabError(f"lab '{prefix}' is still coming up (pid {state.get('pid')})")
    source = state["source"]
    mtime = Path(source).stat().st_mtime if Path(source).exists() else 0.0
    return (state, *_scenario_and_plan(source, mtime, prefix, state.get("hosts_per_site")))


@functools.lru_cache(maxsize=16)
def _scenario_and_plan(source: str, mtime: float, prefix: str, hosts_per_site: int | None):
    """Cached by the file's mtime: the API asks for a lab's plan on every status call."""
    sc = loader.load(source)
    return sc, emulation_plan(sc, prefix=prefix, hosts_per_site=hosts_per_site)


def running_prefixes() -> list[str]:
    """Prefixes of the labs up on this machine (their process alive, not just a state file left)."""
    if not STATE_ROOT.is_dir():
        return []
    return sorted(p.name for p in STATE_ROOT.iterdir() if PREFIX_RE.fullmatch(p.name) and is_running(p.name))


def is_running(prefix: str) -> bool:
    """Up (or coming up): its process is alive."""
    state = read_state(prefix)
    return bool(state and state.get("pid") and pid_alive(state["pid"]))


def start_detached(file: str, prefix: str, hosts_per_site: int | None, controller: str | None, sdn: bool,
                   timeout_s: float = 600, ovs_shards: int = 1) -> tuple[int, Path]:
    """Run `egovlab up` in its own session; return (pid, log) once the lab is up (and programmed under SDN)."""
    argv = [sys.executable, "-m", "egovlab", "up", str(Path(file).resolve()) if Path(file).exists() else file,
            "--prefix", prefix]
    if hosts_per_site is not None:
        argv += ["--hosts-per-site", str(hosts_per_site)]
    if controller:
        argv += ["--controller", controller]
    argv += ["--sdn" if sdn else "--standalone", "--ovs-shards", str(ovs_shards)]
    from egovlab.sdn import launcher

    claim(prefix)  # this process holds the prefix until the child takes it over
    log = Path(f"/tmp/egovlab-{prefix}.log")
    child = None
    try:
        with log.open("w") as out:
            child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        claim(prefix, child.pid)  # a `down` from now on stops the child
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = read_state(prefix)
            if state and state.get("pid") == child.pid and state.get("phase") == "up":
                if not sdn or controller:
                    return child.pid, log
                # under its own controller, ready once every switch is programmed: the controller says so
                status = launcher.status(prefix)
                if status and len(status.get("installed", [])) >= state.get("switches", 0):
                    return child.pid, log
            if child.poll() is not None:
                raise LabError(f"the lab did not come up:\n{log.read_text().strip()}")
            time.sleep(0.2)
        raise LabError(f"the lab did not come up within {timeout_s:.0f} s (log {log})")
    except BaseException:  # interrupted, failed or too slow: the child unwinds and removes what it made
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=120)
            except subprocess.TimeoutExpired:
                child.kill()
        release(prefix, child.pid if child is not None else None)
        raise


def stop_lab(prefix: str) -> tuple[bool, cleanup.Removed]:
    """Stop the lab's process and remove everything it made; (was it running, what was removed)."""
    state = read_state(prefix)
    if state and state.get("pid") and state["pid"] != os.getpid():
        try:
            os.kill(state["pid"], signal.SIGTERM)  # up unwinds: it removes what it made
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and pid_alive(state["pid"]):
                time.sleep(0.1)
        except ProcessLookupError:
            pass
    removed = cleanup.remove_lab(prefix)
    remove_state(prefix)
    left = cleanup.leftovers(prefix)
    if any(left.values()):
        raise LabError(f"could not remove everything: {left}")
    return bool(state or removed), removed


def inject_fault(prefix: str, action: str, target: str) -> faults.FaultRecord:
    if action not in faults.ACTIONS:
        raise EgovlabError(f"unknown fault '{action}' (expected one of: {', '.join(faults.ACTIONS)})")
    _, _, plan = running_lab(prefix)
    return faults.inject(plan, action, target)


def clear_faults(prefix: str) -> list[str]:
    _, _, plan = running_lab(prefix)
    return faults.clear(plan)
