"""What the builder asks of Open vSwitch and tc, from the plan alone (no root): every switch end
of every link becomes its bridge's port with the plan's port number, the bridge options follow
the mode (standalone RSTP or fail-secure under a controller), and each end of a shaped link
gets the link's bandwidth, delay and loss."""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from egovlab.inventory import loader
from egovlab.topology import builder, shaping
from egovlab.topology.model import emulation_plan, rstp_port_costs, rstp_priorities


@pytest.fixture(scope="module")
def plan():
    return emulation_plan(loader.load("dongthap"), prefix="tb")


def transactions(args: list[str]) -> list[list[str]]:
    """ovs-vsctl's commands, split at its `--` separators."""
    out, cur = [], []
    for a in args[2:]:
        if a == "--":
            if cur:
                out.append(cur)
            cur = []
        else:
            cur.append(a)
    return out + ([cur] if cur else [])


def test_every_switch_end_is_a_port_of_its_bridge_numbered_as_planned(plan):
    opts = builder.BridgeOptions(datapath="user", controller=("127.0.0.1", 6653))
    commands = transactions(builder.vsctl_args(plan, list(plan.switches), opts))
    ports = {(c[1], c[2]) for c in commands if c[0] == "add-port"}
    numbers = {c[2]: c[3] for c in commands if c[:2] == ["set", "Interface"]}
    wanted = {(node, link.intf(node)) for link in plan.links for node in (link.a, link.b) if node in plan.switches}
    assert ports == wanted
    assert numbers == {link.intf(node): f"ofport_request={link.port(node)}"
                       for link in plan.links for node in (link.a, link.b) if node in plan.switches}
    assert {c[1] for c in commands if c[0] == "add-br"} == set(plan.switches)


def test_under_a_controller_each_bridge_is_fail_secure_with_its_dpid_and_controller(plan):
    opts = builder.BridgeOptions(datapath="user", controller=("127.0.0.1", 6653))
    commands = transactions(builder.vsctl_args(plan, ["tbs1"], opts))
    bridge = next(c for c in commands if c[:3] == ["set", "bridge", "tbs1"])
    assert f"other_config:datapath-id={plan.switches['tbs1'].dpid:016x}" in bridge
    assert {"fail_mode=secure", "protocols=OpenFlow13", "datapath_type=netdev", "controller=[@tbs1c0]"} <= set(bridge)
    assert not any("rstp" in a for c in commands for a in c)
    assert ["--id=@tbs1c0", "create", "Controller", 'target="tcp:127.0.0.1:6653"', "max_backoff=1000"] in commands


def test_standalone_bridges_run_rstp_with_edge_host_ports_and_the_planned_costs(plan):
    costs = rstp_port_costs(plan)
    opts = builder.BridgeOptions(datapath="kernel", controller=None, rstp_priority=rstp_priorities(plan),
                                 rstp_costs=costs)
    commands = transactions(builder.vsctl_args(plan, list(plan.switches), opts))
    bridges = [c for c in commands if c[:2] == ["set", "bridge"]]
    assert all("rstp_enable=true" in b and "fail_mode=standalone" in b for b in bridges)
    assert not any("datapath_type=netdev" in b for b in bridges)
    edge = {c[2] for c in commands if c[:2] == ["set", "Port"] and c[3] == "other_config:rstp-port-admin-edge=true"}
    assert edge == {link.intf(node) for link in plan.links for node, peer in ((link.a, link.b), (link.b, link.a))
                    if node in plan.switches and peer in plan.hosts}
    cost = {c[2]: c[3] for c in commands if c[:2] == ["set", "Port"] and "rstp-path-cost" in c[3]}
    assert cost and all(cost[i] == f"other_config:rstp-path-cost={costs[i]}" for i in cost)


def test_each_end_of_a_shaped_link_gets_its_bandwidth_delay_and_loss():
    plan = emulation_plan(loader.load("tests/scenarios/wan.yml"), prefix="tb")
    shaped = [l for l in plan.links if l.delay_ms or l.loss_pct]
    assert shaped, "the WAN scenario has delayed links"
    lines = shaping.netem_commands(shaped)
    for link in shaped:
        for node in (link.a, link.b):
            dev = link.intf(node)
            mine = [x for x in lines[node] if f" dev {dev} " in x]
            assert f"class add dev {dev} parent 5:0 classid 5:1 htb rate {link.bandwidth / 1e6:g}Mbit burst 15k" in mine
            netem = next(x for x in mine if "netem" in x)
            assert (f"delay {link.delay_ms}ms" in netem) == bool(link.delay_ms)
            assert (f"loss {link.loss_pct}%" in netem) == bool(link.loss_pct)


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs root")
def test_cleanup_finds_a_labs_node_processes_and_what_runs_in_its_hosts_and_nothing_of_another_lab():
    from egovlab.topology import cleanup

    mine = builder.holder("tqh1", new_netns=True)
    other = builder.holder("tqxh1", new_netns=True)  # another lab, whose prefix starts like this one's
    root = builder.holder("tq-root")
    procs = [mine, other, root]
    try:
        builder._wait_for_namespaces([mine.pid, other.pid])
        inside = subprocess.Popen(["nsenter", "-t", str(mine.pid), "-n", "sleep", "30"])
        procs.append(inside)
        time.sleep(0.2)
        assert sorted(cleanup.lab_processes("tq")) == sorted([mine.pid, root.pid, inside.pid])
        assert sorted(cleanup.lab_processes("tq", helpers=False)) == sorted([mine.pid, root.pid])
        assert cleanup.lab_processes("tqx", helpers=False) == [other.pid]
    finally:
        for p in procs:
            p.kill()
            p.wait()
