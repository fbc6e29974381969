#!/usr/bin/env python3
"""The full-kernel tier, as root (writes benchmarks/results/vm_tier.json): image build time cold
and cached, the VM's boot time, and the small WAN scenario's bring-up and failover outage inside
the VM (kernel datapath, netem delays) against the same scenario on this host (userspace
datapath, no delay), in the same run; and the same in-VM suite through Vagrant (box, `vagrant
up`, the suite over `vagrant ssh`, `vagrant destroy`) beside booting the image with qemu directly.

Usage: sudo .venv/bin/python benchmarks/vm_tier.py [--keep-cache]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def host_run() -> dict:
    """tests/scenarios/wan.yml on this host: bring-up under the controller, then the same cut."""
    from egovlab import lifecycle
    from egovlab.topology import probes

    with lifecycle.session(ROOT / "tests" / "scenarios" / "wan.yml", lifecycle.spec("ev")) as lab:
        pids = lab.pids
        res = probes.failover_probe(lab.plan, pids, "town--core-1", "town-h1", "web-1", port=5000, seconds=4.0,
                                    cut_after=1.5, restore=False)
        return {"up_s": round(lab.timings["up_s"], 2), "outage_ms": res.outage_ms, "lost": res.lost,
                "sent": res.sent, "datapath": lab.env.datapath, "netem": lab.env.netem}


def main() -> None:
    from egovlab.vm import image, runner

    ap = argparse.ArgumentParser()
    ap.add_argument("--keep-cache", action="store_true", help="skip the cold build")
    args = ap.parse_args()
    result: dict = {"benchmark": "vm_tier"}
    if not args.keep_cache and (img := image.cached()) is not None:
        image._remove(img.dir)
    t0 = time.monotonic()
    img = image.build(progress=lambda *_: None)
    result["build_s"] = {"cold": None if img.cached else round(time.monotonic() - t0, 1)}
    t0 = time.monotonic()
    image.build(progress=lambda *_: None)
    result["build_s"]["cached"] = round(time.monotonic() - t0, 3)
    with tempfile.TemporaryDirectory() as out:
        res = runner.run(img, ["tests/test_fullkernel.py", "-q"], timeout_s=1500, out=Path(out),
                         progress=lambda *_: None)
    result["vm"] = {"accel": res.accel, "boot_s": res.boot_s, "suite_s": round(res.seconds, 1),
                    "pytest_exit": res.exit_code, **res.figures}
    from egovlab.vm import vagrant

    with tempfile.TemporaryDirectory() as out:
        t0 = time.monotonic()
        got = vagrant.run(img, ["tests/test_fullkernel.py", "-q"], out=Path(out), timeout_s=1500,
                          progress=lambda *_: None)
        result["vagrant"] = {"driver": got.driver, "seconds": got.seconds, "total_s": round(time.monotonic() - t0, 1),
                             "pytest_exit": got.exit_code, **got.figures}
    result["ratio_vagrant_to_qemu_total"] = round(result["vagrant"]["total_s"] / result["vm"]["suite_s"], 2)
    result["host"] = host_run()
    if res.figures.get("up_s"):
        result["ratio_up_vm_to_host"] = round(res.figures["up_s"] / result["host"]["up_s"], 2)
    if res.figures.get("outage_ms") is not None and result["host"]["outage_ms"]:
        result["ratio_outage_vm_to_host"] = round(res.figures["outage_ms"] / result["host"]["outage_ms"], 2)
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "vm_tier.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
