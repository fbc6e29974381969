#!/usr/bin/env python3
"""Compile time and rule counts of the SDN compiler: the Đồng Tháp province and a synthetic one
about four times its size (same run). Writes benchmarks/results/sdn_compile.json."""
from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def measure(sc) -> dict:
    from egovlab.sdn.compiler import compile_network
    from egovlab.topology.model import emulation_plan

    plan = emulation_plan(sc)
    t0 = time.perf_counter()
    programs = compile_network(sc, plan)
    wall = time.perf_counter() - t0
    rules = sum(len(p.rules) for p in programs.values())
    return {"switches": len(plan.switches), "hosts": len(plan.hosts), "rules": rules,
            "groups": sum(len(p.groups) for p in programs.values()),
            "max_rules_per_switch": max(len(p.rules) for p in programs.values()), "compile_s": round(wall, 3)}


def main() -> None:
    from egovlab.inventory import loader
    from egovlab.inventory.synthetic import synthetic_province

    base = measure(loader.load("dongthap"))
    big = measure(loader.load_text(yaml.safe_dump(synthetic_province(48, 15, departments=88, hosts_per_site=1)),
                                   "synthetic"))
    result = {"benchmark": "sdn_compile", "dongthap": base, "synthetic_4x": big,
              "ratio_compile_s": round(big["compile_s"] / base["compile_s"], 2),
              "ratio_rules": round(big["rules"] / base["rules"], 2)}
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "sdn_compile.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
