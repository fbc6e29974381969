#!/usr/bin/env python3
"""The SDN controller on the full Đồng Tháp province, as root (writes benchmarks/results/sdn_failover.json):

- time from controller start until every switch holds its rules (confirmed by a barrier): at
  first bring-up, and after a controller restart on a running lab (the switches reconnect with
  Open vSwitch's backoff; the controller reads what each holds and sends only what differs);
- failover outage over 20 cuts of districts' primary uplinks under a 1 ms UDP probe (p50, p95,
  max) against the 50 ms carrier protection target, and in the same run the same 20 cuts on the
  same network run as reactive MAC-learning switches (Open vSwitch standalone, with RSTP: a
  learning switch needs a spanning tree on a meshed network, or it floods in loops);
- the same 20 cuts under the controller with the switches spread over 24 and over 48 Open vSwitch
  daemons (`--ovs-shards`), each in its own network namespace;
- what bounds that outage here: how long one link event keeps ovs-vswitchd's main loop busy with
  the province's 210 bridges, and its bridge reconfigurations per cut (see
  benchmarks/ovs_bridges_per_daemon.py for why, and what sharding the daemon would change).

Usage: sudo .venv/bin/python benchmarks/sdn_failover.py [--cuts 20] [--ovs-shards 24 48]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 50.0


def primary_uplinks(sc) -> list[str]:
    """Districts' primary uplinks whose site has a second (backup) uplink to fail over to."""
    by_site: dict[str, list] = {}
    for link in sc.links:
        by_site.setdefault(link.a, []).append(link)
    return [l.name for site, links in by_site.items() if len(links) >= 2 and sc.sites[site].kind == "district"
            for l in links if l.role == "primary"]


def cut_series(lab, links: list[str], cuts: int) -> list[dict]:
    from egovlab.topology import probes
    from ovs_bridges_per_daemon import reconfigures
    system_daemon = lab.ovs_shards == 1  # the reconfigurations counted are the system daemon's

    pids = lab.pids
    out = []
    for i in range(cuts):
        link = links[i % len(links)]
        src, dst, port = probes.failover_pair(lab.scenario, lab.plan, link)
        before = reconfigures() if system_daemon else 0
        res = probes.failover_probe(lab.plan, pids, link, src, dst, port=port, seconds=3.0, cut_after=1.0)
        out.append({"link": link, "outage_ms": round(res.outage_ms, 1), "lost": res.lost, "sent": res.sent,
                    **({"bridge_reconfigures": reconfigures() - before} if system_daemon else {})})
        time.sleep(3.0)  # the restored link settles (RSTP re-converges, the controller re-optimises)
    return out


def summary(series: list[dict]) -> dict:
    o = sorted(r["outage_ms"] for r in series)
    p95 = o[min(len(o) - 1, round(0.95 * (len(o) - 1)))]
    return {"cuts": len(o), "p50_ms": round(statistics.median(o), 1), "p95_ms": p95, "max_ms": o[-1],
            "within_target": sum(x <= TARGET_MS for x in o)}


def main() -> None:
    from egovlab import lifecycle
    from egovlab.inventory import loader
    from egovlab.sdn import launcher
    from egovlab.topology import cleanup
    from ovs_bridges_per_daemon import main_loop_stall
    from egovlab.topology.model import emulation_plan
    from egovlab.topology.network import Lab

    ap = argparse.ArgumentParser()
    ap.add_argument("--cuts", type=int, default=20)
    ap.add_argument("--ovs-shards", type=int, nargs="+", default=[24, 48],
                    help="the sharded runs' Open vSwitch daemons (one run each)")
    args = ap.parse_args()
    prefix = "eb"
    sc = loader.load("dongthap")
    plan = emulation_plan(sc, prefix=prefix)
    links = primary_uplinks(sc)
    result: dict = {"benchmark": "sdn_failover", "scenario": "dongthap", "switches": len(plan.switches),
                    "hosts": len(plan.hosts), "target_ms": TARGET_MS, "links": links}
    cleanup.remove_lab(prefix)
    ctl = None
    try:
        t0 = time.monotonic()
        ctl, port = launcher.start("dongthap", prefix=prefix, hosts_per_site=None, log="/tmp/egovlab-eb-controller.log")
        listening = time.monotonic()
        lab = Lab(sc, plan, controller=("127.0.0.1", port))
        lab.start()
        started = time.monotonic()
        status = launcher.wait_programmed(prefix, len(plan.switches))
        programmed = time.monotonic()
        result["first_start"] = {"controller_listening_s": round(listening - t0, 2),
                                 "lab_built_s": round(started - listening, 2),
                                 "programmed_after_lab_built_s": round(programmed - started, 2),
                                 "controller_start_to_all_programmed_s": round(programmed - t0, 2),
                                 "rules": status["rules"], "groups": status["groups"]}
        time.sleep(10)  # ovs-vswitchd is still digesting 70,000 flow mods after the last barrier
        result["ovs_main_loop"] = main_loop_stall()
        sdn = cut_series(lab, links, args.cuts)
        # then a restart on the running lab: the switches reconnect with Open vSwitch's backoff
        os.killpg(ctl.pid, signal.SIGKILL)
        ctl.wait()
        restarted = time.time()
        t1 = time.monotonic()
        ctl, _ = launcher.start("dongthap", prefix=prefix, hosts_per_site=None, port=port,
                                log="/tmp/egovlab-eb-controller.log")
        status = launcher.wait_programmed(prefix, len(plan.switches), since=restarted)
        # a warm start: each switch is read back and sent only what differs (0 on an intact lab)
        result["restart"] = {"controller_start_to_all_programmed_s": round(time.monotonic() - t1, 2),
                             "rule_changes_sent": status["resync_rule_changes"]}
        lab.stop()
        os.killpg(ctl.pid, signal.SIGKILL)
        ctl = None
        result["sdn"] = {**summary(sdn), "series": sdn}

        lab = Lab(sc, plan)  # the baseline: the same network, standalone learning switches + RSTP
        lab.start()
        time.sleep(10)
        base = cut_series(lab, links, args.cuts)
        lab.stop()
        result["learning_switch_rstp"] = {**summary(base), "series": base}

        # the same cuts under the controller with the switches spread over several daemons
        result["sdn_sharded"] = []
        for shards in args.ovs_shards:
            t2 = time.monotonic()
            with lifecycle.session("dongthap", lifecycle.spec(prefix, ovs_shards=shards)) as lab:
                up_s = time.monotonic() - t2
                time.sleep(10)
                sharded = cut_series(lab, links, args.cuts)
            result["sdn_sharded"].append({"ovs_shards": shards, "up_and_programmed_s": round(up_s, 1),
                                          **summary(sharded), "series": sharded})
        result["ratio_p50"] = round(result["sdn"]["p50_ms"] / max(result["learning_switch_rstp"]["p50_ms"], 0.1), 2)
    finally:
        if ctl is not None and ctl.poll() is None:
            os.killpg(ctl.pid, signal.SIGKILL)
        cleanup.remove_lab(prefix)
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "sdn_failover.json").write_text(json.dumps(result, indent=2) + "\n")
    brief = lambda run: {k: v for k, v in run.items() if k != "series"}  # noqa: E731
    print(json.dumps({k: v for k, v in result.items() if k not in ("links",)}
                     | {run: brief(result[run]) for run in ("sdn", "learning_switch_rstp")}
                     | {"sdn_sharded": [brief(run) for run in result["sdn_sharded"]]}, indent=2))


if __name__ == "__main__":
    main()
