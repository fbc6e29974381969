"""The failover drill against the real services: citizens keep submitting over IPv4 and IPv6, the
primary DC goes dark, the standby is promoted and takes over the portal's addresses in both IP
versions; RTO and RPO as measured, per IP version and for the service.

`analyse` and `combine` are pure (unit-tested); the rest drives the lab (faults, namespaces,
PostgreSQL). `failback.py` reuses the citizens, the analysis and the address moves.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field

from egovlab.inventory.scenario import Scenario
from egovlab.topology import announce, faults, netns
from egovlab.topology.model import EmulationPlan
from egovlab.topology.state import LabError, data_dir

from .deploy import workdir
from .placement import Deployment, host

PG_BIN = "/usr/lib/postgresql/15/bin"


@dataclass
class DrillResult:
    replication: str
    failed_dc: str
    fail_time: float
    detected_s: float  # failure declared by the health monitor
    promoted_s: float  # the standby database accepts writes
    redirected_s: float  # the standby portal holds the service addresses
    rto_s: float | None  # the service's: the last IP version's first acknowledgement after the failure
    attempts: int
    acknowledged: int
    failed_during_outage: int  # submissions sent after the failure, unanswered, before the recovery
    lost: int  # acknowledged, but missing from the promoted database
    rpo_s: float  # the failure time minus the earliest lost acknowledgement (0: nothing lost)
    prediction: dict | None = None
    families: dict[str, dict] = field(default_factory=dict)  # "ipv4"/"ipv6" -> that citizen's figures


FAMILIES = {4: "ipv4", 6: "ipv6"}


def analyse(attempts: list, fail_time: float, present: set[str]) -> dict:
    """One citizen's figures. attempts: [sent, done, status, id]; present: the acknowledged ids
    the promoted database holds. The recovery is the first acknowledgement of a submission sent
    after the failure, by when it came, not by when it was sent: a submission sent early that
    rode the outage out on TCP retransmissions is answered late and says nothing of when the
    service came back."""
    acked = [a for a in attempts if a[2] == 201 and a[3]]
    after = [a for a in attempts if a[0] >= fail_time]
    back = min((a[1] for a in after if a[2] == 201), default=None)
    lost = [a for a in acked if a[3] not in present]
    return {"rto_s": round(back - fail_time, 3) if back is not None else None,
            "attempts": len(attempts), "acknowledged": len(acked),
            "failed_during_outage": sum(1 for a in after if a[2] != 201 and (back is None or a[0] < back)),
            "lost": len(lost), "rpo_s": round(max(0.0, fail_time - min(a[1] for a in lost)), 3) if lost else 0.0}


def combine(families: dict[str, dict]) -> dict:
    """The service's figures from each IP version's: recovered once every version has (the
    latest RTO), the counts summed, the widest RPO."""
    rtos = [f["rto_s"] for f in families.values()]
    return {"rto_s": None if None in rtos or not rtos else max(rtos),
            **{k: sum(f[k] for f in families.values()) for k in ("attempts", "acknowledged", "failed_during_outage",
                                                                 "lost")},
            "rpo_s": max((f["rpo_s"] for f in families.values()), default=0.0)}


def longest_wait(attempts: list, since: float) -> float | None:
    """The longest a citizen waited for an acknowledgement after `since`: to the first one, or
    between two (None: none came). A fault its path never crossed leaves the submission spacing."""
    acks = sorted(a[1] for a in attempts if a[2] == 201 and a[1] >= since)
    if not acks:
        return None
    points = [since, *acks]
    return round(max(b - a for a, b in zip(points, points[1:])), 3)


def psql(pid: int, root: str, sql: str, db: str = "egov") -> str:
    r = subprocess.run([*netns.command(pid), "runuser", "-u", "postgres", "--", f"{PG_BIN}/psql", "-h", f"{root}/pg/run",
                        "-d", db, "-tAq", "-v", "ON_ERROR_STOP=1"], input=sql, capture_output=True, text=True,
                       timeout=30)
    if r.returncode:
        raise LabError(f"psql failed: {r.stderr.strip()}")
    return r.stdout


def present(pid: int, root: str, ids: list[str]) -> set[str]:
    """Which of these application ids the database of that server holds."""
    if not ids:
        return set()
    values = ",".join(f"('{i}'::uuid)" for i in ids)
    return set(psql(pid, root, f"SELECT a.id FROM (VALUES {values}) AS v(id) JOIN applications a ON a.id = v.id;"
                   ).split())


def client(pid: int, args: dict, prefix: str) -> subprocess.Popen:
    """A citizen-side client (`loadgen`) in the namespace of `pid`, tagged with the lab's prefix."""
    return subprocess.Popen([*netns.command(pid), sys.executable, "-m", "egovlab.services.loadgen", json.dumps(args),
                             f"egovlab-lab={prefix}"], stdout=subprocess.PIPE, text=True)


def healthy_after(pid: int, url: str, ca: str, within_s: float, prefix: str = "") -> float | None:
    """Seconds until `url` answers 200 with status ok, asked from the namespace of `pid`; None
    if it did not within `within_s`."""
    proc = client(pid, {"mode": "healthy", "url": url, "ca": ca, "within": within_s}, prefix)
    out = proc.communicate(timeout=within_s + 30)[0]
    return json.loads(out) if out.strip() else None


