#!/usr/bin/env python3
"""Bring-up and teardown of the emulated province, against plain Mininet at the same node counts.

For each size: a synthetic province (inventory/synthetic.py) brought up by egovlab, and in the
same run Mininet's own TreeTopo (depth 2) with about the same number of nodes, both on Open
vSwitch with this machine's datapath, without waiting for a controller or RSTP. Each measurement
runs in a fresh process (peak RSS is its own; ovs-vswitchd's RSS, and the resident memory of
the node processes, egovlab's namespace holders or Mininet's shells, are read while the network
is up). Root only.
Writes benchmarks/results/emulation_scale.json.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

NODE_RSS = r"""
def node_rss_mib(marker):
    # resident memory of the processes that are the nodes (their cmdline carries `marker`)
    import os
    total = 0
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            if marker.encode() in open("/proc/%s/cmdline" % e, "rb").read():
                total += int(open("/proc/%s/status" % e).read().split("VmRSS:")[1].split()[0])
        except (OSError, IndexError):
            pass
    return total / 1024
"""

EGOVLAB = NODE_RSS + r"""
import json, resource, sys, time, yaml
from egovlab.inventory import loader
from egovlab.inventory.synthetic import synthetic_province
from egovlab.topology.model import emulation_plan
from egovlab.topology.network import Lab
args = json.loads(sys.argv[1])
if args["scenario"] == "dongthap":
    sc = loader.load("dongthap")
else:
    sc = loader.load_text(yaml.safe_dump(synthetic_province(**args["scenario"])), "synthetic")
plan = emulation_plan(sc, prefix="eb")
# under a controller (none listens: the bridges wait fail-secure), so `up` is the build itself,
# as Mininet's below; RSTP's convergence and the controller's programming are measured elsewhere
lab = Lab(sc, plan, controller=("127.0.0.1", 6699))
t0 = time.perf_counter(); lab.start(); up = time.perf_counter() - t0
vs = int(open("/proc/%s/status" % open("/var/run/openvswitch/ovs-vswitchd.pid").read().strip()).read().split("VmRSS:")[1].split()[0]) / 1024
nodes_mib = node_rss_mib("egovlab-node=eb")
t1 = time.perf_counter(); lab.stop(); down = time.perf_counter() - t1
print(json.dumps({"nodes": plan.node_count, "switches": len(plan.switches), "hosts": len(plan.hosts),
                  "links": len(plan.links), "up_s": up, "down_s": down, "timings": lab.timings,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "node_processes_rss_mib": nodes_mib, "ovs_vswitchd_rss_mib": vs}))
"""

MININET = NODE_RSS + r"""
import json, resource, sys, time
from functools import partial
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import OVSSwitch
from mininet.topolib import TreeTopo
setLogLevel("error")
fanout = int(sys.argv[1])
net = Mininet(topo=TreeTopo(depth=2, fanout=fanout), switch=partial(OVSSwitch, datapath="user", failMode="standalone"),
              controller=None, build=False)
t0 = time.perf_counter(); net.build(); net.start(); up = time.perf_counter() - t0
vs = int(open("/proc/%s/status" % open("/var/run/openvswitch/ovs-vswitchd.pid").read().strip()).read().split("VmRSS:")[1].split()[0]) / 1024
nodes_mib = node_rss_mib("mininet:")
nodes = len(net.hosts) + len(net.switches)
t1 = time.perf_counter(); net.stop(); down = time.perf_counter() - t1
print(json.dumps({"nodes": nodes, "switches": len(net.switches), "hosts": len(net.hosts), "up_s": up, "down_s": down,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "node_processes_rss_mib": nodes_mib, "ovs_vswitchd_rss_mib": vs}))
"""

SIZES = {  # target nodes -> synthetic province shape (1 host per site)
    100: {"districts": 4, "communes_per_district": 10},
    200: {"districts": 6, "communes_per_district": 15},
    400: {"districts": 10, "communes_per_district": 19},
    800: {"districts": 16, "communes_per_district": 24},
}


def run(code: str, arg: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def tree_fanout(nodes: int) -> int:
    # TreeTopo(depth=2, fanout=f) has 1 + f switches and f*f hosts
    return max(2, round((-1 + math.sqrt(1 + 4 * (nodes - 1))) / 2))


def main() -> None:
    rows = []
    sizes = [int(a) for a in sys.argv[1:]] or list(SIZES)
    for target in sizes:
        egov = run(EGOVLAB, json.dumps({"scenario": {**SIZES[target], "hosts_per_site": 1}}))
        base = run(MININET, str(tree_fanout(egov["nodes"])))
        rows.append({"target_nodes": target, "egovlab": egov, "mininet_treetopo": base,
                     "ratio_up_per_node": (egov["up_s"] / egov["nodes"]) / (base["up_s"] / base["nodes"]),
                     "ratio_down_per_node": (egov["down_s"] / egov["nodes"]) / (base["down_s"] / base["nodes"])})
        print(f"{target:>4}: egovlab {egov['nodes']} nodes up {egov['up_s']:.1f} s down {egov['down_s']:.1f} s "
              f"({egov['node_processes_rss_mib'] / egov['nodes'] * 1024:.0f} KiB/node) | "
              f"TreeTopo {base['nodes']} nodes up {base['up_s']:.1f} s down {base['down_s']:.1f} s "
              f"({base['node_processes_rss_mib'] / base['nodes'] * 1024:.0f} KiB/node) | "
              f"per-node ratio up {rows[-1]['ratio_up_per_node']:.2f} down {rows[-1]['ratio_down_per_node']:.2f}",
              flush=True)
    full = run(EGOVLAB, json.dumps({"scenario": "dongthap"}))
    base = run(MININET, str(tree_fanout(full["nodes"])))
    print(f"dongthap: {full['nodes']} nodes up {full['up_s']:.1f} s down {full['down_s']:.1f} s "
          f"(peak {full['peak_rss_mib']:.0f} MiB, ovs-vswitchd {full['ovs_vswitchd_rss_mib']:.0f} MiB) | "
          f"TreeTopo {base['nodes']} up {base['up_s']:.1f} s down {base['down_s']:.1f} s")
    result = {"benchmark": "emulation_scale", "sizes": rows,
              "dongthap": {"egovlab": full, "mininet_treetopo": base,
                           "ratio_up_per_node": (full["up_s"] / full["nodes"]) / (base["up_s"] / base["nodes"]),
                           "ratio_down_per_node": (full["down_s"] / full["nodes"]) / (base["down_s"] / base["nodes"])},
              "ratio_up_per_node_meaning": "egovlab's seconds per node over Mininet's: below 0.5 is twice Mininet's rate",
              "targets": "at 400 nodes and more, at least twice plain Mininet's node rate (ratio at most 0.5)"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "emulation_scale.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
