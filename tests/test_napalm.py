"""The NAPALM driver against a real lab through a real `egovlab serve`: NAPALM's own getter
models, a policy change proved and undone with the reachability probes, NAPALM's exceptions,
compliance reports, Nornir's threaded runner and Ansible's napalm modules (ansible-playbook)."""
from __future__ import annotations

import os
import subprocess

import napalm
import pytest
from napalm.base import models
from napalm.base.exceptions import CommitError, ConnectionException, MergeConfigException, ReplaceConfigException
from napalm.base.test.helpers import test_model as conforms

from egovlab import lifecycle
from egovlab.topology import cleanup

from .conftest import EGOVLAB, ROOT, SCENARIOS

pytestmark = [pytest.mark.emulation, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="emulation needs root (CI runs as root)")]
PREFIX = "na"
SWITCH, HOST = "town:agg", "town-h1"
COMMUNE_TO_DB = "- {from: kind:commune, to: service:csdl}\n"


@pytest.fixture(scope="module")
def lab(api_server):
    """small-dc under egovlab's controller, brought up through the API; removed whatever happens."""
    cleanup.remove_lab(PREFIX)
    try:
        with api_server.client() as c:
            c.post("/api/v1/scenarios", json={"name": "small-dc", "yaml": (SCENARIOS / "small-dc.yml").read_text()})
            job = api_server.wait_job(c.put(f"/api/v1/labs/{PREFIX}", json={"scenario": "small-dc"}).json())
            assert job["state"] == "succeeded", job["log_tail"]
        yield api_server
    finally:
        lifecycle.stop(PREFIX)
    assert cleanup.leftovers(PREFIX) == {"bridges": [], "links": [], "processes": [], "ovs_shards": []}


def driver(server, device: str, token: str | None = None):
    cls = napalm.get_network_driver("egovlab")
    return cls(device, "egovlab", token or server.operator, optional_args={"lab": PREFIX, "api": server.url})


def test_the_driver_is_found_by_name():
    from napalm_egovlab import EgovlabDriver

    assert napalm.get_network_driver("egovlab") is EgovlabDriver


def _connect(src: str, dst: str, port: str) -> None:
    """One probe from src to dst across the lab (the portal has no service here: the RST comes
    back), so the switches on the path count bytes: nothing else talks in the lab."""
    from egovlab.operations import running_lab
    from egovlab.topology import probes

    lab = running_lab(PREFIX)
    addr = str(lab.plan.hosts[lab.plan.node(dst)].ipv4.ip)
    probes.run_matrix([probes.Probe("", "", src, dst, port, 4, addr, True)], lab.record.pids, lab.plan.by_label, PREFIX)


