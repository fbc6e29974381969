"""`egovlab export clab`: the lab plan as a containerlab topology, checked against containerlab's
own JSON schema (a copy shipped with egovlab), and its bridge and impairment scripts (pure)."""
from __future__ import annotations

import copy
import subprocess

import netaddr
import pytest
import yaml

from egovlab.inventory import loader
from egovlab.topology import clab
from egovlab.topology.model import emulation_plan

from .conftest import DONGTHAP, EGOVLAB, SCENARIOS

SCENARIO_FILES = [DONGTHAP, *sorted(SCENARIOS.glob("*.yml"))]


@pytest.fixture(scope="module", params=SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def exported(request):
    sc = loader.load(request.param)
    plan = emulation_plan(sc, prefix="cl")
    return sc, plan, clab.topology(sc, plan)


def test_the_export_validates_against_containerlabs_schema_with_the_plans_nodes_and_links(exported):
    sc, plan, doc = exported
    assert clab.problems(doc) == []
    nodes, links = doc["topology"]["nodes"], doc["topology"]["links"]
    assert len(nodes) == len(plan.hosts) + len(plan.switches) and len(links) == len(plan.links)
    assert {n for n, v in nodes.items() if v["kind"] == "ovs-bridge"} == set(plan.switches)
    assert {n for n, v in nodes.items() if v["kind"] == "linux"} == {h.label for h in plan.hosts.values()}
    # every interface once per node, none on a container's eth0 (containerlab's management)
    ends = [(e["node"], e["interface"]) for link in links for e in link["endpoints"]]
    assert len(ends) == len(set(ends)) and not any(i == "eth0" for _, i in ends)
    # a host's planned addresses, on its LAN end (and its OOB end for a DC server)
    for h in plan.hosts.values():
        mine = [e for link in links for e in link["endpoints"] if e["node"] == h.label]
        got = {e.get(k) for e in mine for k in ("ipv4", "ipv6")} - {None}
        want = {f"{a.ip}/{a.prefixlen}" for a in (h.ipv4, h.ipv6, h.mgmt_ipv4, h.mgmt_ipv6) if a is not None}
        assert got == want, h.label
        assert nodes[h.label]["labels"]["egovlab.ipv6-stage"] == sc.stages[h.site]
    # containerlab's own management network collides with no address of the lab
    mgmt = netaddr.IPSet([doc["mgmt"]["ipv4-subnet"], doc["mgmt"]["ipv6-subnet"]])
    assert netaddr.IPNetwork(doc["mgmt"]["ipv4-subnet"]).size - 2 > len(nodes)  # and has an address for each node
    assert not any(netaddr.IPNetwork(e[k]).ip in mgmt for link in links for e in link["endpoints"]
                   for k in ("ipv4", "ipv6") if k in e)


def test_the_schema_check_is_real(exported):
    _, _, doc = exported
    broken = copy.deepcopy(doc)
    broken["topology"]["links"][0]["endpoints"].append({"node": "x", "interface": "eth9"})
    broken["topology"]["nodes"]["bad name!"] = {"kind": "linux"}
    del broken["name"]
    found = clab.problems(broken)
    assert any(p.path.startswith("topology.links.0") for p in found), found
    assert any("'name' is a required property" in p.message for p in found), found
    assert any(p.path.startswith("topology.nodes") for p in found), found


def test_the_scripts_make_every_bridge_and_impair_every_link():
    sc = loader.load(DONGTHAP)
    plan = emulation_plan(sc, prefix="cl")
    scripts = clab.scripts(sc, plan)
    bridges = [l for l in scripts["bridges.sh"].splitlines() if l.startswith("ovs-vsctl")]
    assert bridges == [f"ovs-vsctl --may-exist add-br {name}" for name in plan.switches]
    netem = scripts["netem.sh"].splitlines()
    delayed = [l for l in plan.links if l.delay_ms and not (l.a in plan.hosts or l.b in plan.hosts)]
    assert delayed, "the province's WAN links carry delay"
    for link in delayed[:20]:
        for node in (link.a, link.b):
            line = next(x for x in netem if f" dev {link.intf(node)} " in x)
            assert f"rate {link.bandwidth}bit" in line and f"delay {link.delay_ms:g}ms" in line
    access = next(l for l in plan.links if l.kind == "access")
    host = plan.hosts[access.a if access.a in plan.hosts else access.b]
    assert f"containerlab tools netem set -n clab-dongthap-{host.label} -i eth1 --rate {access.bandwidth // 1000}" \
        in scripts["netem.sh"]
    assert not any("mgmt" in l for l in netem[3:])


def test_the_cli_writes_the_topology_and_refuses_an_unwritable_output(tmp_path):
    out = tmp_path / "lab" / "small.clab.yml"
    r = subprocess.run([str(EGOVLAB), "export", "clab", str(SCENARIOS / "small-dc.yml"), "-o", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert clab.problems(yaml.safe_load(out.read_text())) == []
    assert (out.parent / "bridges.sh").stat().st_mode & 0o111 and (out.parent / "netem.sh").exists()
    (tmp_path / "file").write_text("")
    r = subprocess.run([str(EGOVLAB), "export", "clab", "dongthap", "-o", str(tmp_path / "file" / "x.yml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot write" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = subprocess.run([str(EGOVLAB), "export", "gns3", "dongthap"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "No such command 'gns3'" in r.stderr, r.stderr


def test_a_topology_read_back_is_a_valid_scenario_with_the_same_sites_links_and_lab(exported):
    sc, plan, doc = exported
    back = loader.load_data(clab.scenario_skeleton(doc, "x.clab.yml"), "back.yml")
    assert {n: s.kind for n, s in back.sites.items()} == {n: s.kind for n, s in sc.sites.items()}
    assert back.stages == sc.stages
    link = lambda l: (l.name, frozenset((l.a, l.b)), l.kind, l.bandwidth, l.delay_ms, l.loss_pct, l.role)  # noqa: E731
    assert {link(l) for l in back.links} == {link(l) for l in sc.links}
    again = emulation_plan(back, prefix="cl")
    assert (len(again.hosts), len(again.switches), len(again.links)) == (len(plan.hosts), len(plan.switches),
                                                                       len(plan.links))
    assert {h.label for h in again.hosts.values()} == {h.label for h in plan.hosts.values()}


def test_import_writes_a_scenario_that_validates_and_refuses_what_it_cannot_read(tmp_path):
    topo, back = tmp_path / "small.clab.yml", tmp_path / "back.yml"
    subprocess.run([str(EGOVLAB), "export", "clab", str(SCENARIOS / "small-dc.yml"), "-o", str(topo)], check=True,
                   capture_output=True, timeout=60)
    r = subprocess.run([str(EGOVLAB), "import", "clab", str(topo), "-o", str(back)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(EGOVLAB), "validate", str(back)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    for text, message in (("name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n",
                           "topology.nodes.a: no egovlab.site label: only topologies egovlab exported can be read back "
                           "(1 such node(s))"),
                          ("name: x\ntopology: 3\n", "topology: 3 is not of type 'object'"),
                          ("- a list\n", "expected a containerlab topology (a mapping), got list")):
        bad = tmp_path / "bad.clab.yml"
        bad.write_text(text)
        r = subprocess.run([str(EGOVLAB), "import", "clab", str(bad), "-o", str(tmp_path / "x.yml")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.strip() == f"{bad}: {message}", r.stderr
        assert not (tmp_path / "x.yml").exists()
