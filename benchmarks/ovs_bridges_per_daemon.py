#!/usr/bin/env python3
"""Why a cut link costs more than 50 ms at province scale here: bridges per ovs-vswitchd, measured.

Every link event in ovs-vswitchd's network namespace (a veth losing carrier, or one appearing)
makes it reconfigure every bridge it runs (`bridge_reconfigure`, one of its coverage counters),
on the main thread that, with the userspace datapath, also forwards every packet. So the outage
of a cut grows with the number of bridges one daemon carries, not with the path that is cut.

small-dc (10 switches, a UDP service added for the probe) runs under egovlab's controller in the
system's ovs-vswitchd. Beside it go N idle bridges of 5 veth ports each (the province's switches
average 5 ports): in the same daemon, or in a second ovs-vswitchd in its own network namespace,
as `--ovs-shards` runs them (topology/ovs_shards.py). For each case (writes
benchmarks/results/ovs_bridges_per_daemon.json):
- failover outage over 10 cuts of town--core-1 under the 1 ms probe (p50, max);
- bridge reconfigurations per cut (coverage counter `bridge_reconfigure`);
- how long one unrelated link event keeps the lab's daemon busy: an `ovs-appctl version` round
  trip right after a veth pair appears, against the same round trip when nothing happens.

Usage: sudo .venv/bin/python benchmarks/ovs_bridges_per_daemon.py [--cuts 10]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "ez"
LINK = "town--core-1"
IDLE = "ezidle"  # idle bridges ezidle<i>, their ports ezi<i>p<k> / ezi<i>q<k>
SHARD_PREFIX = "ezx"  # the idle bridges' second daemon: namespace ezx-ovs1
PORTS_PER_BRIDGE = 5


def run(*cmd: str, ns: str | None = None) -> str:
    if ns:
        cmd = ("ip", "netns", "exec", ns, *cmd)
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def vsctl(db: str | None, *args: str) -> None:
    run("ovs-vsctl", *((f"--db={db}",) if db else ()), "--timeout=60", *args)


def add_idle(n: int, db: str | None = None, ns: str | None = None) -> None:
    """n bridges on the userspace datapath, each with 5 ports whose veth peers stay unattached."""
    if not n:
        return
    args: list[str] = []
    for i in range(n):
        args += ["--", "add-br", f"{IDLE}{i}", "--", "set", "bridge", f"{IDLE}{i}", "datapath_type=netdev",
                 "fail_mode=secure"]
    vsctl(db, *args)
    args = []
    for i in range(n):
        for k in range(PORTS_PER_BRIDGE):
            p, q = f"ezi{i}p{k}", f"ezi{i}q{k}"
            run("ip", *(("-n", ns) if ns else ()), "link", "add", p, "type", "veth", "peer", "name", q)
            run("ip", *(("-n", ns) if ns else ()), "link", "set", p, "up")
            run("ip", *(("-n", ns) if ns else ()), "link", "set", q, "up")
            args += ["--", "add-port", f"{IDLE}{i}", p]
    vsctl(db, *args)


def remove_idle(n: int) -> None:
    """The idle bridges and veths in the system's daemon, by name."""
    if n:
        vsctl(None, *[a for i in range(n) for a in ("--", "--if-exists", "del-br", f"{IDLE}{i}")])
    for i in range(n):
        for k in range(PORTS_PER_BRIDGE):
            subprocess.run(["ip", "link", "del", f"ezi{i}p{k}"], capture_output=True)


def start_shard():
    """A second ovsdb-server + ovs-vswitchd in its own network namespace, as `--ovs-shards` runs
    them (topology.ovs_shards). Returns the shard."""
    from egovlab.topology import ovs_shards

    ovs_shards.remove(SHARD_PREFIX)
    shard = ovs_shards.Shard(SHARD_PREFIX, 1)
    shard.start()
    return shard


def stop_shard() -> None:
    from egovlab.topology import ovs_shards
    from egovlab.topology.state import state_dir

    ovs_shards.remove(SHARD_PREFIX)
    shutil.rmtree(state_dir(SHARD_PREFIX), ignore_errors=True)


def reconfigures() -> int:
    return int(run("ovs-appctl", "coverage/read-counter", "bridge_reconfigure"))


