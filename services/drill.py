"""The failover drill against the real services: citizens keep submitting, the primary DC goes
dark, the standby is promoted and takes over the portal's address; RTO and RPO as measured.

`analyse` is pure (unit-tested); `run` drives the lab (faults, namespaces, PostgreSQL).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass

from egovlab.inventory.scenario import Scenario
from egovlab.topology import faults, netns
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
    redirected_s: float  # the standby portal holds the service address
    rto_s: float | None  # first acknowledged submission sent after the failure, minus the failure time
    attempts: int
    acknowledged: int
    failed_during_outage: int  # submissions that got no acknowledgement after the failure
    lost: int  # acknowledged, but missing from the promoted database
    rpo_s: float  # the failure time minus the earliest lost acknowledgement (0: nothing lost)
    prediction: dict | None = None


def analyse(attempts: list, fail_time: float, present: set[str]) -> dict:
    """attempts: [sent, done, status, id]; present: the acknowledged ids the promoted DB holds."""
    acked = [a for a in attempts if a[2] == 201 and a[3]]
    after = [a for a in attempts if a[0] >= fail_time]
    recovered = next((a for a in sorted(after) if a[2] == 201), None)
    lost = [a for a in acked if a[3] not in present]
    return {"rto_s": round(recovered[1] - fail_time, 3) if recovered else None,
            "attempts": len(attempts), "acknowledged": len(acked),
            "failed_during_outage": sum(1 for a in after if a[2] != 201 and (recovered is None or a[0] < recovered[0])),
            "lost": len(lost), "rpo_s": round(max(0.0, fail_time - min(a[1] for a in lost)), 3) if lost else 0.0}


def _pg(pid: int, root: str, sql: str) -> str:
    r = subprocess.run([*netns.command(pid), "runuser", "-u", "postgres", "--", f"{PG_BIN}/psql", "-h", f"{root}/pg/run",
                        "-d", "egov", "-tAq", "-v", "ON_ERROR_STOP=1"], input=sql, capture_output=True, text=True,
                       timeout=30)
    if r.returncode:
        raise LabError(f"psql failed: {r.stderr.strip()}")
    return r.stdout


MONITOR = """
import sys, time, httpx
url, ca, interval, needed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
misses = 0
with httpx.Client(verify=ca, timeout=interval) as c:
    while misses < needed:
        t = time.time()
        try:
            misses = 0 if c.get(url).status_code == 200 else misses + 1
        except httpx.HTTPError:
            misses += 1
        time.sleep(max(0.0, t + interval - time.time()))
