#!/usr/bin/env python3
"""Compile time and rule counts of the SDN compiler, the Đồng Tháp province and a synthetic one
about four times its size, against the compiler of BASELINE_COMMIT (forwarding by destination
MAC, one rule per host on every switch) in the same run. Writes benchmarks/results/sdn_compile.json."""
from __future__ import annotations

import baseline
import figures

BASELINE_COMMIT = "286a68d"  # the last compiler that forwarded by MAC
REPEATS = 5

MEASURE = """
import json, statistics, time
import yaml
from egovlab.inventory import loader
from egovlab.inventory.synthetic import synthetic_province
from egovlab.sdn.compiler import compile_network
from egovlab.topology.model import emulation_plan


def measure(sc) -> dict:
    plan = emulation_plan(sc)
    walls = []
    for _ in range({repeats}):
        t0 = time.perf_counter()
        programs = compile_network(sc, plan)
        walls.append(time.perf_counter() - t0)
    forward = sum(1 for p in programs.values() for r in p.rules if r.table == 2)
    return {{"switches": len(plan.switches), "hosts": len(plan.hosts), "sites": len(sc.sites),
            "rules": sum(len(p.rules) for p in programs.values()), "forwarding_rules": forward,
            "groups": sum(len(p.groups) for p in programs.values()),
            "max_rules_per_switch": max(len(p.rules) for p in programs.values()),
            "compile_s_median": round(statistics.median(walls), 3), "compile_s_min": round(min(walls), 3)}}


big = yaml.safe_dump(synthetic_province(48, 15, departments=88, hosts_per_site=1))
print(json.dumps({{"dongthap": measure(loader.load("dongthap")), "synthetic_4x": measure(loader.load_text(big, "synthetic"))}}))
""".format(repeats=REPEATS)


def main() -> None:
    now, before = baseline.run(None, MEASURE), baseline.run(BASELINE_COMMIT, MEASURE)
    result = {"benchmark": "sdn_compile", "repeats": REPEATS, "baseline": f"the compiler of {BASELINE_COMMIT}"}
    for name in ("dongthap", "synthetic_4x"):
        result[name] = {"now": now[name], "baseline": before[name],
                        "ratio_rules": round(now[name]["rules"] / before[name]["rules"], 3),
                        "speedup_compile": round(before[name]["compile_s_median"] / now[name]["compile_s_median"], 2)}
    figures.write("sdn_compile", result)


if __name__ == "__main__":
    main()
