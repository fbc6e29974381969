"""`egovlab export netlab`: the lab plan as a netlab topology, and the real `netlab create`
(networklab from PyPI, in the test extras) accepting it and generating containerlab's topology
with the plan's nodes and links."""
from __future__ import annotations

import collections
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from egovlab.inventory import loader
from egovlab.topology import clab, netlab
from egovlab.topology.model import emulation_plan

from .conftest import DONGTHAP, EGOVLAB, SCENARIOS

SCENARIO_FILES = [DONGTHAP, *sorted(SCENARIOS.glob("*.yml"))]
NETLAB = Path(EGOVLAB).with_name("netlab")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,15}$")  # netlab's node and group names


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_the_export_carries_every_node_link_and_address_of_the_plan(path):
    sc = loader.load(path)
    plan = emulation_plan(sc, prefix="nl")
    doc = netlab.topology(sc, plan)
    assert set(doc["nodes"]) == set(plan.hosts) | set(plan.switches) and len(doc["links"]) == len(plan.links)
    assert all(IDENTIFIER.match(n) for n in [*doc["nodes"], *doc["groups"]])
    assert {n for n, v in doc["nodes"].items() if v.get("role") == "bridge"} == set(plan.switches)
    assert sorted(m for g in doc["groups"].values() for m in g["members"]) == sorted(doc["nodes"])
    for h in plan.hosts.values():
        assert doc["nodes"][h.name]["egovlab"]["label"] == h.label
        ends = [link[h.name] for link in doc["links"] if h.name in link]
        got = {e[k] for e in ends for k in ("ipv4", "ipv6")} - {False}
        want = {f"{a.ip}/{a.prefixlen}" for a in (h.ipv4, h.ipv6, h.mgmt_ipv4, h.mgmt_ipv6) if a is not None}
        assert got == want, h.label  # and an address it lacks is refused to netlab's pools (False)
    uplinks = {l.scenario_link for l in plan.links if l.scenario_link}
    assert uplinks == {link["egovlab"].get("link") for link in doc["links"]} - {None}


@pytest.mark.slow
@pytest.mark.parametrize("path", [SCENARIOS / "small-dc.yml", DONGTHAP], ids=["small-dc", "dongthap"])
def test_netlab_create_accepts_the_export_and_generates_the_same_nodes_and_links(path, tmp_path):
    r = subprocess.run([str(EGOVLAB), "export", "netlab", str(path), "-o", str(tmp_path / "topology.yml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(NETLAB), "create"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    generated = yaml.safe_load((tmp_path / "clab.yml").read_text())["topology"]
    sc = loader.load(path)
    plan = emulation_plan(sc, prefix="nl")
    assert set(generated["nodes"]) == set(plan.hosts) | set(plan.switches)
    ends = [[e.split(":") for e in link["endpoints"]] for link in generated["links"]]
    assert collections.Counter(frozenset(n for n, _ in link) for link in ends) == \
        collections.Counter(frozenset((l.a, l.b)) for l in plan.links)
    # a host's interfaces keep the names the addresses were planned on
    host_ends = {(n, i) for link in ends for n, i in link if n in plan.hosts}
    assert host_ends == {(n, clab.interface(plan, l, n)) for l in plan.links for n in (l.a, l.b) if n in plan.hosts}


def test_the_cli_refuses_an_unwritable_output(tmp_path):
    (tmp_path / "file").write_text("")
    r = subprocess.run([str(EGOVLAB), "export", "netlab", "dongthap", "-o", str(tmp_path / "file" / "t.yml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot write" in r.stderr and "Traceback" not in r.stderr, r.stderr
