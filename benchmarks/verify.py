#!/usr/bin/env python3
"""What the exhaustive answer costs: `egovlab verify` on the province and on a synthetic province
about four times its size (wall time, peak memory, equivalence classes, rule evaluations), each
in its own process; the province's redundant-link cuts (re-converged) verified one by one; and,
in the same run, the sampled answer: the probe matrix on the emulated province (root + Open
vSwitch; skipped without them). Writes benchmarks/results/verify.json."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def one(which: str) -> dict:
    """Runs in a child: one verification, its figures and the child's peak memory."""
    import yaml

    from egovlab.inventory import loader
    from egovlab.inventory.policy import Intent
    from egovlab.inventory.synthetic import synthetic_province
    from egovlab.sdn import compiler, verify
    from egovlab.topology.model import emulation_plan

    sc = loader.load("dongthap") if which == "dongthap" else loader.load_text(
        yaml.safe_dump(synthetic_province(48, 15, departments=88, hosts_per_site=1)), "synthetic-4x")
    plan = emulation_plan(sc)
    t0 = time.perf_counter()
    programs = compiler.compile_network(sc, plan)
    t1 = time.perf_counter()
    report = verify.verify(Intent(sc), plan, programs)
    t2 = time.perf_counter()
    s = report.summary()
    return {"hosts": len(plan.hosts), "switches": len(plan.switches), "rules": s["rules"], "classes": s["classes"],
            "rule_evaluations": s["rule_evaluations"], "differences": s["differences"], "equal": s["equal"],
            "compile_s": round(t1 - t0, 2), "verify_s": round(t2 - t1, 2),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def cuts() -> dict:
    from egovlab.inventory import loader
    from egovlab.inventory.graph import redundant_links
    from egovlab.inventory.policy import Intent
    from egovlab.sdn import verify
    from egovlab.topology.model import emulation_plan

    sc = loader.load("dongthap")
    plan = emulation_plan(sc)
    redundant = redundant_links(sc)
    out = {"links": len(redundant), "equal_after_reconvergence": 0, "equal_with_fast_failover_only": 0,
           "classes_lost_before_reconvergence": {}}
    t0 = time.perf_counter()
    for link in redundant:
        programs, down = verify.program(sc, plan, [link], reconverged=True)
        out["equal_after_reconvergence"] += verify.verify(Intent(sc), plan, programs, down, [link]).equal
        programs, down = verify.program(sc, plan, [link])
        ff = verify.verify(Intent(sc), plan, programs, down, [link])
        out["equal_with_fast_failover_only"] += ff.equal
        out["classes_lost_before_reconvergence"][link] = len(ff.differences)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def matrix() -> dict | None:
    if os.geteuid() != 0:
        return None
    from egovlab import lifecycle
    from egovlab.topology import probes

    with lifecycle.session("dongthap", lifecycle.spec("eq", ovs_shards=24)) as lab:
        pids = lab.pids
        planned = probes.matrix_plan(lab.scenario, lab.plan)
        t0 = time.perf_counter()
        results = probes.run_matrix(planned, pids, lab.plan.by_label, lab.plan.prefix)
        wall = time.perf_counter() - t0
    return {"probes": len(results), "wall_s": round(wall, 1), "differ": sum(r.differs for r in results)}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2])))
        return
    runs = {}
    for which in ("dongthap", "synthetic-4x"):
        r = subprocess.run([sys.executable, __file__, "--one", which], capture_output=True, text=True, check=True)
        runs[which] = json.loads(r.stdout)
        print(which, runs[which], flush=True)
    base, big = runs["dongthap"], runs["synthetic-4x"]
    result = {"benchmark": "verify", **runs,
              "ratio_rules": round(big["rules"] / base["rules"], 2),
              "ratio_verify_s": round(big["verify_s"] / base["verify_s"], 2),
              "ratio_rule_evaluations": round(big["rule_evaluations"] / base["rule_evaluations"], 2),
              "redundant_cuts": cuts()}
    print("cuts", result["redundant_cuts"], flush=True)
    result["probe_matrix"] = matrix()
    if result["probe_matrix"]:
        result["ratio_verify_to_matrix_s"] = round(base["verify_s"] / result["probe_matrix"]["wall_s"], 3)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "verify.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "redundant_cuts"}, indent=1))


if __name__ == "__main__":
    main()
