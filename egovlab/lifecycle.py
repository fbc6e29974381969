"""The one lifecycle of a lab: up, ready, status, down — for the CLI, the API, tests and benchmarks.

`session()` brings a lab up in this process and removes everything it made when its block
ends, however it ends; `start_detached()` runs `egovlab up` (that same session) in a child and
returns once the lab is ready; `stop()` stops whichever process owns a prefix and removes what
is left. Readiness is the controller's own report (controller.json: every switch programmed),
never a log line. What the caller sees of a bring-up goes through a `Reporter`: the CLI draws
progress bars, tests and benchmarks stay silent.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from egovlab import operations
from egovlab.inventory import addressing, loader, safe_yaml
from egovlab.topology import cleanup, netns
from egovlab.topology.model import DEFAULT_PREFIX, emulation_plan
from egovlab.topology.state import (STATE_ROOT, LabError, LabSpec, claim, pid_alive, read_state, record_snapshot,
                                    release, remove_state)


class Reporter:
    """What a bring-up tells its caller; this one tells nothing (tests, benchmarks)."""

    def controller_started(self, prefix: str, pid: int, port: int, log: str) -> None: ...

    @contextlib.contextmanager
    def bringing_up(self, lab):
        """Around `lab.start()`; sets `lab.progress` to draw the phases if it wants."""
        yield

    def up(self, lab) -> None: ...

    def programmed(self, status: dict) -> None: ...

    def down(self, lab, removed: cleanup.Removed) -> None: ...


def spec(prefix: str, hosts_per_site: int | None = None, controller: str | None = None, sdn: bool = True,
         ovs_shards: int = 1) -> LabSpec:
    """The spec from the CLI's and the API's words (`--controller HOST:PORT`), checked."""
    return LabSpec(prefix=operations.check_prefix(prefix), hosts_per_site=hosts_per_site,
                   controller=operations.parse_controller(controller), sdn=sdn, ovs_shards=ovs_shards)


@contextlib.contextmanager
def session(file: str | Path, lab_spec: LabSpec, reporter: Reporter | None = None, *, timeout_s: float = 300):
    """A lab up in this process: the prefix claimed before anything is made (so `down` at any
    moment stops this process, and a second `up` is refused), the scenario validated and kept
    in the record, the lab built and, under its own controller, programmed; whatever happens
    then, everything it made removed. Yields the `Lab` (its `rules`: the controller's report)."""
    reporter = reporter or Reporter()
    claim(lab_spec)
    lab = None
    try:
        lab = _make_lab(str(file), lab_spec, reporter)
        with reporter.bringing_up(lab):
            lab.start()
        reporter.up(lab)
        if lab.controller_process is not None:
            from egovlab.sdn import launcher

            lab.rules = launcher.wait_programmed(lab_spec.prefix, len(lab.plan.switches), timeout_s=timeout_s)
            reporter.programmed(lab.rules)
        yield lab
    finally:
        with netns.signals_ignored():  # a second Ctrl-C or `down` must not cut the removal short
            if lab is not None:
                owned = lab.owns_prefix
                removed = lab.stop()
                if owned:
                    reporter.down(lab, removed)
            release(lab_spec.prefix)


def _make_lab(file: str, lab_spec: LabSpec, reporter: Reporter):
    from egovlab.topology.network import Lab  # Mininet is imported only where a lab runs

    sc = _snapshot(file, lab_spec.prefix)
    plan = emulation_plan(sc, prefix=lab_spec.prefix, hosts_per_site=lab_spec.hosts_per_site)
    target, process = lab_spec.controller, None
    try:
        if lab_spec.own_controller:
            from egovlab.sdn import launcher

            log = f"/tmp/egovlab-{lab_spec.prefix}-controller.log"
            process, port = launcher.start(sc.source, prefix=lab_spec.prefix, hosts_per_site=lab_spec.hosts_per_site,
                                           log=log)
            reporter.controller_started(lab_spec.prefix, process.pid, port, log)
            target = ("127.0.0.1", port)
        return Lab(sc, plan, controller=target, hosts_per_site=lab_spec.hosts_per_site, controller_process=process,
                   ovs_shards=lab_spec.ovs_shards)
    except BaseException:  # interrupted between starting the controller and the lab owning it
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        raise


def _snapshot(file: str, prefix: str):
    """The scenario validated, then kept in the lab's record; the lab runs from that copy."""
    path = loader.resolve_path(file)
    text = safe_yaml.read_text(path)
    sc = loader.load(file)
    snapshot = record_snapshot(prefix, str(path.resolve()), text, addressing.allocation_text(sc.plan.allocations))
    return loader.load(snapshot)


def running_prefixes() -> list[str]:
    """Prefixes of the labs up on this machine (their process alive, not just a state file left)."""
    if not STATE_ROOT.is_dir():
        return []
    return sorted(p.name for p in STATE_ROOT.iterdir()
                  if operations.PREFIX_RE.fullmatch(p.name) and is_running(p.name))


def is_running(prefix: str) -> bool:
    """Up (or coming up): its process is alive."""
    record = read_state(prefix)
    return bool(record and pid_alive(record.pid))


def ready(prefix: str) -> bool:
    """Up, and under its own controller every switch programmed (the controller says so)."""
    from egovlab.sdn import launcher

    record = read_state(prefix)
    if record is None or record.phase != "up":
        return False
    if not record.spec.own_controller:
        return True
    status = launcher.status(prefix)
    return bool(status and len(status.get("installed", [])) >= record.switches)


def start_detached(file: str, lab_spec: LabSpec, timeout_s: float = 600) -> tuple[int, Path]:
    """Run `egovlab up` in its own session; return (pid, log) once the lab is ready."""
    prefix = lab_spec.prefix
    argv = [sys.executable, "-m", "egovlab", "up", str(Path(file).resolve()) if Path(file).exists() else file,
            "--prefix", prefix, "--sdn" if lab_spec.sdn else "--standalone", "--ovs-shards", str(lab_spec.ovs_shards)]
    if lab_spec.hosts_per_site is not None:
        argv += ["--hosts-per-site", str(lab_spec.hosts_per_site)]
    if lab_spec.controller:
        argv += ["--controller", ":".join(map(str, lab_spec.controller))]
    claim(lab_spec)  # this process holds the prefix until the child takes it over
    log = Path(f"/tmp/egovlab-{prefix}.log")
    child = None
    try:
        with log.open("w") as out:
            child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        claim(lab_spec, child.pid)  # a `down` from now on stops the child
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            record = read_state(prefix)
            if record and record.pid == child.pid and ready(prefix):
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


BRINGS_UP = ("up", "check", "test", "drill", "soak")  # the verbs whose process brings a lab up


def starting(prefix: str) -> list[int]:
    """Processes of a verb that brings a lab up under this prefix but has not claimed it yet
    (an `egovlab up` whose interpreter is still starting): `down` stops those too."""
    own = {os.getpid(), os.getppid()}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in own:
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        at = next((i for i, a in enumerate(argv) if a == "egovlab" or a.endswith("/egovlab")), None)
        if at is None or len(argv) <= at + 1 or argv[at + 1] not in BRINGS_UP:
            continue
        given = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--prefix"), None)
        given = given or next((a.split("=", 1)[1] for a in argv if a.startswith("--prefix=")), DEFAULT_PREFIX)
        if given == prefix:
            found.append(int(entry))
    return found


def stop(prefix: str) -> tuple[bool, cleanup.Removed]:
    """Stop the lab's process (and any verb still starting to bring it up) and remove everything
    it made; (was it running, what was removed)."""
    record = read_state(prefix)
    pids = set(starting(prefix)) | ({record.pid} if record and record.pid != os.getpid() else set())
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)  # the session unwinds: it removes what it made
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    removed = cleanup.remove_lab(prefix)
    remove_state(prefix)
    left = cleanup.leftovers(prefix)
    if any(left.values()):
        raise LabError(f"could not remove everything: {left}")
    return bool(record or removed or pids), removed