print(time.time())
"""


HEALTHY = """
import sys, time, httpx
url, ca, within = sys.argv[1], sys.argv[2], float(sys.argv[3])
t0 = time.monotonic()
with httpx.Client(verify=ca, timeout=2) as c:
    while time.monotonic() - t0 <= within:
        try:
            r = c.get(url)
            if r.status_code == 200 and r.json().get("status") == "ok":
                print(time.monotonic() - t0)
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
"""


def healthy_after(pid: int, url: str, ca: str, within_s: float) -> float | None:
    """Seconds until `url` answers 200 with status ok, asked from the namespace of `pid`; None
    if it did not within `within_s`."""
    r = subprocess.run([*netns.command(pid), sys.executable, "-c", HEALTHY, url, ca, str(within_s)],
                       capture_output=True, text=True, timeout=within_s + 30)
    return float(r.stdout) if r.stdout.strip() else None


def give_back(plan: EmulationPlan, pids: dict[str, int], dep: Deployment) -> bool:
    """Undo a drill's address takeover, if one happened: the standby portal drops the service
    address and the primary portal announces it again, so every address is on the host the plan
    puts it on (else, with the primary DC back, two hosts answer for it and its replies go astray).
    The databases stay as the drill left them, the standby promoted: deploy again to drill again."""
    web = host(plan, dep.standby.servers["cong-dvc"])
    r = subprocess.run([*netns.command(pids[web.name]), "ip", "addr", "del", f"{dep.service_address}/32", "dev",
                        f"{web.name}-eth0"], capture_output=True, text=True)
    if r.returncode:
        return False  # it holds no such address: no drill took it over
    primary = host(plan, dep.primary.servers["cong-dvc"])
    subprocess.run([*netns.command(pids[primary.name]), "arping", "-q", "-U", "-c", "1", "-w", "1", "-I",
                    f"{primary.name}-eth0", dep.service_address], capture_output=True, text=True)
    return True


def run(sc: Scenario, plan: EmulationPlan, pids: dict[str, int], dep: Deployment, *, fail: str,
        seconds: float = 40.0, warmup_s: float = 8.0, rate: float = 10.0, detect_interval_s: float = 0.5,
        detect_misses: int = 3, progress=print) -> DrillResult:
    if fail != dep.primary.dc:
        raise LabError(f"--fail {fail}: the drill fails over the primary DC ('{dep.primary.dc}') to "
                       f"'{dep.standby.dc}'")
    prefix, d = plan.prefix, workdir(plan.prefix)
    ca = str(d / "ca.crt")
    citizens = [h for h in plan.hosts.values() if sc.sites[h.site].kind == "internet" and h.ipv4]
    if len(citizens) < 2:
        raise LabError("the drill needs two Internet hosts (a citizen and the health monitor)")
    citizen, monitor = citizens[0], citizens[1]
    url = f"https://{dep.service_address}"
    load = subprocess.Popen([*netns.command(pids[citizen.name]), sys.executable, "-m", "egovlab.services.loadgen",
                             json.dumps({"url": f"{url}/api/applications", "ca": ca, "rate": rate,
                                         "seconds": seconds}), f"egovlab-lab={prefix}"],
                            stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(warmup_s)
        watch = subprocess.Popen([*netns.command(pids[monitor.name]), sys.executable, "-c", MONITOR, f"{url}/health", ca,
                                  str(detect_interval_s), str(detect_misses), f"egovlab-lab={prefix}"],
                                 stdout=subprocess.PIPE, text=True)
        record = faults.inject(plan, "dc-down", fail)
        progress(f"{record.iso} dc-down {fail}: {len(record.interfaces)} interfaces")
        detected = float(watch.communicate(timeout=120)[0].strip())
        progress(f"failure detected after {detected - record.time:.1f} s ({detect_misses} missed health checks)")
        standby_db = host(plan, dep.standby.servers["csdl"])
        root = str(data_dir(prefix) / standby_db.label)
        r = subprocess.run([*netns.command(pids[standby_db.name]), "runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl",
                            "promote", "-w", "-t", "60", "-D", f"{root}/pg/data"], capture_output=True, text=True)
        if r.returncode:
            raise LabError(f"promoting {standby_db.label} failed: {r.stderr.strip() or r.stdout.strip()}")
        promoted = time.time()
        progress(f"{standby_db.label} promoted after {promoted - record.time:.1f} s")
        web = host(plan, dep.standby.servers["cong-dvc"])
        intf = f"{web.name}-eth0"
        for cmd in (["ip", "addr", "replace", f"{dep.service_address}/32", "dev", intf],
                    ["arping", "-q", "-U", "-c", "1", "-w", "1", "-I", intf, dep.service_address]):
            r = subprocess.run([*netns.command(pids[web.name]), *cmd], capture_output=True, text=True)
            if r.returncode and cmd[0] == "ip":
                raise LabError(f"address takeover on {web.label} failed: {r.stderr.strip()}")
        redirected = time.time()
        progress(f"{web.label} took over {dep.service_address} after {redirected - record.time:.1f} s")
        attempts = json.loads(load.communicate(timeout=seconds + 60)[0])
    finally:
        if load.poll() is None:
            load.kill()
    acked = [a[3] for a in attempts if a[2] == 201 and a[3]]
    present: set[str] = set()
    if acked:
        values = ",".join(f"('{i}'::uuid)" for i in acked)
        present = set(_pg(pids[standby_db.name], root,
                          f"SELECT a.id FROM (VALUES {values}) AS v(id) JOIN applications a ON a.id = v.id;").split())
    stats = analyse(attempts, record.time, present)
    return DrillResult(dep.replication, fail, record.time, round(detected - record.time, 3),
                       round(promoted - record.time, 3), round(redirected - record.time, 3), **stats)
