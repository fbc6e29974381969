"""A running lab's truth is its record: the scenario is snapshotted when the lab comes up, and
every later operation reads the snapshot; editing, replacing or deleting the source file changes
nothing of the running lab, and `egovlab status` says the file has changed."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from egovlab.inventory import loader
from egovlab.topology import cleanup
from egovlab.topology.model import emulation_plan

from .conftest import EGOVLAB, SCENARIOS

pytestmark = [pytest.mark.emulation, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="emulation needs root (CI runs as root)")]
PREFIX = "er"


def egovlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EGOVLAB), *args], capture_output=True, text=True, timeout=300)


def test_the_lab_runs_from_its_snapshot_whatever_happens_to_the_file(tmp_path):
    source = tmp_path / "mini.yml"
    source.write_text((SCENARIOS / "mini.yml").read_text())
    cleanup.remove_lab(PREFIX)
    try:
        up = egovlab("up", str(source), "--prefix", PREFIX, "--detach")
        assert up.returncode == 0, up.stdout + up.stderr

        def record() -> dict:
            r = egovlab("status", "--prefix", PREFIX, "--json")
            assert r.returncode == 0, r.stderr
            return json.loads(r.stdout)[0]

        first = record()
        assert first["origin_now"] == "unchanged" and first["phase"] == "up"
        assert first["spec"] == {"prefix": PREFIX, "hosts_per_site": None, "controller": None, "sdn": True,
                                 "ovs_shards": 1}
        source.write_text("scenario: [this is not a province\n")  # edited into nonsense
        assert record()["origin_now"] == "changed"
        cut = egovlab("fault", "link-down", "town--core", "--prefix", PREFIX)
        assert cut.returncode == 0, cut.stderr
        assert "town--core" in egovlab("fault", "list", "--prefix", PREFIX).stdout
        # verify the running lab: its snapshot (the file is nonsense now) with the cut in force;
        # town--core is the town's only uplink, so exactly the town's hosts lose the portal
        report = tmp_path / "verify.json"
        proved = egovlab("verify", "--prefix", PREFIX, "--json", str(report))
        assert proved.returncode == 1, proved.stdout + proved.stderr
        assert "lab 'er': scenario 'mini' from its record, 2 interfaces cut" in proved.stdout
        found = json.loads(report.read_text())
        plan = emulation_plan(loader.load(SCENARIOS / "mini.yml"), prefix=PREFIX)
        ends = sorted(l.intf(n) for l in plan.links if l.scenario_link == "town--core" for n in (l.a, l.b))
        assert found["lab"] == {"prefix": PREFIX, "cut_interfaces": ends}
        assert {(d["source"], d["destination"], d["outcome"]) for d in found["difference_list"]} == {
            ("town-h1", "web-1", "black-hole"), ("town-h2", "web-1", "black-hole")}
        assert egovlab("verify", str(source), "--prefix", PREFIX).returncode == 2  # one or the other
        shown = egovlab("policy", "show", "--prefix", PREFIX)
        assert shown.returncode == 0 and "kind:district" in shown.stdout
        source.unlink()  # deleted
        assert record()["origin_now"] == "deleted"
        assert "deleted since the lab started" in egovlab("status", "--prefix", PREFIX).stdout
        assert egovlab("fault", "clear", "--prefix", PREFIX).returncode == 0
    finally:
        down = egovlab("down", "--prefix", PREFIX)
    assert down.returncode == 0
    assert cleanup.leftovers(PREFIX) == {"bridges": [], "links": [], "processes": [], "ovs_shards": []}