def appctl_ms() -> float:
    t = time.monotonic()
    run("ovs-appctl", "version")
    return (time.monotonic() - t) * 1000


def main_loop_stall(events: int = 8) -> dict:
    """ovs-appctl round trips of the system daemon: quiet, and right after a veth pair appears."""
    quiet = [appctl_ms() for _ in range(events)]
    busy = []
    for _ in range(events):
        run("ip", "link", "add", "ezstall", "type", "veth", "peer", "name", "ezstall-p")
        busy.append(appctl_ms())
        run("ip", "link", "del", "ezstall")
        time.sleep(0.5)
    return {"appctl_quiet_p50_ms": round(statistics.median(quiet), 1),
            "appctl_after_link_event_p50_ms": round(statistics.median(busy), 1)}


def cuts(lab, n: int) -> dict:
    from egovlab.topology import faults, probes

    pids = lab.pids
    src, dst, port = probes.failover_pair(lab.scenario, lab.plan, LINK)
    outages, recs = [], []
    for _ in range(n):
        before = reconfigures()
        res = probes.failover_probe(lab.plan, pids, LINK, src, dst, port=port, seconds=3.0, cut_after=1.0,
                                    restore=False)
        recs.append(reconfigures() - before)  # the cut's reconfigurations only (the link is still down)
        faults.inject(lab.plan, "link-up", LINK)
        outages.append(res.outage_ms)
        time.sleep(2.0)  # the controller re-optimises after the repair before the next cut
    outages.sort()
    return {"cuts": n, "outage_p50_ms": round(statistics.median(outages), 1), "outage_max_ms": round(outages[-1], 1),
            "within_50ms": sum(o <= 50 for o in outages), "reconfigures_per_cut": statistics.median(recs),
            "outages_ms": [round(o, 1) for o in outages]}


def small_udp_scenario(tmp: Path) -> Path:
    """small-dc with a UDP port on the portal, which the policy lets the district reach (the probe's)."""
    text = (ROOT / "tests" / "scenarios" / "small-dc.yml").read_text()
    text = text.replace("portal: {zone: dmz, ports: [tcp/443]", "portal: {zone: dmz, ports: [tcp/443, udp/10000]")
    assert "udp/10000" in text
    path = tmp / "small-udp.yml"
    path.write_text(text)
    return path


def main() -> None:
    from egovlab import lifecycle
    from egovlab.inventory import loader
    from egovlab.topology.model import emulation_plan

    ap = argparse.ArgumentParser()
    ap.add_argument("--cuts", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (the lab needs it)")
    tmp = Path(tempfile.mkdtemp(prefix="egovlab-bench-"))
    scenario = small_udp_scenario(tmp)
    sc = loader.load(scenario)
    plan = emulation_plan(sc, prefix=PREFIX)
    cases = [("same daemon", n) for n in (0, 50, 100, 200)] + [("second daemon, own netns", 200)]
    result: dict = {"benchmark": "ovs_bridges_per_daemon", "scenario": "small-dc + udp/10000",
                    "lab_switches": len(plan.switches), "ports_per_idle_bridge": PORTS_PER_BRIDGE,
                    "link": LINK, "target_ms": 50.0, "cases": []}
    idle_here = 0
    try:
        with lifecycle.session(scenario, lifecycle.spec(PREFIX)) as lab:
            for where, n in cases:
                if where == "same daemon":
                    add_idle(n)
                    idle_here = n
                else:
                    shard = start_shard()
                    add_idle(n, db=f"unix:{shard.rundir}/db.sock", ns=shard.netns)
                time.sleep(5)
                case = {"idle_bridges": n, "where": where, **main_loop_stall(), **cuts(lab, args.cuts)}
                print(json.dumps({k: v for k, v in case.items() if k != "outages_ms"}), flush=True)
                result["cases"].append(case)
                if where == "same daemon":
                    remove_idle(idle_here)
                    idle_here = 0
                else:
                    stop_shard()
    finally:
        remove_idle(idle_here)
        stop_shard()
        shutil.rmtree(tmp, ignore_errors=True)
    out = ROOT / "benchmarks" / "results" / "ovs_bridges_per_daemon.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
