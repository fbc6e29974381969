#!/usr/bin/env python3
"""Validate and plan a synthetic province of 10,000 sites; baseline: the Đồng Tháp file, same run.

Each measurement runs in a fresh interpreter so that peak memory (ru_maxrss) is its own.
Writes benchmarks/results/inventory_scale.json.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

WORKER = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from egovlab.inventory import loader
t_import = time.perf_counter() - t0
text = open(sys.argv[1]).read()
t1 = time.perf_counter()
sc = loader.load_text(text, sys.argv[1])
wall = time.perf_counter() - t1
print(json.dumps({"wall_s": wall, "import_s": t_import, "sites": len(sc.sites), "links": len(sc.links),
                  "blocks": len(sc.plan.allocations), "hosts": len(sc.plan.hosts),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(path: Path, repeat: int = 3) -> dict:
    runs = [json.loads(subprocess.check_output([sys.executable, "-c", WORKER, str(path)])) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["wall_s"])
    best["wall_s_runs"] = [round(r["wall_s"], 4) for r in runs]
    return best


def main() -> None:
    from egovlab.inventory.synthetic import synthetic_yaml

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "synthetic-10000.yml"
        # 4 infrastructure sites + 96 departments + 100 districts x 99 communes = 10,000 sites
        big.write_text(synthetic_yaml(districts=100, communes_per_district=98, departments=96))
        baseline = measure(ROOT / "inventory" / "dongthap.yml")
        figure = measure(big)
    result = {
        "benchmark": "inventory_scale",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "figure": {"what": "validate + plan a synthetic province", **figure},
        "baseline": {"what": "validate + plan inventory/dongthap.yml", **baseline},
        "ratio_wall": figure["wall_s"] / baseline["wall_s"],
        "ratio_per_site": (figure["wall_s"] / figure["sites"]) / (baseline["wall_s"] / baseline["sites"]),
        "target": "synthetic 10,000 sites under 2 s",
        "meets_target": figure["wall_s"] < 2.0,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "inventory_scale.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"synthetic: {figure['sites']} sites, {figure['links']} links, {figure['blocks']} blocks: "
          f"{figure['wall_s']:.3f} s, peak {figure['peak_rss_mib']:.0f} MiB")
    print(f"dongthap:  {baseline['sites']} sites: {baseline['wall_s']:.3f} s, peak {baseline['peak_rss_mib']:.0f} MiB")
    print(f"ratio {result['ratio_wall']:.1f}x wall, {result['ratio_per_site']:.2f}x per site; "
          f"target <2 s: {'met' if result['meets_target'] else 'NOT met'}")


if __name__ == "__main__":
    main()
