"""A lab spread over several Open vSwitch daemons (`--ovs-shards`), as root on the real kernel."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from egovlab import lifecycle, operations
from egovlab.topology import cleanup, faults, ovs_shards, probes

from .conftest import EGOVLAB, SCENARIOS

pytestmark = [pytest.mark.emulation, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="emulation needs root (CI runs as root)")]
NOTHING = {"bridges": [], "links": [], "processes": [], "ovs_shards": []}


def small_udp(tmp_path):
    """small-dc with a UDP port on the portal that the district may reach: the failover probe's."""
    text = (SCENARIOS / "small-dc.yml").read_text()
    text = text.replace("portal: {zone: dmz, ports: [tcp/443]", "portal: {zone: dmz, ports: [tcp/443, udp/10000]")
    assert "udp/10000" in text
    path = tmp_path / "small-udp.yml"
    path.write_text(text)
    return path


def bridges(shard: ovs_shards.Shard | None) -> set[str]:
    env = {**os.environ, **shard.env} if shard else None
    out = subprocess.run(["ovs-vsctl", "--timeout=10", "list-br"], capture_output=True, text=True, env=env, check=True)
    return set(out.stdout.split())


def processes_in(netns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_a_sharded_lab_runs_its_switches_in_their_own_daemons_enforces_the_policy_and_fails_over(tmp_path):
    prefix = "ev"
    cleanup.remove_lab(prefix)
    try:
        lifecycle.start_detached(str(small_udp(tmp_path)), lifecycle.spec(prefix, ovs_shards=3))
        record, sc, plan = operations.running_lab(prefix)
        assert record.spec.ovs_shards == 3
        shards = ovs_shards.existing(prefix)
        assert [s.netns for s in shards] == [f"{prefix}-ovs1", f"{prefix}-ovs2", f"{prefix}-ovs3"]
        # every switch in exactly one shard's daemon, none in the system's; each shard has its own
        per_shard = [bridges(s) for s in shards]
        assert all(per_shard) and set().union(*per_shard) == set(plan.switches)
        assert sum(map(len, per_shard)) == len(plan.switches)
        assert not {b for b in bridges(None) if b.startswith(prefix + "s")}
        assert all(len(processes_in(s.netns)) >= 2 for s in shards)  # ovsdb-server + ovs-vswitchd
        # the controller reached every switch through the relays: the policy holds, IPv4 and IPv6
        out = tmp_path / "matrix.json"
        r = subprocess.run([str(EGOVLAB), "probe", "matrix", "--prefix", prefix, "--json", str(out)],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        report = json.loads(out.read_text())
        assert report["differ"] == 0 and report["reachable"] == report["intended"] > 0
        assert {res["version"] for res in report["results"]} == {4, 6}
        # a cut in a shard: the kernel state shows it (read through the shard's sysfs), and the
        # fast-failover group carries the flow over the backup uplink
        src, dst, port = probes.failover_pair(sc, plan, "town--core-1")
        res = probes.failover_probe(plan, record.pids, "town--core-1", src, dst, port=port, seconds=3.0,
                                    cut_after=1.0, restore=False)
        try:
            assert set(faults.links_down(plan)) == {"town--core-1"}
        finally:
            faults.inject(plan, "link-up", "town--core-1")
        assert res.received > res.sent * 0.9 and res.lost > 0, res
        assert faults.links_down(plan) == {}  # at once: read from the carrier (tests/test_netstate.py)
    finally:
        lifecycle.stop(prefix)
    assert cleanup.leftovers(prefix) == NOTHING
    assert not any(n.startswith(f"{prefix}-ovs") for n in os.listdir("/run/netns"))


def test_down_removes_the_shards_of_a_lab_whose_process_was_killed():
    prefix = "ew"
    cleanup.remove_lab(prefix)
    try:
        pid, _ = lifecycle.start_detached(str(SCENARIOS / "small-dc.yml"), lifecycle.spec(prefix, sdn=False,
                                                                                        ovs_shards=2))
        daemons = [p for s in ovs_shards.existing(prefix) for p in processes_in(s.netns)]
        assert len(daemons) >= 4
        os.kill(pid, signal.SIGKILL)  # standalone + RSTP in two daemons, then the lab dies
        time.sleep(0.5)
        r = subprocess.run([str(EGOVLAB), "down", "--prefix", prefix], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    finally:
        cleanup.remove_lab(prefix)
    assert cleanup.leftovers(prefix) == NOTHING
    for p in daemons:
        assert not alive(p), f"shard daemon {p} survived"


def alive(pid: int) -> bool:
    """Running (a zombie is dead: this machine's init does not reap the daemons it inherits)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
