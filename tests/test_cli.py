"""The `egovlab` CLI as users run it: exit codes, formats, exports (real ansible-inventory, Graphviz, vagrant)."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess

import pytest
import yaml
from click.testing import CliRunner

from egovlab.cli import cli
from egovlab.topology.state import remove_state

from .conftest import DONGTHAP, EGOVLAB, ROOT, SCENARIOS


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_validate_ok():
    r = run("validate", str(DONGTHAP))
    assert r.exit_code == 0, r.output
    assert "185 sites" in r.stdout and "260 addressed hosts" in r.stdout


def test_show_lists_kinds_and_the_tree():
    r = run("show", "dongthap")
    assert r.exit_code == 0
    for text in ("commune", "143", "provincial-dc", "dmz", "tp-cao-lanh", "15 communes"):
        assert text in r.stdout
    assert "tp-cao-lanh-xa-01" not in r.stdout
    assert "tp-cao-lanh-xa-01" in run("show", "dongthap", "--all").stdout


def test_plan_formats_agree(dongthap):
    as_json = json.loads(run("plan", "dongthap", "--format", "json").stdout)
    assert as_json["ipv6_phase"] == "phase-2"
    rows = list(csv.DictReader(io.StringIO(run("plan", "dongthap", "--format", "csv").stdout)))
    assert [r["subnet"] for r in rows] == [s["subnet"] for s in as_json["subnets"]]
    hosts = list(csv.DictReader(io.StringIO(run("plan", "dongthap", "--format", "csv", "--view", "hosts").stdout)))
    assert {h["host"] for h in hosts} == set(dongthap.plan.hosts)
    table = run("plan", "dongthap", "--view", "links").stdout
    assert "inet-ftth-1" in table


def test_plan_save_writes_allocations_that_keep_addresses(tmp_path, mini_text):
    scenario = tmp_path / "p.yml"
    scenario.write_text(mini_text)
    r = run("plan", str(scenario), "--save")
    assert r.exit_code == 0
    alloc = tmp_path / "p.allocations.yml"
    saved = yaml.safe_load(alloc.read_text())
    assert saved["v4:lan:town"]
    # a new site sorted before 'town' would take its block without the allocation file
    scenario.write_text(mini_text.replace("  town:\n", "  aaa: {kind: district, parent: core, lan_size: 90}\n  town:\n"))
    after = json.loads(run("plan", str(scenario), "--format", "json").stdout)["allocations"]
    assert {k: after[k] for k in saved} == saved


@pytest.mark.parametrize("args", [["plan", "dongthap", "--format", "xml"], ["nonsense"], ["validate"],
                                  ["validate", "/no/such/file.yml"], ["validate", str(SCENARIOS)],
                                  ["plan", "dongthap", "--allocations", str(SCENARIOS / "mini.yml")]])
def test_bad_arguments_exit_2_without_traceback(args):
    proc = subprocess.run([str(EGOVLAB), *args], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip()


def test_help_for_every_verb():
    for verb in (["validate"], ["show"], ["plan"], ["export"], ["export", "ansible-inventory"], ["export", "graph"]):
        r = run(*verb, "--help")
        assert r.exit_code == 0 and "Usage:" in r.stdout


def test_ansible_inventory_parses_with_real_ansible(tmp_path, dongthap):
    out = tmp_path / "inventory.yml"
    assert run("export", "ansible-inventory", "dongthap", "-o", str(out)).exit_code == 0
    ansible_inventory = ROOT / ".venv" / "bin" / "ansible-inventory"
    proc = subprocess.run([str(ansible_inventory), "-i", str(out), "--list"], capture_output=True, text=True,
                          env={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", "PATH": "/usr/bin:/bin",
                               "HOME": str(tmp_path), "ANSIBLE_LOCAL_TEMP": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    inv = json.loads(proc.stdout)
    hostvars = inv["_meta"]["hostvars"]
    assert hostvars["db-1"]["ansible_host"] == str(dongthap.plan.hosts["db-1"].mgmt_ipv4)
    assert hostvars["db-1"]["egovlab_zone"] == "db"
    assert set(inv["zone_db"]["hosts"]) == {"db-1", "db-2", "db-3", "db-shared-1", "dw-1", "bk-db-1"}
    assert set(inv["service_csdl"]["hosts"]) == {"db-1", "db-2", "db-3", "bk-db-1"}
    assert len(inv["kind_commune"]["hosts"]) == 143
    # the v6-only pilot commune is reached over IPv6
    assert ":" in hostvars["tp-sa-dec-xa-01-h1"]["ansible_host"]


def test_export_graph_writes_dot_and_png(tmp_path):
    assert shutil.which("twopi"), "Graphviz is installed by scripts/setup.sh"
    r = run("export", "graph", "dongthap", "-o", str(tmp_path / "topo"))
    assert r.exit_code == 0, r.output
    dot = (tmp_path / "topo.dot").read_text()
    assert "provincial-dc" in dot and "inet-ftth-1" in dot and dot.count(" -- ") == 203
    assert (tmp_path / "topo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_vagrantfile_validates():
    vagrant = shutil.which("vagrant")
    assert vagrant, "vagrant is installed by scripts/setup.sh"
    proc = subprocess.run([vagrant, "validate"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_outputs_go_to_new_directories_and_unwritable_paths_exit_2(tmp_path):
    out = tmp_path / "a" / "b" / "inventory.yml"
    assert run("export", "ansible-inventory", "dongthap", "-o", str(out)).exit_code == 0 and out.exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = run("export", "ansible-inventory", "dongthap", "-o", str(blocker / "x.yml"))
    assert r.exit_code == 2 and "cannot write" in r.stderr
    r = run("export", "graph", "dongthap", "--no-png", "-o", str(blocker / "topo"))
    assert r.exit_code == 2 and "cannot write" in r.stderr


def test_the_controller_verb_runs_the_os_ken_app_with_its_metrics(tmp_path):
    """`egovlab controller` in the foreground: it listens for switches and serves /metrics."""
    import socket
    import time
    import urllib.request

    from egovlab.sdn.launcher import free_port

    port, metrics = free_port(), free_port()
    proc = subprocess.Popen([str(EGOVLAB), "controller", str(SCENARIOS / "mini.yml"), "--prefix", "ex",
                             "--port", str(port), "--metrics-port", str(metrics)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, text = time.monotonic() + 60, ""
        while time.monotonic() < deadline and not text:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=2).read().decode()
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.3)
        assert "egovlab_sdn_switches_connected 0.0" in text
        assert 'egovlab_sdn_rules_compiled{switch="exs1"}' in text
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the OpenFlow port
    finally:
        proc.kill()
        proc.wait()
        remove_state("ex")  # what the controller kept there (its status, its reload secret)


def test_the_controller_verb_refuses_a_bad_scenario_before_starting(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("scenario: x\nsites: 3\n")
    r = subprocess.run([str(EGOVLAB), "controller", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "sites" in r.stderr and "Traceback" not in r.stderr
