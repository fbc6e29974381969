"""The failover suite on a full kernel (run inside egovlab's VM: `egovlab vm test`): Open vSwitch's
kernel datapath, and the scenario's WAN delays applied with netem. Skipped where the kernel
lacks either (this machine kind), never faked."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import networkx as nx
import pytest

from egovlab.sdn import compiler
from egovlab.topology import cleanup, probes
from egovlab.topology.environment import detect

from .conftest import SCENARIOS
from .test_sdn import controlled_lab

ENV = detect()
pytestmark = [pytest.mark.emulation, pytest.mark.fullkernel,
              pytest.mark.skipif(os.geteuid() != 0 or not (ENV.netem and ENV.ovs_kernel_module),
                                 reason="needs the full kernel: netem and the OVS module (egovlab vm test)")]
FIGURES: dict = {}


def _record(**figures) -> None:
    """Figures for the host (the runner brings $EGOVLAB_RESULTS/fullkernel.json back)."""
    FIGURES.update(figures)
    out = os.environ.get("EGOVLAB_RESULTS")
    if out:
        Path(out, "fullkernel.json").write_text(json.dumps(FIGURES, indent=1))


def expected_rtt_ms(plan, src: str, dst: str, down: set[str] = frozenset()) -> float:
    """Twice the sum of the link delays on the path the controller chooses (netem delays each
    direction once per link)."""
    g = compiler.topology_graph(plan, down)
    attached = compiler.attachments(plan)
    a, b = attached[plan.node(src)][0], attached[plan.node(dst)][0]
    path = nx.shortest_path(compiler.simple_graph(g), a, b, weight="weight")
    delay = {frozenset((l.a, l.b)): l.delay_ms or 0.0 for l in plan.links}
    return 2 * sum(delay[frozenset(hop)] for hop in zip(path, path[1:]))


def _rtt_ms(lab, src: str, dst: str, count: int = 10) -> float:
    """The minimum RTT of `count` pings: netem's delay is its floor, and the minimum is the sample
    least inflated by an emulated (TCG) VM's scheduling (a CI run's mean read 55.3 ms for 50)."""
    addr = lab.plan.hosts[lab.plan.node(dst)].ipv4.ip
    out = subprocess.run(["nsenter", "-t", str(lab.pid(src)), "-n", "ping", "-c", str(count), "-i", "0.2",
                          "-q", str(addr)], capture_output=True, text=True, timeout=60).stdout
    return float(re.search(r"= ([\d.]+)/[\d.]+/", out).group(1))


def test_the_wan_delays_are_emulated_and_the_kernel_datapath_is_used():
    with controlled_lab(SCENARIOS / "wan.yml", "ew") as lab:
        dp = subprocess.run(["ovs-dpctl", "show"], capture_output=True, text=True).stdout
        assert "system@ovs-system" in dp
        qdiscs = subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True).stdout
        assert "netem" in qdiscs and "delay 20ms" in qdiscs
        _rtt_ms(lab, "town-h1", "web-1", count=3)  # warm up: the controller answers ARP once
        measured = _rtt_ms(lab, "town-h1", "web-1")
        expected = expected_rtt_ms(lab.plan, "town-h1", "web-1")
        assert expected == 50.0  # town->core-1 20 ms, core-1->dc 5 ms, each way
        assert abs(measured - expected) <= 0.1 * expected, (measured, expected)
        _record(datapath="kernel", rtt_ms=measured, expected_rtt_ms=expected, up_s=round(lab.timings["up_s"], 2))


def test_a_cut_uplink_fails_over_with_the_delay_present():
    with controlled_lab(SCENARIOS / "wan.yml", "ef") as lab:
        pids = lab.pids
        _rtt_ms(lab, "town-h1", "web-1", count=3)
        res = probes.failover_probe(lab.plan, pids, "town--core-1", "town-h1", "web-1", port=5000, seconds=4.0,
                                    cut_after=1.5, restore=False)
        assert res.received > res.sent * 0.5 and res.outage_ms < 2000
        cut = {i for l in lab.plan.links_of_scenario_link("town--core-1") for i in (l.intf(l.a), l.intf(l.b))}
        after = _rtt_ms(lab, "town-h1", "web-1")
        expected = expected_rtt_ms(lab.plan, "town-h1", "web-1", down=cut)
        assert expected == 74.0  # town->core-2 30 ms, core-2->core-1 2 ms, core-1->dc 5 ms
        assert abs(after - expected) <= 0.1 * expected, (after, expected)
        _record(outage_ms=res.outage_ms, lost=res.lost, sent=res.sent, rtt_after_cut_ms=after,
                expected_rtt_after_cut_ms=expected)
    assert cleanup.leftovers("ef") == {"bridges": [], "links": [], "processes": [], "ovs_shards": []}
