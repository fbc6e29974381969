"""Failback after a failover drill: service returns to the provincial DC, measured as the drill is.

1. Fence the old primary, the provincial database the drill left running in the dark DC: an
   immediate shutdown, and supervisor told not to restart it. (A fast shutdown waits for its
   WAL senders, whose standby is across the dark DC: 30 s.)
2. Bring the provincial DC back (`dc-up`) and re-synchronise its database from the backup one
   as a streaming standby: a fresh base backup with its own replication slot. pg_rewind would
   copy less, but needs wal_log_hints or data checksums and a superuser connection across the
   zones; the old data is kept beside it (`data.before-failback`).
3. With citizens submitting: stop the backup primary cleanly (its shutdown checkpoint is the
   last WAL it writes, and it waits until its standby has it), check that it says "shut down",
   wait until the provincial standby has replayed past that checkpoint, promote it, and the
   provincial portal takes the service addresses back (the standby drops them; the owner
   announces them).
4. The backup database rejoins as the standby of the new primary, on its new timeline (it ended
   on the checkpoint the new primary replayed: no rewind), through a slot made for it before the
   promotion; its stale slot goes.

RTO and RPO are measured from the moment writes stopped (step 3), against what the provincial
database holds afterwards; under synchronous replication nothing acknowledged may be lost.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import yaml

from egovlab.inventory.scenario import Scenario
from egovlab.topology import faults, netns
from egovlab.topology.model import EmulationPlan
from egovlab.topology.state import LabError, data_dir

from .deploy import wait_port, workdir
from .drill import PG_BIN, Citizens, citizens, figures, give_back, promote, psql
from .placement import Deployment, host

CATCH_UP_TIMEOUT_S = 30.0


class NothingToFailBack(LabError):
    """The provincial DC is primary already (no drill failed it over): exit 1, saying so."""


@dataclass
class FailbackResult:
    replication: str
    resync_s: float  # the provincial database fenced, its DC back, re-synchronised (before the switch)
    switch_time: float  # UNIX time writes stopped: the backup primary took its shutdown request (its log)
    stopped_s: float  # the backup primary shut down cleanly (all from switch_time)
    caught_up_s: float  # the provincial standby has replayed its shutdown checkpoint
    promoted_s: float
    redirected_s: float  # the provincial portal holds the service addresses again
    rejoined_s: float  # the backup database streams from the new primary
    rto_s: float | None
    attempts: int
    acknowledged: int
    failed_during_outage: int
    lost: int
    rpo_s: float
    families: dict[str, dict] = field(default_factory=dict)


def supervisorctl(plan: EmulationPlan, pids: dict[str, int], label: str, *args: str) -> str:
    conf = data_dir(plan.prefix) / label / "etc" / "supervisord.conf"
    r = subprocess.run([*netns.command(pids[plan.node(label)]), "supervisorctl", "-c", str(conf), *args],
                       capture_output=True, text=True, timeout=60)
    if r.returncode and args[0] != "status":
        raise LabError(f"supervisorctl {' '.join(args)} on {label}: {(r.stdout + r.stderr).strip()}")
    return r.stdout


def _postgres(label: str, plan: EmulationPlan, pids: dict[str, int], *cmd: str) -> str:
    r = subprocess.run([*netns.command(pids[plan.node(label)]), "runuser", "-u", "postgres", "--", *cmd],
                       capture_output=True, text=True, timeout=300)
    if r.returncode:
        raise LabError(f"{cmd[0].rsplit('/', 1)[-1]} on {label} failed: {(r.stderr or r.stdout).strip()[-800:]}")
    return r.stdout


def sql(plan: EmulationPlan, pids: dict[str, int], label: str, query: str) -> str:
    """`query` run on a server's database as postgres (its answer, stripped)."""
    return psql(pids[plan.node(label)], str(data_dir(plan.prefix) / label), query, db="postgres").strip()


def _data(plan: EmulationPlan, label: str) -> str:
    return str(data_dir(plan.prefix) / label / "pg" / "data")


def slot(label: str) -> str:
    """The replication slot (and application name) of a server's database: its cluster name."""
    return label.replace("-", "_")


def is_primary(plan: EmulationPlan, pids: dict[str, int], label: str) -> bool | None:
    """True: accepts writes; False: a standby; None: not running."""
    try:
        return sql(plan, pids, label, "SELECT pg_is_in_recovery();") == "f"
    except LabError:
        return None


def replication_mode(prefix: str) -> str:
    """What the lab's deployment was made with (its inventory, written by `deploy`)."""
    inv = yaml.safe_load((workdir(prefix) / "deployment.yml").read_text())
    return inv["all"]["vars"]["egov_replication"]


