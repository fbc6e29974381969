"""Bring an `EmulationPlan` up as a network of namespaces, veths and Open vSwitch bridges, and
down again (what Mininet does, made faster: topology/builder.py).

Open vSwitch runs with the userspace datapath where the kernel lacks the module (detected),
OpenFlow 1.3, all of a daemon's bridges created in one ovsdb transaction.
Without a controller the bridges run standalone (MAC learning) with RSTP, which breaks the
loops the redundant links make; with `controller=` they run fail-secure under it.

Hosts get their planned addresses with pyroute2. Their routes make every lab prefix on-link
(the fabric resolves ARP/ND: flooding when standalone, the controller's proxy under SDN), and
there is no default route: nothing an emulated host sends can leave the lab.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import networkx as nx

from egovlab.inventory.scenario import Scenario

from pyroute2 import IPRoute
from pyroute2.ethtool.ioctl import IoctlEthtool

from . import builder, cleanup, netns, ovs_shards
from .environment import Environment, detect
from .model import EmulationPlan, HostNode, rstp_port_costs, rstp_priorities, shard_assignment
from .ofrelay import ControllerRelay
from .shaping import apply_netem, shape_links
from .state import LabError, LabRecord, LabSpec, read_state, remove_state, write_state

SHAPED_KINDS = ("tslcd-l1", "tslcd-l2", "internet", "dc-interconnect")


Progress = Callable[[str, int, int], None]  # (phase, done, total)


def _no_progress(phase: str, done: int, total: int) -> None:
    pass


@dataclass
class Lab:
    scenario: Scenario
    plan: EmulationPlan
    controller: tuple[str, int] | None = None  # (ip, port) of an OpenFlow controller; None: standalone
    env: Environment = field(default_factory=detect)
    progress: Progress = _no_progress
    hosts_per_site: int | None = None  # recorded, so other processes rebuild the same plan
    warnings: list[str] = field(default_factory=list)
    net: builder.Fabric | None = None  # the running nodes: net[name].pid, .shard
    owns_prefix: bool = False
    controller_process: subprocess.Popen | None = None  # a controller started for this lab goes with it
    timings: dict[str, float] = field(default_factory=dict)
    ovs_shards: int = 1  # Open vSwitch daemons the switches are spread over (1: the system's)
    relay: ControllerRelay | None = None
    rules: dict | None = None  # what its own controller reported once every switch was programmed

    @property
    def prefix(self) -> str:
        return self.plan.prefix

    # -- bring up ------------------------------------------------------------------------

    def start(self) -> "Lab":
        if problems := self.env.problems():
            raise LabError("cannot emulate here: " + "; ".join(problems))
        with netns.signals_deferred():
            left = cleanup.leftovers(self.prefix, helpers=False)  # its controller may already run
        if any(left.values()):
            running = read_state(self.prefix)
            who = f" (pid {running.pid})" if running else ""
            raise LabError(f"a lab with prefix '{self.prefix}' is already up{who}: `egovlab down` removes it")
        self._warn_about_kernel()
        self.owns_prefix = True  # from here on, whatever carries the prefix is this lab's
        t0 = time.perf_counter()
        try:
            self._build()
            self.timings["build_s"] = time.perf_counter() - t0
            # Hosts first: their ends up, so no bridge sees a port without carrier and the
            # controller is not told of links going down and up again as the lab comes up.
            t1 = time.perf_counter()
            self._address_hosts()
            self.timings["addresses_s"] = time.perf_counter() - t1
            t2 = time.perf_counter()
            self.progress("starting switches", 0, 1)
            self._start_bridges()
            self.progress("starting switches", 1, 1)
            self.timings["switches_s"] = time.perf_counter() - t2
            t3 = time.perf_counter()
            self._shape()  # after the bridges: adding a port to a kernel datapath resets its qdisc
            self.timings["shaping_s"] = time.perf_counter() - t3
            if self.controller is None:
                self.progress("RSTP converging", 0, 1)
                self.timings["rstp_s"] = wait_rstp_converged(self.prefix, rstp_islands(self.plan))
                self.progress("RSTP converging", 1, 1)
            self._write_state()
        except BaseException:
            with netns.signals_ignored():  # a half-built lab leaves nothing behind, whatever comes
                self.stop()
            raise
        self.timings["up_s"] = time.perf_counter() - t0
        return self

    def _warn_about_kernel(self) -> None:
        wanted = [l for l in self.plan.links if l.delay_ms or l.loss_pct]
        if wanted and not self.env.netem:
            self.warnings.append(
                f"this kernel has no netem: the delay/loss of {len(wanted)} link(s) in the scenario are NOT "
                f"emulated here; bandwidth limits (TBF) are. The full-kernel VM (egovlab vm test) has netem.")

    def _build(self) -> None:
        standalone = self.controller is None
        shards = ovs_shards.shards(self.prefix, self.ovs_shards)
        for shard in shards:
            shard.start()
        placed = shard_assignment(self.plan, len(shards))
        if shards and not standalone:
            self.relay = ControllerRelay(self.controller, [s.netns for s in shards])
        self.net = builder.start_nodes(self.plan, {name: shards[placed[name]] if shards else None
                                                   for name in self.plan.switches}, self.progress)
        with netns.signals_deferred():
            builder.wire(self.plan, self.net, self.progress)

    def _shape(self) -> None:
        shaped = [l for l in self.plan.links if l.kind in SHAPED_KINDS]
        if self.env.netem:  # where netem exists, bandwidth, delay and loss go onto the links themselves
            apply_netem(self.pids, shaped)
        else:
            with netns.signals_deferred():
                shape_links({l.intf(node): l.bandwidth for l in shaped for node in (l.a, l.b)},
                            [None, *ovs_shards.running(self.prefix)])

    def _start_bridges(self) -> None:
        builder.start_bridges(self.plan, self.net, builder.BridgeOptions(
            datapath=self.env.datapath, controller=self.controller,
            rstp_priority=rstp_priorities(self.plan), rstp_costs=rstp_port_costs(self.plan)))

    def _address_hosts(self) -> None:
        a = self.scenario.spec.addressing
        routes4 = [str(p) for p in [*a.ipv4_pools, a.ipv4_link_pool, a.external_ipv4] if p is not None]
        routes6 = [str(p) for p in [a.ipv6_prefix, a.external_ipv6] if p is not None]
        hosts = list(self.plan.hosts.values())
        done = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(_configure_host, self.net[h.name].pid, h, routes4, routes6) for h in hosts]
            for fut in concurrent.futures.as_completed(futures):
                fut.result()
                done += 1
                if done % 25 == 0 or done == len(hosts):
                    self.progress("addressing hosts", done, len(hosts))

    def _write_state(self) -> None:
        """The record made live: up, with its nodes' processes (the claim and the snapshot, when
        the one lifecycle made them, are kept; a Lab driven directly records its own spec)."""
        source = Path(self.scenario.source)
        record = read_state(self.prefix) or LabRecord(
            spec=LabSpec(prefix=self.prefix, hosts_per_site=self.hosts_per_site, controller=self.controller,
                         sdn=self.controller is not None, ovs_shards=self.ovs_shards),
            pid=os.getpid(), started=time.time())
        write_state(record.model_copy(update={
            "phase": "up", "pid": os.getpid(), "scenario": self.scenario.name, "switches": len(self.plan.switches),
            "source": record.source or (str(source.resolve()) if source.exists() else self.scenario.source),
            "datapath": self.env.datapath,
            "pids": self.pids}))

    # -- tear down -----------------------------------------------------------------------

    def stop(self) -> cleanup.Removed:
        """Remove what this lab made; a lab that never started touches nothing (another may run)."""
        if not self.owns_prefix:
            # It never started (bad environment, prefix in use): only the controller made for it goes.
            if self.controller_process is not None and self.controller_process.poll() is None:
                self.controller_process.terminate()
                self.controller_process.wait(timeout=30)
                return cleanup.Removed(processes=[self.controller_process.pid])
            return cleanup.Removed()
        self.owns_prefix = False
        t0 = time.perf_counter()
        if self.relay is not None:
            self.relay.close()
        # Mininet's own stop() deletes interfaces one process at a time (about 30 s for the
        # province); removing the lab by name does the same in one ovsdb transaction.
        holders, self.net = (self.net.holders if self.net else []), None
        removed = cleanup.remove_lab(self.prefix)
        for proc in holders:  # killed by the removal; reaped here (they are this process's children)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        remove_state(self.prefix)
        self.timings["down_s"] = time.perf_counter() - t0
        return removed

    def __enter__(self) -> "Lab":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- access --------------------------------------------------------------------------

    def pid(self, node: str) -> int:
        return self.net[self.plan.node(node)].pid

    @property
    def pids(self) -> dict[str, int]:
        """Node name -> the process whose network namespace is the node's."""
        return {name: node.pid for name, node in self.net.nodes.items()}


