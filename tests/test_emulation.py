"""The emulated province on real Mininet and Open vSwitch, as root (CI runs these)."""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time

import pytest

from egovlab.inventory import loader
from egovlab.topology import cleanup, faults, probes
from egovlab.topology.model import emulation_plan

from .conftest import EGOVLAB, SCENARIOS

pytestmark = [pytest.mark.emulation, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="emulation needs root (CI runs as root)")]


def assert_clean(prefix: str) -> None:
    left = cleanup.leftovers(prefix)
    assert left == {"bridges": [], "links": [], "processes": [], "ovs_shards": []}, left
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"{prefix}s" not in out and f"{prefix}h" not in out


@pytest.fixture(scope="module")
def province(dongthap):
    from egovlab.topology.network import Lab

    prefix = "ez"
    cleanup.remove_lab(prefix)  # a previous run killed hard must not break this one
    lab = Lab(dongthap, emulation_plan(dongthap, prefix=prefix))
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
        assert_clean(prefix)


def ping(lab, src: str, dst: str, version: int = 4, tries: int = 1) -> bool:
    plan = lab.plan
    host = plan.hosts[plan.node(dst)]
    addr = host.ipv4 if version == 4 else host.ipv6
    for _ in range(tries):
        r = subprocess.run(["nsenter", "-t", str(lab.pid(src)), "-n", "ping", f"-{version}", "-c", "2", "-i", "0.2",
                            "-W", "2", "-n", "-q", str(addr.ip)], capture_output=True)
        if r.returncode == 0:
            return True
        time.sleep(1)
    return False


def addresses_in(lab, host) -> tuple[set[str], list]:
    from pyroute2 import IPRoute

    from egovlab.topology import netns

    with netns.inside(lab.pid(host.name)), IPRoute() as ipr:
        found = set()
        for a in ipr.get_addr():
            ip = ipaddress.ip_address(a.get_attr("IFA_ADDRESS"))
            if ip.is_global or ip in ipaddress.ip_network("198.18.0.0/15") or ip in ipaddress.ip_network("203.0.113.0/24") \
                    or ip in ipaddress.ip_network("2001:db8::/32"):
                found.add(f"{ip}/{a['prefixlen']}")
        routes = [(r["family"], r["dst_len"]) for r in ipr.get_routes(family=2) + ipr.get_routes(family=10)
                  if r.get_attr("RTA_TABLE") == 254]
    return found, routes


def test_every_host_carries_exactly_its_planned_addresses_and_no_default_route(province):
    for host in province.plan.hosts.values():
        want = {str(a) for a in (host.ipv4, host.ipv6, host.mgmt_ipv4, host.mgmt_ipv6) if a is not None}
        found, routes = addresses_in(province, host)
        assert found == want, host.label
        assert all(dst_len > 0 for _, dst_len in routes), f"{host.label} has a default route"


def test_ipv6_stages_hold_on_the_hosts(province):
    v4only = province.plan.hosts[province.plan.node("tp-sa-dec-xa-02-h1")]
    v6only = province.plan.hosts[province.plan.node("tp-sa-dec-xa-01-h1")]
    assert not any(":" in a for a in addresses_in(province, v4only)[0])
    assert not any("." in a for a in addresses_in(province, v6only)[0])
    assert ping(province, "tp-sa-dec-xa-01-h1", "web-dvc-1", version=6, tries=3)
    assert ping(province, "tp-sa-dec-xa-02-h1", "web-dvc-1", version=4, tries=3)


def test_no_interface_autoconfigures_ipv6_into_the_fabric(province):
    """Router solicitations and DAD probes from ~1,200 interfaces, flooded by the standalone
    fabric, took the national site's path down for ~15 s after `up`: hosts must not solicit or
    probe, switch ports must carry no IPv6, and a host hears no solicitation."""
    from egovlab.topology import netns

    def conf(pid: int, intf: str, key: str) -> str:
        with netns.inside(pid), open(f"/proc/sys/net/ipv6/conf/{intf}/{key}") as f:
            return f.read().strip()

    plan = province.plan
    for link in plan.links:
        for name in (link.a, link.b):
            pid, intf = province.pid(name), link.intf(name)
            if name in plan.hosts:
                assert [conf(pid, intf, k) for k in ("accept_ra", "router_solicitations", "accept_dad")] \
                    == ["0", "0", "0"], intf
            else:
                assert conf(pid, intf, "disable_ipv6") == "1", intf
    listener = province.pid("ngsp-1")
    heard = subprocess.run(["nsenter", "-t", str(listener), "-n", "timeout", "3", "tcpdump", "-i", "any", "-nn", "-l",
                            "icmp6 and ip6[40] == 133"], capture_output=True, text=True)  # 133: router solicitation
    assert heard.stdout.strip() == "", heard.stdout[:500]


def test_links_are_shaped_to_their_bandwidth(province):
    from egovlab.topology.shaping import shaped_rate

    for name, bps in (("inet-ftth-1", 80_000_000), ("inet-leased-1", 100_000_000),
                      ("h-cao-lanh-xa-01--h-cao-lanh", 20_000_000)):
        link = province.plan.links_of_scenario_link(name)[0]
        if province.env.netem:
            pytest.skip("with netem, TCLink shapes (HTB)")
        assert shaped_rate(link.intf(link.a)) == bps and shaped_rate(link.intf(link.b)) == bps