def test_every_getter_has_napalms_shape_on_a_switch_and_a_host(lab):
    with driver(lab, SWITCH) as sw, driver(lab, HOST) as host:
        assert host.ping("town-h2", count=3)["success"]["packet_loss"] == 0  # fills the ARP tables
        _connect(HOST, "web-1", "tcp/443")  # across the district's aggregation switch to the portal
        for d in (sw, host):
            facts = d.get_facts()
            assert conforms(models.FactsDict, facts) and facts["vendor"] == "egovlab"
            interfaces = d.get_interfaces()
            assert interfaces and all(conforms(models.InterfaceDict, i) for i in interfaces.values())
            assert sorted(interfaces) == sorted(facts["interface_list"])
            assert all(i["is_up"] and i["is_enabled"] for i in interfaces.values())
            counters = d.get_interfaces_counters()
            assert all(conforms(models.InterfaceCounterDict, c) for c in counters.values())
            assert sum(c["rx_octets"] + c["tx_octets"] for c in counters.values()) > 0
            for intf, neighbours in d.get_lldp_neighbors().items():
                assert intf in interfaces and all(conforms(models.LLDPNeighborDict, n) for n in neighbours)
            detail = d.get_lldp_neighbors_detail()
            assert detail and all(conforms(models.LLDPNeighborDetailDict, n) for ns in detail.values() for n in ns)
            for entry in d.get_arp_table():
                assert conforms(models.ARPTableDict, entry)
            for entry in d.get_ipv6_neighbors_table():
                assert conforms(models.IPV6NeighborDict, entry)
            for entry in d.get_mac_address_table():
                assert conforms(models.MACAdressTable, entry)
            env = d.get_environment()
            # as napalm.base.test.getters checks it: section by section
            assert set(env) == set(models.EnvironmentDict.__annotations__)
            for section, model in (("fans", models.FanDict), ("temperature", models.TemperatureDict),
                                   ("power", models.PowerDict), ("cpu", models.CPUDict)):
                assert all(conforms(model, v) for v in env[section].values())
            assert env["cpu"] and all(isinstance(k, int) for k in env["cpu"])
            assert conforms(models.MemoryDict, env["memory"]) and env["memory"]["available_ram"] > 0
            assert conforms(models.ConfigurationDict, d.get_config())
            assert d.is_alive() == {"is_alive": True}
        # what each kind of device has
        assert sw.get_interfaces_ip() == {} and sw.get_arp_table() == []
        macs = {e["mac"] for e in sw.get_mac_address_table()}
        assert "02:e6:00:00:00:01" in macs  # the controller forwards every host's MAC
        assert "table=2(forward)" in sw.get_config()["running"]
        ips = host.get_interfaces_ip()
        assert all(conforms(models.InterfacesIPDictEntry, entry) for v in ips.values()
                   for family in ("ipv4", "ipv6") for entry in v.get(family, {}).values())
        assert any("198.18." in ip for v in ips.values() for ip in v.get("ipv4", {}))
        assert host.get_arp_table(), "the ping left the neighbour in the ARP table"
        ping = host.ping("town-h2", count=3)
        assert conforms(models.PingDict, ping["success"]) and len(ping["success"]["results"]) == 3
        trace = host.traceroute("town-h2", timeout=1)
        assert all(isinstance(hop, int) for hop in trace["success"])
        assert all(conforms(models.TracerouteDict, p) for hop in trace["success"].values()
                   for p in hop["probes"].values())
        assert "error" in sw.ping("town-h2")  # a layer-2 switch has no address to ping from


def test_lldp_is_symmetric_across_the_whole_lab(lab):
    """Every neighbour a device reports reports it back, on the port it named."""
    with lab.client("read-only") as c:
        names = [d["name"] for d in c.get(f"/api/v1/labs/{PREFIX}/devices").json()]
        lldp = {n: c.get(f"/api/v1/labs/{PREFIX}/devices/{n}/lldp_neighbors").json() for n in names}
    assert len(names) == 22
    for name, ports in lldp.items():
        for port, neighbours in ports.items():
            for n in neighbours:
                assert {"hostname": name, "port": port} in lldp[n["hostname"]][n["port"]]


def test_a_link_cut_shows_in_get_interfaces(lab):
    with lab.client() as c, driver(lab, SWITCH) as sw:
        uplink = next(i for i, n in sw.get_lldp_neighbors().items() if n[0]["hostname"] == "core-1:lan")
        assert c.post(f"/api/v1/labs/{PREFIX}/faults", json={"action": "link-down", "target": "town--core-1"}
                      ).status_code == 201
        try:
            state = sw.get_interfaces()
            assert not state[uplink]["is_up"] and not state[uplink]["is_enabled"]
            assert all(v["is_up"] for k, v in state.items() if k != uplink)
            config = sw.get_config()
            assert config["running"] != config["startup"]  # recompiled around the cut
        finally:
            c.delete(f"/api/v1/labs/{PREFIX}/faults")
        assert sw.get_interfaces()[uplink]["is_up"]


def _commune_to_db(server) -> bool:
    """Whether the reachability matrix finds a commune reaching the DB service's port (a probe job)."""
    with server.client() as c:
        job = server.wait_job(c.post(f"/api/v1/labs/{PREFIX}/probes/matrix").json())
        assert job["state"] == "succeeded", job["log_tail"]
        results = c.get(f"/api/v1/jobs/{job['id']}").json()["result"]
    assert results["differ"] == 0  # whatever the policy in force, the network matches it exactly
    hits = [r for r in results["results"] if r["source"].startswith("kind:commune") and r["target"] == "service:csdl"
            and r["port"] == "tcp/5432"]
    assert hits
    return any(r["reachable"] for r in hits)


