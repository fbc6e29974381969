#!/usr/bin/env python3
"""NAPALM through Nornir against the whole Đồng Tháp province, as root
(writes benchmarks/results/napalm_gather.json):

get_facts + get_lldp_neighbors from every device (210 switches, 260 hosts) with Nornir's threaded
runner and the egovlab NAPALM driver, against the same two calls per device made directly on
the control API with the same number of threads, in the same run (ratio). The driver's open()
makes one call more per device (it checks the device and the token). Then one policy change
through the driver: load + compare, commit (the controller recompiles and updates 210
switches), rollback.

Usage: sudo .venv/bin/python benchmarks/napalm_gather.py [--workers 20]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import time

import httpx
from api_lab import ROOT, served_lab


def direct(api: str, token: str, lab: str, names: list[str], workers: int) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{api}/api/v1/labs/{lab}", headers=headers, timeout=120,
                      limits=httpx.Limits(max_connections=workers)) as c:
        def both(name: str) -> bool:
            return all(c.get(f"/devices/{name}/{g}").status_code == 200 for g in ("facts", "lldp_neighbors"))

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            ok = sum(pool.map(both, names))
        return {"devices": len(names), "ok": ok, "seconds": round(time.perf_counter() - t0, 2)}


def nornir(api: str, token: str, lab: str, workers: int) -> dict:
    from nornir import InitNornir
    from nornir_napalm.plugins.tasks import napalm_get

    nr = InitNornir(runner={"plugin": "threaded", "options": {"num_workers": workers}}, logging={"enabled": False},
                    inventory={"plugin": "EgovlabInventory", "options": {"lab": lab, "token": token, "api": api}})
    t0 = time.perf_counter()
    result = nr.run(task=napalm_get, getters=["facts", "lldp_neighbors"])
    seconds = time.perf_counter() - t0
    neighbours = sum(len(r[0].result["lldp_neighbors"]) for r in result.values() if not r.failed)
    return {"devices": len(result), "ok": len(result) - len(result.failed_hosts), "seconds": round(seconds, 2),
            "lldp_adjacencies": neighbours}


def policy_change(api: str, token: str, lab: str) -> dict:
    """One policy change through the driver on the province: compare, commit, roll back (seconds each)."""
    import napalm

    cls = napalm.get_network_driver("egovlab")
    times = {}
    with cls("provincial-dc:db", "egovlab", token, optional_args={"lab": lab, "api": api}) as d:
        t0 = time.perf_counter()
        d.load_merge_candidate(config="- {from: kind:commune, to: service:csdl}\n")
        diff = d.compare_config()
        times["load_and_compare_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        d.commit_config()
        times["commit_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        d.rollback()
        times["rollback_s"] = round(time.perf_counter() - t0, 2)
    times["diff_lines"] = len(diff.splitlines())
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=20)
    ap.add_argument("--prefix", default="nb")
    args = ap.parse_args()
    with served_lab(args.prefix) as (api, token, up_s):
        names = [d["name"] for d in httpx.get(f"{api}/api/v1/labs/{args.prefix}/devices", timeout=60,
                                              headers={"Authorization": f"Bearer {token}"}).json()]
        baseline = direct(api, token, args.prefix, names, args.workers)
        gathered = nornir(api, token, args.prefix, args.workers)
        change = policy_change(api, token, args.prefix)
    result = {"workers": args.workers, "lab_up_via_api_s": up_s, "direct_api": baseline, "nornir_napalm": gathered,
              "policy_change": change,
              "ratio_nornir_over_direct": round(gathered["seconds"] / baseline["seconds"], 2)}
    (ROOT / "benchmarks" / "results" / "napalm_gather.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