def _configure_host(pid: int, host: HostNode, routes4: list[str], routes6: list[str]) -> None:
    with netns.inside(pid), IPRoute() as ipr:
        lo = ipr.link_lookup(ifname="lo")[0]
        ipr.link("set", index=lo, state="up")
        interfaces = [(f"{host.name}-eth0", host.ipv4, host.ipv6, True)]
        if host.mgmt_ipv4 is not None:
            interfaces.append((f"{host.name}-eth1", host.mgmt_ipv4, host.mgmt_ipv6, False))
        for ifname, v4, v6, routed in interfaces:
            quiet_ipv6(ifname)
            no_checksum_offload(ifname)
            idx = ipr.link_lookup(ifname=ifname)[0]
            ipr.link("set", index=idx, state="up")
            if v4 is not None:
                ipr.addr("add", index=idx, address=str(v4.ip), prefixlen=v4.prefixlen)
                for prefix in routes4 if routed else []:
                    ipr.route("add", dst=prefix, oif=idx, scope=253)  # link scope: on-link
            if v6 is not None:
                # IFA_F_NODAD: no 1-2 s "tentative" state; the plan guarantees uniqueness.
                ipr.addr("add", index=idx, address=str(v6.ip), prefixlen=v6.prefixlen, flags=0x02)
                for prefix in routes6 if routed else []:
                    ipr.route("add", dst=prefix, oif=idx, family=10)