def test_a_policy_change_is_committed_proved_by_probes_and_rolled_back(lab):
    assert not _commune_to_db(lab)
    with driver(lab, "dc:db") as d:  # the DB zone's switch: its policy table changes
        d.load_merge_candidate(config=COMMUNE_TO_DB)
        diff = d.compare_config()
        assert "+  - from: kind:commune" in diff and "+table=1(policy)" in diff and "rule(s) change" in diff
        assert d.get_config()["candidate"] == COMMUNE_TO_DB
        d.commit_config()
        assert d.compare_config() == ""
        with lab.client("read-only") as c:
            policy = c.get(f"/api/v1/labs/{PREFIX}/policy").json()
        assert policy["version"] == 1 and "kind:commune" in policy["policy"]
        assert _commune_to_db(lab), "the committed flow is open"
        d.rollback()
        with lab.client("read-only") as c:
            assert c.get(f"/api/v1/labs/{PREFIX}/policy").json()["version"] == 0
        assert not _commune_to_db(lab), "the rollback closed it again"
        d.load_merge_candidate(config=COMMUNE_TO_DB)
        d.discard_config()
        assert d.compare_config() == ""


def test_the_policy_verbs_show_diff_commit_and_roll_back_the_same_change(lab, tmp_path):
    candidate = tmp_path / "commune-to-db.yml"
    candidate.write_text(COMMUNE_TO_DB)

    def verb(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(EGOVLAB), "policy", *args, "--prefix", PREFIX], capture_output=True, text=True,
                              timeout=120)

    shown = verb("show")
    assert shown.returncode == 0 and "policy version 0" in shown.stdout
    diff = verb("diff", str(candidate))
    assert diff.returncode == 0 and "+  - from: kind:commune" in diff.stdout and "+table=1(policy)" in diff.stdout
    assert not _commune_to_db(lab)
    committed = verb("commit", str(candidate))
    assert committed.returncode == 0 and "policy version 1 in force" in committed.stdout
    assert _commune_to_db(lab), "the committed flow is open"
    with lab.client("read-only") as c:
        policy = c.get(f"/api/v1/labs/{PREFIX}/policy").json()
    assert policy["version"] == 1 and "/" not in policy["source"]  # a name, not a path on the server
    assert verb("rollback").returncode == 0 and not _commune_to_db(lab)
    again = verb("rollback")
    assert again.returncode == 2 and "nothing to roll back" in again.stderr and "Traceback" not in again.stderr


def test_a_compliance_report_checks_the_lab_against_a_validation_file(lab, tmp_path):
    with driver(lab, SWITCH) as sw:
        uplinks = {i: [{"hostname": n[0]["hostname"]}] for i, n in sw.get_lldp_neighbors().items()
                   if n[0]["hostname"].startswith("core-")}
        good = [{"get_facts": {"vendor": "egovlab", "hostname": SWITCH}},
                {"get_lldp_neighbors": uplinks}, {"get_interfaces": {i: {"is_up": True} for i in uplinks}}]
        report = sw.compliance_report(validation_source=good)
        assert report["complies"], report
        bad = [{"get_facts": {"vendor": "cisco"}}]
        assert not sw.compliance_report(validation_source=bad)["complies"]
        path = tmp_path / "validate.yml"
        path.write_text(f"---\n- get_facts:\n    vendor: egovlab\n    hostname: '{SWITCH}'\n")
        assert sw.compliance_report(validation_file=str(path))["complies"]