def fence(plan: EmulationPlan, pids: dict[str, int], label: str) -> None:
    """Stop a database at once: supervisor stops it (so it is not restarted) while pg_ctl asks an
    immediate shutdown of the postmaster, which leaves at once whatever its WAL senders wait for."""
    stop = subprocess.Popen([*netns.command(pids[plan.node(label)]), "supervisorctl", "-c",
                             str(data_dir(plan.prefix) / label / "etc" / "supervisord.conf"), "stop", "postgresql"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 5  # supervisor has begun stopping it, so will not restart it when it exits
        while "RUNNING" in supervisorctl(plan, pids, label, "status", "postgresql") and time.monotonic() < end:
            time.sleep(0.05)
        subprocess.run([*netns.command(pids[plan.node(label)]), "runuser", "-u", "postgres", "--",
                        f"{PG_BIN}/pg_ctl", "stop", "-m", "immediate", "-D", _data(plan, label)],
                       capture_output=True, text=True, timeout=60)
        stop.wait(timeout=60)
    finally:
        if stop.poll() is None:
            stop.kill()
    if "RUNNING" in supervisorctl(plan, pids, label, "status", "postgresql"):
        raise LabError(f"fencing the database on {label} failed: it still runs")


def resync(plan: EmulationPlan, pids: dict[str, int], label: str, source: str) -> None:
    """`label`'s database becomes a streaming standby of `source`'s: a fresh base backup, through a
    slot made for it on the source (an old one of the same name dropped first)."""
    secrets = yaml.safe_load((workdir(plan.prefix) / "secrets.yml").read_text())
    name = slot(label)
    sql(plan, pids, source, f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                             f"WHERE slot_name = '{name}';")
    data = data_dir(plan.prefix) / label / "pg" / "data"
    kept = data.with_name("data.before-failback")
    shutil.rmtree(kept, ignore_errors=True)
    data.rename(kept)
    src = str(host(plan, source).ipv4.ip)
    wait_port(pids[plan.node(label)], src, 5432, timeout_s=60)
    r = subprocess.run([*netns.command(pids[plan.node(label)]), "runuser", "-u", "postgres", "--", "env",
                        f"PGPASSWORD={secrets['egov_replicator_password']}", f"{PG_BIN}/pg_basebackup", "-h", src,
                        "-U", "replicator", "-D", str(data), "-R", "-X", "stream", "-c", "fast", "-C", "-S", name],
                       capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise LabError(f"pg_basebackup of {label} from {source} failed: {r.stderr.strip()[-800:]}")
    supervisorctl(plan, pids, label, "start", "postgresql")
    streaming(plan, pids, source, label)


def streaming(plan: EmulationPlan, pids: dict[str, int], primary: str, standby: str, timeout_s: float = 60) -> None:
    """Until `primary` streams to `standby` (its WAL sender in state 'streaming')."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            if sql(plan, pids, primary, f"SELECT state FROM pg_stat_replication WHERE application_name = "
                                         f"'{slot(standby)}';") == "streaming":
                return
        except LabError:
            pass
        time.sleep(0.05)
    raise LabError(f"{standby} does not stream from {primary} after {timeout_s:.0f} s")


def checkpoint_of(plan: EmulationPlan, pids: dict[str, int], label: str) -> str:
    """A cleanly stopped cluster's last checkpoint location (an error if it did not stop cleanly)."""
    out = _postgres(label, plan, pids, f"{PG_BIN}/pg_controldata", "-D", _data(plan, label))
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    state = fields.get("Database cluster state", "").strip()
    if state != "shut down":
        raise LabError(f"the database on {label} did not shut down cleanly ({state or 'no state'}): not switching")
    return fields["Latest checkpoint location"].strip()


SHUTDOWN_REQUEST = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) UTC \[\d+\] LOG:  "
                              r"received fast shutdown request$", re.M)


def last_shutdown_request(log: str) -> float | None:
    """The UNIX time of the last fast shutdown request in a PostgreSQL log (our log_line_prefix,
    UTC): from that moment the database accepts no write."""
    stamps = SHUTDOWN_REQUEST.findall(log)
    return datetime.strptime(stamps[-1], "%Y-%m-%d %H:%M:%S.%f").replace(
        tzinfo=timezone.utc).timestamp() if stamps else None


def shutdown_requested(plan: EmulationPlan, label: str) -> float:
    """When the database on `label` stopped taking writes, from its own log."""
    at = last_shutdown_request((data_dir(plan.prefix) / label / "log" / "postgresql.log").read_text(errors="replace"))
    if at is None:
        raise LabError(f"the database on {label} logged no fast shutdown request")
    return at


def caught_up(plan: EmulationPlan, pids: dict[str, int], label: str, lsn: str) -> None:
    """Until `label`, a standby, has replayed past `lsn`."""
    end = time.monotonic() + CATCH_UP_TIMEOUT_S
    while time.monotonic() < end:
        if sql(plan, pids, label, f"SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '{lsn}') > 0;") == "t":
            return
        time.sleep(0.01)
    raise LabError(f"{label} did not replay past {lsn} within {CATCH_UP_TIMEOUT_S:.0f} s")


def rejoin(plan: EmulationPlan, pids: dict[str, int], label: str, primary: str) -> None:
    """A cleanly stopped former primary starts again as `primary`'s standby (its slot made on the
    primary beforehand) and follows the new timeline."""
    secrets = yaml.safe_load((workdir(plan.prefix) / "secrets.yml").read_text())
    data = data_dir(plan.prefix) / label / "pg" / "data"
    conninfo = (f"host={host(plan, primary).ipv4.ip} user=replicator password={secrets['egov_replicator_password']} "
                f"application_name={slot(label)}")
    with (data / "postgresql.auto.conf").open("a") as f:
        f.write(f"primary_conninfo = '{conninfo}'\nprimary_slot_name = '{slot(label)}'\n")
    (data / "standby.signal").touch()
    shutil.chown(data / "standby.signal", "postgres", "postgres")
    supervisorctl(plan, pids, label, "start", "postgresql")
    streaming(plan, pids, primary, label)
    # the slot the other database streamed through while this one was the primary
    sql(plan, pids, label, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots;")


def failed_over(plan: EmulationPlan, pids: dict[str, int], dep: Deployment) -> bool:
    """The backup DC's database is the primary: a drill failed the provincial DC over."""
    return is_primary(plan, pids, dep.standby.servers["csdl"]) is True


def prepare(plan: EmulationPlan, pids: dict[str, int], dep: Deployment, progress=print) -> float:
    """Steps 1 and 2: the old primary fenced, its DC back, its database a standby of the backup
    one. Returns the seconds it took."""
    home, away = dep.primary.servers["csdl"], dep.standby.servers["csdl"]
    if not failed_over(plan, pids, dep):
        raise NothingToFailBack(f"nothing to fail back: the database on {away} ({dep.standby.dc}) is not the "
                                f"primary (no failover to {dep.standby.dc} happened)")
    t0 = time.monotonic()
    fence(plan, pids, home)
    progress(f"{home} fenced (immediate shutdown)")
    rec = faults.inject(plan, "dc-up", dep.primary.dc)
    progress(f"{rec.iso} dc-up {dep.primary.dc}: {len(rec.interfaces)} interfaces")
    resync(plan, pids, home, away)
    seconds = time.monotonic() - t0
    progress(f"{home} re-synchronised from {away} in {seconds:.1f} s (base backup), streaming")
    return seconds


def switch(plan: EmulationPlan, pids: dict[str, int], dep: Deployment, progress=print) -> dict[str, float]:
    """Steps 3 and 4: the switch back and the rejoin; UNIX times of each stage ("switch": when
    writes stopped)."""
    home, away = dep.primary.servers["csdl"], dep.standby.servers["csdl"]
    sql(plan, pids, home, f"SELECT pg_create_physical_replication_slot('{slot(away)}') WHERE NOT EXISTS "
                           f"(SELECT 1 FROM pg_replication_slots WHERE slot_name = '{slot(away)}');")
    supervisorctl(plan, pids, away, "stop", "postgresql")  # a fast shutdown: it waits for its standby
    t = {"stopped": time.time(), "switch": shutdown_requested(plan, away)}
    lsn = checkpoint_of(plan, pids, away)
    caught_up(plan, pids, home, lsn)
    t["caught_up"] = time.time()
    promote(plan, pids, home)
    t["promoted"] = time.time()
    give_back(plan, pids, dep)
    t["redirected"] = time.time()
    progress(f"{home} caught up with {away}'s shutdown checkpoint {lsn}, promoted; "
             f"{dep.primary.servers['cong-dvc']} holds {', '.join(dep.service_addresses().values())} again "
             f"{t['redirected'] - t['switch']:.2f} s after writes stopped")
    rejoin(plan, pids, away, home)
    t["rejoined"] = time.time()
    progress(f"{away} rejoined as {home}'s standby {t['rejoined'] - t['switch']:.2f} s after writes stopped")
    return t


def restore(plan: EmulationPlan, pids: dict[str, int], dep: Deployment, progress=print) -> None:
    """Fail back with nobody watching (a suite's baseline): the same steps, no citizens."""
    prepare(plan, pids, dep, progress)
    switch(plan, pids, dep, progress)


def run(sc: Scenario, plan: EmulationPlan, pids: dict[str, int], dep: Deployment, *, seconds: float = 30.0,
        warmup_s: float = 8.0, rate: float = 10.0, progress=print) -> FailbackResult:
    """The failback, measured: citizens submit from before the switch to after it."""
    resynced = prepare(plan, pids, dep, progress)
    with Citizens(plan, pids, dep, citizens(sc, plan)[0], rate, seconds) as load:
        time.sleep(warmup_s)
        t = switch(plan, pids, dep, progress)
        attempts = load.collect()
    stats = figures(plan, pids, dep.primary.servers["csdl"], attempts, t["switch"])
    return FailbackResult(dep.replication, round(resynced, 3), t["switch"], *(
        round(t[k] - t["switch"], 3) for k in ("stopped", "caught_up", "promoted", "redirected", "rejoined")), **stats)
