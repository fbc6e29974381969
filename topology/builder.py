"""The nodes, links and bridges of an `EmulationPlan`, made directly with the kernel's netlink
(pyroute2) and one ovsdb transaction per Open vSwitch daemon.

Mininet gives every node an interactive shell and talks to it (a prompt read, then a command
and its echo per interface), and runs `ip link` processes per link: the province came up at
0.74x plain Mininet's node rate. Here a node is one process that holds its network namespace
(`sleep` renamed `egovlab-node=<name>`, what cleanup finds it by), every veth is one netlink
request that creates both ends in their namespaces, and a namespace is entered once by a
thread of this process to configure all of its interfaces. (Link shaping: topology/shaping.py.)

Where a link's interfaces live: a host's in the host's namespace; a switch's in its Open
vSwitch shard's namespace, or in the root namespace when the system's daemon runs it.
"""
from __future__ import annotations

import os
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field

from pyroute2 import IPRoute

from . import netns
from .model import EmulationPlan, EmuLink
from .ovs_shards import Shard
from .state import LabError

HOLDER_MARK = "egovlab-node="
RECONNECT_MS = 1000  # a bridge's longest wait between attempts to reach its controller


@dataclass
class Node:
    """A running node: the process whose network namespace it is, and its shard (switches)."""
    name: str
    pid: int
    shard: Shard | None = None


@dataclass
class Fabric:
    nodes: dict[str, Node] = field(default_factory=dict)
    holders: list[subprocess.Popen] = field(default_factory=list)

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]


def holder(name: str, *, new_netns: bool = False, shard: Shard | None = None) -> subprocess.Popen:
    """A process that only holds a namespace: a new one (a host), a shard's, or the root one."""
    argv = ["bash", "-c", f"exec -a {HOLDER_MARK}{name} sleep infinity"]
    if new_netns:
        argv = ["unshare", "--net", "--", *argv]
    elif shard is not None:
        argv = ["ip", "netns", "exec", shard.netns, *argv]
    # No descriptor of ours: a pipe our caller reads to its end (stderr) must end when we do.
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _wait_for_namespaces(pids: list[int], timeout_s: float = 30.0) -> None:
    """Until every process has left this namespace (unshare, or `ip netns exec`, has run)."""
    ours = os.readlink("/proc/self/ns/net")
    deadline = time.monotonic() + timeout_s
    pending = list(pids)
    while pending:
        for pid in list(pending):
            try:
                if os.readlink(f"/proc/{pid}/ns/net") != ours:
                    pending.remove(pid)
            except OSError:
                raise LabError(f"a node's process (pid {pid}) exited at start") from None
        if pending and time.monotonic() > deadline:
            raise LabError(f"{len(pending)} node processes did not enter their namespaces in {timeout_s:.0f} s")
        if pending:
            time.sleep(0.002)


def start_nodes(plan: EmulationPlan, placed: dict[str, Shard | None], progress) -> Fabric:
    """A holder per host (its own namespace) and per namespace the switches live in."""
    fabric = Fabric()
    total = len(plan.hosts)
    for i, name in enumerate(plan.hosts, 1):
        proc = holder(name, new_netns=True)
        fabric.holders.append(proc)
        fabric.nodes[name] = Node(name, proc.pid)
        if i % 25 == 0 or i == total:
            progress("creating hosts", i, total)
    spaces: dict[Shard | None, int] = {}
    for shard in dict.fromkeys(placed.values()):
        proc = holder(f"{plan.prefix}-ovs{shard.index}" if shard else f"{plan.prefix}-root", shard=shard)
        fabric.holders.append(proc)
        spaces[shard] = proc.pid
    for name in plan.switches:
        fabric.nodes[name] = Node(name, spaces[placed[name]], placed[name])
    progress("creating switches", len(plan.switches), len(plan.switches))
    _wait_for_namespaces([fabric[h].pid for h in plan.hosts] + [pid for shard, pid in spaces.items() if shard])
    return fabric


def _end(plan: EmulationPlan, link: EmuLink, node: str) -> dict:
    """The netlink attributes that name and place one end of a link."""
    attrs: dict = {"ifname": link.intf(node)}
    host = plan.hosts.get(node)
    if host is not None:
        attrs["address"] = host.mgmt_mac if link.kind == "mgmt" else host.mac
    return attrs