def no_checksum_offload(ifname: str) -> None:
    """The userspace datapath forwards what a veth hands it as is: a checksum left to offload
    would arrive unfinished, and TCP/UDP would be dropped (ICMP would not). By ioctl: pyroute2's
    netlink Ethtool costs 4 ms per host just to set up."""
    ethtool = IoctlEthtool(ifname)
    try:
        features = ethtool.get_features()
        for name in ("tx-checksum-ip-generic", "tx-checksum-ipv4", "tx-checksum-ipv6"):
            if name in features and features[name]:
                features[name] = False
        ethtool.set_features(features)
    finally:
        ethtool.close()


def quiet_ipv6(ifname: str) -> None:
    """In a host's namespace, before its interface comes up: IPv6 for its planned addresses, but
    neither router solicitations nor duplicate address detection (a switch port carries no IPv6
    at all: builder.wire). Left to the kernel, the province's ~1,200 interfaces each sent router
    solicitations (4 s apart, then backing off) and DAD probes, which the standalone fabric
    flooded everywhere: ovs-vswitchd at 1.9 cores for ~15 s after `up`, and the national site's
    path to the DC down for most of it (measured here)."""
    base = f"/proc/sys/net/ipv6/conf/{ifname}"
    if not os.path.isdir(base):  # a kernel without IPv6
        return
    for key in ("accept_ra", "router_solicitations", "accept_dad"):
        with open(f"{base}/{key}", "w") as f:
            f.write("0")


def rstp_islands(plan: EmulationPlan) -> int:
    """Separate layer-2 networks of the lab's switches (the fabric, each DC's out-of-band
    network): each elects its own RSTP root."""
    return nx.number_connected_components(plan.graph().subgraph(plan.switches))


RSTP_SETTLED_S = 3.0  # no role or state changed for this long


def wait_rstp_converged(prefix: str, islands: int, timeout_s: float = 90.0) -> float:
    """Wait until RSTP has converged on the lab: the bridges agree on one root per layer-2
    island, every port has its role, every root or designated port forwards, and nothing has
    changed for RSTP_SETTLED_S; returns the seconds waited. (Fresh bridges each take themselves
    for the root and their ports forward at once; at province scale the tree then re-forms
    for several seconds, during which a national host lost the data centre: measured here.)"""
    t0 = time.monotonic()
    envs = [None] + [shard.env for shard in ovs_shards.existing(prefix)]

    def rows(table: str, env) -> list | None:
        out = subprocess.run(["ovs-vsctl", "--timeout=10", "--format=json", "--", "--columns=name,rstp_status",
                              "list", table], capture_output=True, text=True, env={**os.environ, **env} if env else None)
        return json.loads(out.stdout)["data"] if out.returncode == 0 else None

    last, since = None, time.monotonic()
    while True:
        pending, ok, roots, seen = [], True, set(), {}
        for env in envs:
            bridges, ports = rows("Bridge", env), rows("Port", env)
            if bridges is None or ports is None:
                ok = False
                continue
            roots |= {dict(st[1]).get("rstp_root_id") for name, st in bridges if name.startswith(prefix + "s")}
            for name, status in ports:
                if not name.startswith(prefix + "s") or "-eth" not in name:
                    continue
                st = dict(status[1])
                role, state = st.get("rstp_port_role"), st.get("rstp_port_state")
                seen[name] = (role, state)
                if role is None or role in ("Root", "Designated") and state != "Forwarding":
                    pending.append(name)
        now = (frozenset(roots), frozenset(seen.items()))
        if now != last:
            last, since = now, time.monotonic()
        agreed = ok and seen and not pending and len(roots) == islands and None not in roots
        if agreed and time.monotonic() - since >= RSTP_SETTLED_S:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout_s:
            raise LabError(f"RSTP did not converge within {timeout_s:.0f} s: {len(roots)} roots for {islands} "
                           f"islands, {len(pending)} ports not forwarding (e.g. {', '.join(pending[:5])})")
        time.sleep(0.25)