class Citizens:
    """Citizens submitting applications at `rate` per second for `seconds`, one per IP version
    the portal has a service address in, from one Internet host (a context manager: whatever
    happens, none is left running)."""

    def __init__(self, plan: EmulationPlan, pids: dict[str, int], dep: Deployment, citizen: str, rate: float,
                 seconds: float):
        ca = str(workdir(plan.prefix) / "ca.crt")
        self.seconds, self.procs = seconds, {}
        h = plan.hosts[plan.node(citizen)]
        for v in dep.service_addresses():
            if (h.ipv4 if v == 4 else h.ipv6) is not None:
                self.procs[FAMILIES[v]] = client(pids[h.name], {"url": f"{dep.url(v)}/api/applications", "ca": ca,
                                                                "rate": rate, "seconds": seconds}, plan.prefix)

    def __enter__(self) -> "Citizens":
        return self

    def collect(self) -> dict[str, list]:
        """Each citizen's attempts, once they have all finished."""
        return {family: json.loads(p.communicate(timeout=self.seconds + 60)[0]) for family, p in self.procs.items()}

    def __exit__(self, *exc) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


def citizens(sc: Scenario, plan: EmulationPlan) -> list[str]:
    """The Internet hosts (dual-stack where the scenario makes them so): citizens and the monitor."""
    return [h.label for h in plan.hosts.values() if sc.sites[h.site].kind == "internet" and h.ipv4]


def _portal(plan: EmulationPlan, label: str) -> tuple[int, str, str]:
    return plan.node(label), f"{plan.node(label)}-eth0", host(plan, label).mac


def take_over(plan: EmulationPlan, pids: dict[str, int], dep: Deployment) -> None:
    """The standby portal holds the service addresses and announces them (gratuitous ARP,
    unsolicited neighbour advertisement): the controller moves them in the fabric."""
    name, intf, mac = _portal(plan, dep.standby.servers["cong-dvc"])
    try:
        announce.hold(pids[name], intf, mac, list(dep.service_addresses().values()))
    except OSError as exc:
        raise LabError(f"address takeover on {dep.standby.servers['cong-dvc']} failed: {exc}") from None


def give_back(plan: EmulationPlan, pids: dict[str, int], dep: Deployment) -> bool:
    """Undo an address takeover, if one happened: the standby portal drops the service addresses
    and the primary portal announces them again, so every address is on the host the plan puts it
    on (else, with the primary DC back, two hosts answer for it and its replies go astray)."""
    name, intf, _ = _portal(plan, dep.standby.servers["cong-dvc"])
    if not announce.release(pids[name], intf, list(dep.service_addresses().values())):
        return False  # it holds none: no drill took them over
    name, intf, mac = _portal(plan, dep.primary.servers["cong-dvc"])
    announce.announce(pids[name], intf, mac, list(dep.service_addresses().values()))
    return True


def monitor(plan: EmulationPlan, pids: dict[str, int], dep: Deployment, label: str, interval_s: float,
            misses: int) -> subprocess.Popen:
    ca = str(workdir(plan.prefix) / "ca.crt")
    return client(pids[plan.node(label)], {"mode": "monitor", "url": f"{dep.url(4)}/health", "ca": ca,
                                           "interval": interval_s, "misses": misses}, plan.prefix)


def promote(plan: EmulationPlan, pids: dict[str, int], label: str) -> None:
    root = data_dir(plan.prefix) / label
    r = subprocess.run([*netns.command(pids[plan.node(label)]), "runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl",
                        "promote", "-w", "-t", "60", "-D", f"{root}/pg/data"], capture_output=True, text=True)
    if r.returncode:
        raise LabError(f"promoting {label} failed: {r.stderr.strip() or r.stdout.strip()}")


def figures(plan: EmulationPlan, pids: dict[str, int], db: str, attempts: dict[str, list], since: float) -> dict:
    """Each citizen's figures against what database `db` holds, and the service's (`combine`)."""
    acked = [a[3] for runs in attempts.values() for a in runs if a[2] == 201 and a[3]]
    held = present(pids[plan.node(db)], str(data_dir(plan.prefix) / db), acked)
    families = {family: analyse(runs, since, held) for family, runs in attempts.items()}
    return {**combine(families), "families": families}


def run(sc: Scenario, plan: EmulationPlan, pids: dict[str, int], dep: Deployment, *, fail: str,
        seconds: float = 40.0, warmup_s: float = 8.0, rate: float = 10.0, detect_interval_s: float = 0.5,
        detect_misses: int = 3, progress=print) -> DrillResult:
    if fail != dep.primary.dc:
        raise LabError(f"--fail {fail}: the drill fails over the primary DC ('{dep.primary.dc}') to "
                       f"'{dep.standby.dc}'")
    internet = citizens(sc, plan)
    if len(internet) < 2:
        raise LabError("the drill needs two Internet hosts (a citizen and the health monitor)")
    with Citizens(plan, pids, dep, internet[0], rate, seconds) as load:
        time.sleep(warmup_s)
        watch = monitor(plan, pids, dep, internet[1], detect_interval_s, detect_misses)
        try:
            record = faults.inject(plan, "dc-down", fail)
            progress(f"{record.iso} dc-down {fail}: {len(record.interfaces)} interfaces")
            detected = float(watch.communicate(timeout=120)[0].strip())
        finally:
            if watch.poll() is None:
                watch.kill()
        progress(f"failure detected after {detected - record.time:.1f} s ({detect_misses} missed health checks)")
        standby_db = dep.standby.servers["csdl"]
        promote(plan, pids, standby_db)
        promoted = time.time()
        progress(f"{standby_db} promoted after {promoted - record.time:.1f} s")
        take_over(plan, pids, dep)
        redirected = time.time()
        progress(f"{dep.standby.servers['cong-dvc']} took over {', '.join(dep.service_addresses().values())} "
                 f"after {redirected - record.time:.1f} s")
        attempts = load.collect()
    stats = figures(plan, pids, standby_db, attempts, record.time)
    return DrillResult(dep.replication, fail, record.time, round(detected - record.time, 3),
                       round(promoted - record.time, 3), round(redirected - record.time, 3), **stats)
