"""The SDN controller on the real emulation (os-ken + Open vSwitch, as root)."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time

import pytest

from egovlab import lifecycle
from egovlab.sdn import compiler, launcher, program
from egovlab.topology import cleanup, faults

from .conftest import EGOVLAB, SCENARIOS

pytestmark = [pytest.mark.emulation, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="emulation needs root (CI runs as root)")]


def test_the_full_province_under_the_controller_matches_the_intended_policy_exactly(tmp_path):
    """Every probe of the matrix, IPv4 and IPv6: reachable exactly when the policy allows it; the
    switches spread over 24 Open vSwitch daemons (so each edge keeps its own conntrack)."""
    prefix = "es"
    cleanup.remove_lab(prefix)
    out = tmp_path / "check.json"
    try:
        r = subprocess.run([str(EGOVLAB), "check", "dongthap", "--sdn", "--prefix", prefix, "--json", str(out),
                            "--strict", "--failover", "h-cao-lanh--core-1", "--ovs-shards", "24"], capture_output=True, text=True,
                           timeout=1200)
    finally:
        cleanup.remove_lab(prefix)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["differ"] == 0 and report["probes"] > 1000
    # intent, the verified program and the measurement agree on every probed pair
    assert report["three_way"]["program_differs_from_intent"] == 0
    assert report["three_way"]["measured_differs_from_program"] == 0
    assert all(res["verified"] == res["intended"] == res["reachable"] for res in report["results"])
    assert report["reachable"] == report["intended"] > 0
    assert {res["version"] for res in report["results"]} == {4, 6}
    assert report["controller"]["installed"] and len(report["controller"]["installed"]) == 210
    fo = report["failover"]
    # the fast-failover group moves the flow to the backup uplink: a short outage, not a lost path
    assert fo["received"] > fo["sent"] * 0.8 and fo["outage_ms"] < 1000
    assert cleanup.leftovers(prefix) == {"bridges": [], "links": [], "processes": [], "ovs_shards": []}


@contextlib.contextmanager
def controlled_lab(scenario, prefix: str, ovs_shards: int = 1):
    """A lab under egovlab's controller, both removed afterwards whatever happens, and nothing left."""
    with lifecycle.session(scenario, lifecycle.spec(prefix, ovs_shards=ovs_shards), timeout_s=60) as lab:
        yield lab
    assert cleanup.leftovers(prefix) == {"bridges": [], "links": [], "processes": [], "ovs_shards": []}


def _tcp(lab, src: str, dst: str, port: int) -> bool:
    """A completed or refused TCP handshake from src to dst (the path and the policy let it through)."""
    addr = lab.plan.hosts[lab.plan.node(dst)].ipv4.ip
    code = ("import socket,sys\ns=socket.socket();s.settimeout(2)\n"
            f"try:\n s.connect(('{addr}',{port}));sys.exit(0)\n"
            "except ConnectionRefusedError:\n sys.exit(0)\nexcept OSError:\n sys.exit(1)\n")
    r = subprocess.run(["nsenter", "-t", str(lab.pid(src)), "-n", "python3", "-c", code], capture_output=True)
    return r.returncode == 0


def _ofctl(lab, command: str, bridge: str, *args: str) -> str:
    """ovs-ofctl COMMAND BRIDGE ARGS..., asked of the Open vSwitch daemon that runs the bridge."""
    shard = lab.net[bridge].shard
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", command, bridge, *args], capture_output=True, text=True,
                          check=True, env={**os.environ, **shard.env} if shard else None).stdout


def _flow_count(lab, bridge: str) -> tuple[int, int]:
    """Rules and groups the switch holds."""
    flows = _ofctl(lab, "dump-flows", bridge, f"cookie={compiler.COOKIE:#x}/-1").splitlines()
    groups = _ofctl(lab, "dump-groups", bridge).splitlines()
    return sum("cookie=" in l for l in flows), sum("group_id=" in l for l in groups)


