#!/usr/bin/env python3
"""The service after the primary database's Open vSwitch daemon restarts, as root (writes
benchmarks/results/stateful_restart.json): the province over 24 daemons, the services deployed
(synchronous replication), citizens submitting at 5/s over each IP family. The daemon restarted
`--runs` times at each standby status interval, alternating: PostgreSQL's default of 10 s (the
baseline, set on the standby with ALTER SYSTEM) and the 1 s the role deploys. A restarted daemon's
conntrack is empty, and only the standby (the WAL connection's client) can re-open its state.

Per restart, from the restart: the network back (the daemon's switches reprogrammed), the first
acknowledgement of a submission sent after the restart, the last failed submission's sending.

Usage: sudo .venv/bin/python benchmarks/stateful_restart.py [--runs 5]
"""
from __future__ import annotations

import argparse
import statistics

import figures

SETTINGS = {"10s": "PostgreSQL's default (baseline)", "1s": "deployed (the role's postgresql.conf)"}


def main() -> None:
    from egovlab import lifecycle, soak
    from egovlab.services import deploy, failback

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rows = {k: [] for k in SETTINGS}
    with lifecycle.session("dongthap", lifecycle.spec("eb", ovs_shards=24)) as lab:
        dep, _ = deploy.deploy(lab.scenario, lab.plan, lab.pids, replication="sync", progress=lambda *_: None)
        run = soak.Soak(lab, dep, hold_s=1.0, rate=5, progress=print)
        run.runner.baseline()
        standby = dep.standby.servers["csdl"]
        restart = soak.Fault("ovs-restart", run.daemon_of(dep.primary.servers["csdl"]))
        for i in range(args.runs):
            for setting in SETTINGS:
                failback.sql(lab.plan, lab.pids, standby,
                             f"ALTER SYSTEM SET wal_receiver_status_interval = '{setting}'; SELECT pg_reload_conf();")
                loaded = run.under_load(restart, after_s=20.0)
                every = [a for attempts in loaded.attempts.values() for a in attempts if a[0] >= loaded.began]
                acked = [a[1] for a in every if a[2] == 201]
                failed = [a[0] for a in every if a[2] != 201]
                row = {"network_back_s": round(loaded.repaired - loaded.began, 2),
                       "first_ack_s": round(min(acked) - loaded.began, 2) if acked else None,
                       "last_failed_sent_s": round(max(failed) - loaded.began, 2) if failed else None,
                       "attempts": len(every), "acknowledged": len(acked)}
                rows[setting].append(row)
                print(f"[{i + 1}/{args.runs}] wal_receiver_status_interval={setting}: {row}")
    out = {"scenario": "dongthap", "daemon": restart.target, "runs": args.runs, "rate_per_s": 5,
           "settings": {k: {"meaning": SETTINGS[k], "restarts": rows[k],
                            "first_ack_median_s": statistics.median(r["first_ack_s"] for r in rows[k]
                                                                    if r["first_ack_s"] is not None)}
                        for k in SETTINGS}}
    figures.write("stateful_restart", out)


if __name__ == "__main__":
    main()