def test_kernel_limits_are_reported_not_hidden(province):
    has_delay = any(l.delay_ms for l in province.plan.links)
    warned = any("netem" in w for w in province.warnings)
    assert warned == (has_delay and not province.env.netem)


def rstp_status(table: str) -> dict[str, dict]:
    """Name -> rstp_status of every Bridge or Port in the system's Open vSwitch."""
    out = subprocess.run(["ovs-vsctl", "--format=json", "--", "--columns=name,rstp_status", "list", table],
                         capture_output=True, text=True, check=True).stdout
    return {name: dict(st[1]) for name, st in json.loads(out)["data"]}


def test_the_spanning_tree_is_rooted_at_the_core_and_runs_over_the_primaries(province):
    """Left to chance, the root is the bridge with the lowest random MAC; cutting its site off then
    stalls the whole province for tens of seconds while RSTP re-elects (seen in CI)."""
    plan = province.plan
    status = rstp_status("Bridge")
    root, secondary = status[plan.node("core-1/lan")], status[plan.node("core-2/lan")]
    assert root["rstp_bridge_id"].startswith("1.") and secondary["rstp_bridge_id"].startswith("2.")  # 4096, 8192
    # the out-of-band management switches are a network of their own, with their own roots
    fabric = {n for n, s in plan.switches.items() if s.role != "oob"}
    assert {status[n]["rstp_root_id"] for n in fabric} == {root["rstp_bridge_id"]}
    # a district reaches the root over its primary uplink, whichever core that goes to
    role = {name: st.get("rstp_port_role") for name, st in rstp_status("Port").items()}
    uplinks = [l for l in plan.links if l.scenario_link and plan.switches[l.a].role == "agg"]
    assert {l.role for l in uplinks} == {"primary", "backup"}
    for link in uplinks:
        assert role[link.intf(link.a)] == ("Root" if link.role == "primary" else "Alternate"), link.scenario_link


def test_isolating_a_site_stops_its_traffic_and_restoring_brings_it_back(province):
    plan = province.plan
    assert ping(province, "h-lap-vo-xa-03-h1", "web-ttdt-1", tries=3)
    rec = faults.inject(plan, "isolate", "h-lap-vo-xa-03")
    assert rec.interfaces and rec.time <= time.time()
    try:
        assert not ping(province, "h-lap-vo-xa-03-h1", "web-ttdt-1")
        assert ping(province, "h-lap-vo-xa-04-h1", "web-ttdt-1", tries=3)  # its neighbour is not cut
    finally:
        faults.inject(plan, "restore", "h-lap-vo-xa-03")
    assert ping(province, "h-lap-vo-xa-03-h1", "web-ttdt-1", tries=10)
    actions = [r.action for r in faults.history(plan.prefix)]
    assert actions[-2:] == ["isolate", "restore"]


def test_a_dc_down_takes_its_servers_dark(province):
    plan = province.plan
    assert ping(province, "so-y-te-h1", "db-1", tries=3)
    faults.inject(plan, "dc-down", "provincial-dc")
    try:
        assert not ping(province, "so-y-te-h1", "db-1")
        assert not ping(province, "internet-h1", "web-dvc-1")
        assert ping(province, "so-y-te-h1", "bk-db-1", tries=10)  # the backup DC still answers
    finally:
        faults.inject(plan, "dc-up", "provincial-dc")
    assert ping(province, "so-y-te-h1", "db-1", tries=15)


def test_cutting_a_redundant_uplink_leaves_the_district_reachable(province):
    plan = province.plan
    faults.inject(plan, "link-down", "h-cao-lanh--core-1")
    try:
        assert ping(province, "h-cao-lanh-h1", "web-ttdt-1", tries=15)  # RSTP moved to the backup uplink
    finally:
        faults.inject(plan, "link-up", "h-cao-lanh--core-1")
    assert faults.active(plan.prefix) == []


def test_matrix_against_intent_and_a_miswired_network_shows_up_as_a_diff(province, dongthap):
    """Two probe sets: the network as built, then with a district cut off (mis-wired)."""
    from egovlab.topology.network import rstp_islands, wait_rstp_converged

    plan = province.plan
    wait_rstp_converged(plan.prefix, rstp_islands(plan))  # the tests before cut and restored links
    pids = province.pids
    planned = probes.matrix_plan(dongthap, plan)
    first = probes.run_matrix(planned, pids, plan.by_label, plan.prefix)
    # standalone switches enforce no policy: everything is reachable, every denied flow differs
    unreachable = [(r.probe.src_host, r.probe.dst_host, r.probe.port, r.probe.version, r.detail) for r in first
                   if not r.reachable]
    assert not unreachable, unreachable[:20]
    assert {id(r.probe) for r in first if r.differs} == {id(p) for p in planned if not p.intended}
    district = "tp-sa-dec"  # the district row and the communes' own district
    faults.inject(plan, "isolate", district)
    try:
        second = probes.run_matrix(planned, pids, plan.by_label, plan.prefix, timeout_s=2.0)
    finally:
        faults.inject(plan, "restore", district)
    newly = {(r.probe.src_host, r.probe.dst_host) for r in second if not r.reachable}
    assert newly, "cutting a district off must show in the matrix"
    elsewhere = sorted((src, dst) for src, dst in newly if district not in src and district not in dst)
    assert not elsewhere, f"pairs outside {district} lost: {elsewhere}"
    lost_intended = [r for r in second if r.probe.intended and not r.reachable]
    assert lost_intended and all(r.differs for r in lost_intended)