def wire(plan: EmulationPlan, fabric: Fabric, progress) -> None:
    """Every link as a veth pair created by one request with both ends in their namespaces; the
    switches' ends configured (no IPv6: a switch port carries none) and up, a namespace at a time.
    Host ends are configured with the host's addresses later (network._configure_host)."""
    fds: dict[int, int] = {}
    by_space: dict[Shard | None, list[str]] = defaultdict(list)
    try:
        with IPRoute() as ipr:
            for i, link in enumerate(plan.links, 1):
                a, b = _end(plan, link, link.a), _end(plan, link, link.b)
                for node, attrs in ((link.a, a), (link.b, b)):
                    n = fabric[node]
                    if node in plan.switches:
                        by_space[n.shard].append(attrs["ifname"])
                        if n.shard is None:
                            continue  # the root namespace: where it is made
                    if n.pid not in fds:
                        fds[n.pid] = os.open(f"/proc/{n.pid}/ns/net", os.O_RDONLY)
                    attrs["net_ns_fd"] = fds[n.pid]
                ipr.link("add", kind="veth", **a, peer=b)
                if i % 50 == 0 or i == len(plan.links):
                    progress("wiring links", i, len(plan.links))
    finally:
        for fd in fds.values():
            os.close(fd)
    for shard, names in by_space.items():
        with netns.iproute(shard.netns if shard else None) as ipr:
            for name in names:
                with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
                    f.write("1")
                ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")


@dataclass(frozen=True)
class BridgeOptions:
    datapath: str  # "user" (userspace, netdev) or "kernel"
    controller: tuple[str, int] | None  # None: standalone with RSTP
    rstp_priority: dict[str, int] = field(default_factory=dict)  # switch -> priority (absent: default)
    rstp_costs: dict[str, int] = field(default_factory=dict)  # interface -> port path cost


def vsctl_args(plan: EmulationPlan, switches: list[str], opts: BridgeOptions) -> list[str]:
    """One ovs-vsctl transaction that makes these bridges with their ports (as Mininet's
    OVSSwitch does, in batch)."""
    ports: dict[str, list[tuple[int, str, bool]]] = defaultdict(list)  # switch -> (port, intf, to a host)
    for link in plan.links:
        for node, peer in ((link.a, link.b), (link.b, link.a)):
            if node in plan.switches:
                ports[node].append((link.port(node), link.intf(node), peer in plan.hosts))
    standalone = opts.controller is None
    args = ["ovs-vsctl", "--timeout=60"]
    for name in switches:
        s = plan.switches[name]
        args += ["--", "--if-exists", "del-br", name, "--", "add-br", name]
        bridge = [f"other_config:datapath-id={s.dpid:016x}", f"fail_mode={'standalone' if standalone else 'secure'}",
                  "other-config:disable-in-band=true", "protocols=OpenFlow13", f"other-config:dp-desc={name}"]
        if opts.datapath == "user":
            bridge.append("datapath_type=netdev")
        if standalone:
            bridge.append("rstp_enable=true")
            if name in opts.rstp_priority:
                bridge.append(f"other_config:rstp-priority={opts.rstp_priority[name]}")
        else:
            ip, port = opts.controller
            args += ["--", f"--id=@{name}c0", "create", "Controller", f"target=\"tcp:{ip}:{port}\"",
                     f"max_backoff={RECONNECT_MS}"]
            bridge.append(f"controller=[@{name}c0]")
        args += ["--", "set", "bridge", name, *bridge]
        for port, intf, to_host in sorted(ports[name]):
            args += ["--", "add-port", name, intf, "--", "set", "Interface", intf, f"ofport_request={port}"]
            if standalone and to_host:  # a host port is an edge port: forward at once
                args += ["--", "set", "Port", intf, "other_config:rstp-port-admin-edge=true"]
            elif standalone and intf in opts.rstp_costs:
                args += ["--", "set", "Port", intf, f"other_config:rstp-path-cost={opts.rstp_costs[intf]}"]
    return args


def start_bridges(plan: EmulationPlan, fabric: Fabric, opts: BridgeOptions) -> None:
    """Each daemon's bridges in one transaction through its own database socket, all daemons at
    once; returns when every daemon has reconfigured."""
    by_shard: dict[Shard | None, list[str]] = defaultdict(list)
    for name in plan.switches:
        by_shard[fabric[name].shard].append(name)
    procs = [(shard, subprocess.Popen(vsctl_args(plan, names, opts), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True, env={**os.environ, **shard.env} if shard else None))
             for shard, names in by_shard.items()]
    for shard, proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise LabError(f"ovs-vsctl ({shard.netns if shard else 'system daemon'}): {err.strip()}")