def test_bad_credentials_unknown_devices_and_malformed_candidates_raise_napalms_exceptions(lab):
    with pytest.raises(ConnectionException, match="authentication failed"):
        driver(lab, SWITCH, token="x" * 40).open()
    with pytest.raises(ConnectionException, match="unknown device 'nowhere:lan'"):
        driver(lab, "nowhere:lan").open()
    with driver(lab, SWITCH) as d:
        with pytest.raises(MergeConfigException, match="YAML syntax error"):
            d.load_merge_candidate(config="- {from: [")
        with pytest.raises(MergeConfigException, match="unknown zone 'nowhere'|nowhere"):
            d.load_merge_candidate(config="- {from: zone:nowhere, to: service:csdl}")
        with pytest.raises(ReplaceConfigException, match="expected a list of flows"):
            d.load_replace_candidate(config="42")
        with pytest.raises(MergeConfigException, match="no such|No such"):
            d.load_merge_candidate(filename="/nonexistent/policy.yml")
        with pytest.raises(CommitError, match="no candidate"):
            d.commit_config()
        with pytest.raises(CommitError, match="nothing to roll back"):
            d.rollback()
    with driver(lab, SWITCH, token=lab.reader) as d:  # read-only: reads, but changes nothing
        assert d.get_facts()["hostname"] == SWITCH
        with pytest.raises(MergeConfigException, match="operator token"):
            d.load_merge_candidate(config=COMMUNE_TO_DB)


def test_nornir_gathers_facts_and_lldp_from_every_device(lab):
    from nornir import InitNornir
    from nornir_napalm.plugins.tasks import napalm_get

    nr = InitNornir(runner={"plugin": "threaded", "options": {"num_workers": 10}}, logging={"enabled": False},
                    inventory={"plugin": "EgovlabInventory",
                               "options": {"lab": PREFIX, "token": lab.reader, "api": lab.url}})
    assert len(nr.inventory.hosts) == 22 and len(nr.filter(kind="switch").inventory.hosts) == 12
    result = nr.run(task=napalm_get, getters=["facts", "lldp_neighbors"])
    assert not result.failed, {h: r[0].exception for h, r in result.items() if r.failed}
    for name, r in result.items():
        assert r[0].result["facts"]["hostname"] == name and r[0].result["lldp_neighbors"]


def test_ansible_napalm_modules_get_facts_and_install_a_policy_change(lab):
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv"), "EGOVLAB_TOKEN": lab.operator,
           "ANSIBLE_HOST_KEY_CHECKING": "False"}
    r = subprocess.run([str(EGOVLAB.with_name("ansible-playbook")), "-i", "localhost,", str(ROOT / "ansible" / "napalm-lab.yml"),
                        "-e", f"device={SWITCH}", "-e", f"lab={PREFIX}", "-e", f"api={lab.url}", "-e", "commit=true",
                        "-e", "policy='- {from: zone:soc, to: service:csdl}'"],
                       capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "ok=4" in r.stdout and "changed=1" in r.stdout
    with lab.client() as c:
        policy = c.get(f"/api/v1/labs/{PREFIX}/policy").json()
        assert policy["version"] == 1 and "zone:soc" in policy["policy"]
        assert c.post(f"/api/v1/labs/{PREFIX}/policy/rollback").json()["version"] == 0


def test_a_nuts_bundle_of_the_lab_passes_through_the_driver_and_fails_when_an_expectation_is_wrong(lab, tmp_path):
    """`egovlab export nuts` writes the bundle from the plan; the real `nuts` pytest plugin runs it
    through the Nornir inventory and the NAPALM driver against the running lab."""
    out = tmp_path / "nuts"
    r = subprocess.run([str(EGOVLAB), "export", "nuts", str(SCENARIOS / "small-dc.yml"), "--prefix", PREFIX,
                        "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    env = {**os.environ, "EGOVLAB_API": lab.url, "EGOVLAB_TOKEN": lab.operator}  # a ping is an operation

    def nuts(bundle) -> subprocess.CompletedProcess:
        return subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest", str(bundle),
                               "--nornir-config", str(out / "nr-config.yaml"), "-q"],
                              capture_output=True, text=True, timeout=600, cwd=out, env=env)

    run = nuts(out / "test-egovlab.yaml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    passed = int(run.stdout.strip().splitlines()[-1].split()[0])
    assert passed > 50  # every switch port's neighbour and state, and the pings
    wrong = out / "test-wrong.yaml"
    wrong.write_text((out / "test-egovlab.yaml").read_text().replace("expected: FAIL", "expected: SUCCESS", 1))
    run = nuts(wrong)
    assert run.returncode == 1 and "1 failed" in run.stdout, run.stdout[-3000:]