# -- lifecycle through the CLI, on the small scenario ---------------------------------------

def egovlab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(EGOVLAB), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def clean_prefix():
    prefix = "ec"
    cleanup.remove_lab(prefix)
    yield prefix
    egovlab("down", "--prefix", prefix)
    cleanup.remove_lab(prefix)
    assert_clean(prefix)


def test_a_bring_up_that_fails_half_way_leaves_nothing(clean_prefix, monkeypatch):
    from egovlab.topology.network import Lab

    sc = loader.load(SCENARIOS / "mini.yml")
    lab = Lab(sc, emulation_plan(sc, prefix=clean_prefix))

    def broken(self):
        raise RuntimeError("injected failure while addressing hosts")

    monkeypatch.setattr(Lab, "_address_hosts", broken)
    with pytest.raises(RuntimeError, match="injected"):
        lab.start()
    assert_clean(clean_prefix)


def test_up_fault_down_through_the_cli(clean_prefix):
    mini = str(SCENARIOS / "mini.yml")
    r = egovlab("up", mini, "--detach", "--standalone", "--prefix", clean_prefix)
    assert r.returncode == 0, r.stdout + r.stderr
    again = egovlab("up", mini, "--prefix", clean_prefix)
    assert again.returncode == 2 and "already up" in again.stderr and "Traceback" not in again.stderr
    r = egovlab("fault", "link-down", "town--core", "--prefix", clean_prefix)
    assert r.returncode == 0 and "link-down town--core" in r.stdout
    bad = egovlab("fault", "link-down", "no-such-link", "--prefix", clean_prefix)
    assert bad.returncode == 2 and "unknown link 'no-such-link'" in bad.stderr and "Traceback" not in bad.stderr
    listed = egovlab("fault", "list", "--prefix", clean_prefix)
    assert "town--core" in listed.stdout
    assert egovlab("fault", "clear", "--prefix", clean_prefix).returncode == 0
    matrix = egovlab("probe", "matrix", "--prefix", clean_prefix)
    assert matrix.returncode == 0 and "differ from intent" in matrix.stdout
    r = egovlab("down", "--prefix", clean_prefix)
    assert r.returncode == 0, r.stderr
    assert_clean(clean_prefix)
    r = egovlab("down", "--prefix", clean_prefix)  # idempotent
    assert r.returncode == 0 and "nothing was running" in r.stdout
    r = egovlab("fault", "link-down", "town--core", "--prefix", clean_prefix)
    assert r.returncode == 2 and "no lab" in r.stderr


def test_check_on_the_small_scenario_writes_its_report(clean_prefix, tmp_path):
    out = tmp_path / "check.json"
    r = egovlab("check", str(SCENARIOS / "mini.yml"), "--prefix", clean_prefix, "--json", str(out),
                "--failover", "town--core")
    assert r.returncode == 0, r.stdout + r.stderr
    import json
    report = json.loads(out.read_text())
    assert report["probes"] == len(report["results"]) > 0
    fo = report["failover"]
    assert fo["sent"] > 0 and fo["lost"] > 0  # town is single-homed: cutting its uplink loses traffic
    assert_clean(clean_prefix)


def test_the_same_network_runs_under_an_external_openflow_controller(clean_prefix):
    """Fail-secure switches under a real OpenFlow controller (Open vSwitch's learning-switch
    test controller) instead of standalone: nothing in the network changes but the mode."""
    import shutil
    import socket

    from egovlab.topology.network import Lab

    binary = shutil.which("ovs-testcontroller")
    assert binary, "ovs-testcontroller is installed by scripts/setup.sh"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = subprocess.Popen([binary, f"ptcp:{port}:127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sc = loader.load(SCENARIOS / "mini.yml")  # loop-free: a learning switch needs no spanning tree
        lab = Lab(sc, emulation_plan(sc, prefix=clean_prefix), controller=("127.0.0.1", port))
        try:
            lab.start()
            out = subprocess.run(["ovs-vsctl", "get", "Bridge", f"{clean_prefix}s1", "fail_mode"],
                                 capture_output=True, text=True).stdout.strip()
            assert out == "secure"
            assert ping(lab, "town-xa-01-h1", "web-1", tries=10)
            assert ping(lab, "town-xa-02-h1", "db-1", version=6, tries=10)
        finally:
            lab.stop()
    finally:
        ctl.terminate()
        ctl.wait(timeout=10)
    assert_clean(clean_prefix)