@pytest.mark.parametrize("ovs_shards", [1, 3])
def test_controller_failure_leaves_traffic_flowing_and_a_restart_converges_to_the_same_rules(ovs_shards):
    """Also with the switches spread over three Open vSwitch daemons, reached through the relay.
    The restarted controller finds each switch holding its program (a warm start, by the
    program's fingerprint) and sends nothing: the rules stay (their counters and age run on);
    a link cut while no controller ran is seen at reconnection and recomputed for."""
    prefix = "ek"
    with controlled_lab(SCENARIOS / "mini.yml", prefix, ovs_shards) as lab:
        plan = lab.plan
        programs = compiler.compile_network(lab.scenario, plan)
        assert _tcp(lab, "town-h1", "web-1", 443)  # district -> portal: allowed
        assert not _tcp(lab, "town-xa-01-h1", "db-1", 5432)  # commune -> database: denied
        edge = plan.node("dc/core")
        expected = (len(programs[plan.switches[edge].dpid].rules), len(programs[plan.switches[edge].dpid].groups))
        assert _flow_count(lab, edge) == expected

        os.killpg(lab.controller_process.pid, signal.SIGKILL)  # the controller dies
        lab.controller_process.wait(timeout=10)
        time.sleep(2)
        assert _tcp(lab, "town-h1", "web-1", 443)  # fail-secure: installed rules keep working
        assert not _tcp(lab, "town-xa-01-h1", "db-1", 5432)
        age = _youngest_rule_s(lab, edge)
        # one switch without its fingerprint (as an update cut short leaves it): read back in full
        _ofctl(lab, "del-flows", edge, f"table={program.TABLE_FINGERPRINT}")

        restarted = time.time()
        lab.controller_process, _ = launcher.start(lab.scenario.source, prefix=prefix, hosts_per_site=None,
                                                   port=lab.controller[1])
        status = launcher.wait_programmed(prefix, len(plan.switches), since=restarted, timeout_s=60)
        # each switch known by its fingerprint but the one read back, which holds every rule as
        # compiled (what os-ken decodes of Open vSwitch's replies equals the program): nothing sent
        assert status["installs"] == len(plan.switches) and status["warm_starts"] == len(plan.switches) - 1
        assert status["resync_rule_changes"] == 0
        assert _flow_count(lab, edge) == expected  # the same rules, no duplicates
        assert _youngest_rule_s(lab, edge) >= age + time.time() - restarted - 1  # not reinstalled
        assert _has_fingerprint(lab, edge)
        assert _tcp(lab, "town-h1", "web-1", 443)

        # a cut while no controller runs: a restarted controller learns it from the ports it reads
        os.killpg(lab.controller_process.pid, signal.SIGKILL)
        lab.controller_process.wait(timeout=10)
        cut = set(faults.inject(plan, "link-down", "town-xa-02--town").interfaces)
        restarted = time.time()
        lab.controller_process, _ = launcher.start(lab.scenario.source, prefix=prefix, hosts_per_site=None,
                                                   port=lab.controller[1])
        launcher.wait_programmed(prefix, len(plan.switches), since=restarted, timeout_s=60)
        deadline = time.monotonic() + 10
        status = launcher.status(prefix)
        while not (cut <= set(status["down"]) and status["recomputes"]) and time.monotonic() < deadline:
            time.sleep(0.2)
            status = launcher.status(prefix)
        assert cut <= set(status["down"]) and status["recomputes"] >= 1
        assert _tcp(lab, "town-h1", "web-1", 443)

        # the audit reads every switch back: each holds exactly its program, which is what the
        # pure compiler makes of the network with that link cut; a rule taken away shows
        audit = launcher.control(prefix, "audit", {})
        cut_now = faults.with_peers(plan, cut)
        compiled = compiler.compile_network(lab.scenario, plan, down=cut_now)
        assert not audit["unanswered"] and not audit["not_connected"] and len(audit["switches"]) == len(plan.switches)
        for name, found in audit["switches"].items():
            assert (found["missing_rules"], found["extra_rules"], found["groups"], found["meters"]) == (0, 0, 0, 0)
            assert found["fingerprint"] == program.fingerprint(compiled[plan.switches[name].dpid]).cookie, name
        _ofctl(lab, "del-flows", edge, "table=0,arp")
        assert launcher.control(prefix, "audit", {})["switches"][edge]["missing_rules"] == 1


def _has_fingerprint(lab, bridge: str) -> bool:
    return "cookie=" in _ofctl(lab, "dump-flows", bridge, f"table={program.TABLE_FINGERPRINT}")


def _youngest_rule_s(lab, bridge: str) -> float:
    """Seconds the most recently (re)installed rule of this controller has been on the switch."""
    flows = _ofctl(lab, "dump-flows", bridge, f"cookie={compiler.COOKIE:#x}/-1")
    return min(float(d) for d in re.findall(r"duration=([0-9.]+)s", flows))


def test_tap_copies_reach_the_soc_sensor_and_a_flooding_citizen_is_held_to_its_meter():
    with controlled_lab(SCENARIOS / "small-dc.yml", "ed") as lab:
        plan = lab.plan
        ids = plan.hosts[plan.node("ids-1")]
        web1, web2 = (plan.hosts[plan.node(n)] for n in ("web-1", "web-2"))
        # TAP: count what the sensor sees of a citizen's connections to the portal
        cap = subprocess.Popen(["nsenter", "-t", str(lab.pid("ids-1")), "-n", "timeout", "8", "tcpdump", "-l", "-n",
                                "-i", f"{ids.name}-eth0", f"tcp port 443 and host {web1.ipv4.ip}"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(2)
        for _ in range(10):
            assert _tcp(lab, "internet-h1", "web-1", 443)
        assert _tcp(lab, "web-2", "web-1", 443)  # inside the DMZ: never crosses the DC core
        seen = cap.communicate(timeout=20)[0].splitlines()
        citizen = str(plan.hosts[plan.node("internet-h1")].ipv4.ip)
        assert sum(citizen in line for line in seen) >= 20  # SYN in, RST out, for each of 10 tries
        assert not any(str(web2.ipv4.ip) in line for line in seen)
        # DDoS meter: a citizen's bulk transfer to the portal is held to the per-source rate
        server = subprocess.Popen(["nsenter", "-t", str(lab.pid("web-1")), "-n", "iperf3", "-s", "-1", "-p", "443",
                                   "--logfile=/dev/null"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        r = subprocess.run(["nsenter", "-t", str(lab.pid("internet-h1")), "-n", "iperf3", "-c", str(web1.ipv4.ip),
                            "-p", "443", "-t", "4", "-J"], capture_output=True, text=True, timeout=60)
        server.wait(timeout=30)
        bps = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"]
        assert 0 < bps <= compiler.DDOS_RATE_KBPS * 1000 * 1.5, bps
        stats = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "meter-stats", plan.site_switch["internet"]],
                               capture_output=True, text=True).stdout
        dropped = [int(x.split("=")[1].rstrip(",")) for x in stats.split() if x.startswith("packet_count=")]
        assert any(d > 0 for d in dropped[1:]) or "band" in stats  # the band dropped what exceeded the rate
        assert _tcp(lab, "internet-h2", "web-2", 443)  # another citizen is still served


def _scrape(url: str) -> dict[tuple[str, tuple], float]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_controller_exports_rules_zone_pair_bytes_policy_drops_and_failovers():
    from egovlab.sdn import app
    from egovlab.topology import faults
    from egovlab.topology.state import state_dir

    with controlled_lab(SCENARIOS / "mini.yml", "em") as lab:
        plan = lab.plan
        url = json.loads((state_dir("em") / "controller.json").read_text())["metrics"]
        before = _scrape(url)
        for _ in range(5):
            assert _tcp(lab, "town-h1", "web-1", 443)  # district -> DMZ: allowed, counted
        assert not _tcp(lab, "town-xa-01-h1", "db-1", 5432)  # commune -> DB: dropped, counted
        cut = faults.inject(plan, "link-down", "town--core")
        time.sleep(3 * app.POLL_S)
        after = _scrape(url)
        programs = compiler.compile_network(lab.scenario, plan, down=set(cut.interfaces))  # re-optimised
        edge = plan.node("town/lan")
        assert after[("egovlab_sdn_rules", (("switch", edge),))] == len(programs[plan.switches[edge].dpid].rules)
        pair = ("egovlab_sdn_zone_pair_bytes_total", (("dst_zone", "dmz"), ("src_zone", "district")))
        assert after[pair] - before.get(pair, 0) > 5 * 40  # SYN-ACK/ACK/FIN packets of five connections
        assert after.get(("egovlab_sdn_zone_pair_bytes_total", (("dst_zone", "db"), ("src_zone", "commune"))),
                         0) == 0
        commune_edge = plan.node("town-xa-01/lan")
        drops = ("egovlab_sdn_policy_drops_total", (("switch", commune_edge),))
        assert after[drops] - before.get(drops, 0) >= 1  # the SYN (and its retries)
        assert after[("egovlab_sdn_failovers_total", ())] == 1  # one link, two ends
        assert after[("egovlab_sdn_switches_programmed", ())] == len(plan.switches)
