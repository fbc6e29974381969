"""Bring an `EmulationPlan` up as a Mininet network of Open vSwitch bridges, and down again.

Open vSwitch runs with the userspace datapath where the kernel lacks the module (detected),
OpenFlow 1.3, all bridges created in one ovsdb transaction (Mininet's batch startup).
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
import socket
import subprocess
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import networkx as nx

from mininet.link import Link, TCLink
from mininet.log import setLogLevel, warn
from mininet.net import Mininet
from mininet.node import Host, OVSSwitch, RemoteController

from egovlab.inventory.scenario import Scenario

from pyroute2 import IPRoute
from pyroute2.ethtool import Ethtool

from . import cleanup, netns, ovs_shards
from .environment import Environment, detect
from .model import EmulationPlan, HostNode, rstp_port_costs, rstp_priorities, shard_assignment
from .ofrelay import ControllerRelay
from .shaping import shape_links
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
    net: object = None
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
            t1 = time.perf_counter()
            self.progress("starting switches", 0, 1)
            self.net.start()
            self.progress("starting switches", 1, 1)
            self.timings["switches_s"] = time.perf_counter() - t1
            t2 = time.perf_counter()
            if not self.env.netem:
                shape_links({l.intf(node): l.bandwidth for l in self.plan.links if l.kind in SHAPED_KINDS
                             for node in (l.a, l.b)}, [None, *ovs_shards.running(self.prefix)])
            self._address_hosts()
            self.timings["addresses_s"] = time.perf_counter() - t2
            if self.controller is None:
                self.progress("RSTP converging", 0, 1)
                self.timings["rstp_s"] = wait_rstp_converged(self.prefix, rstp_islands(self.plan))
                self.progress("RSTP converging", 1, 1)
            self._write_state()
        except BaseException:
            self.stop()  # a half-built lab leaves nothing behind
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
        setLogLevel(os.environ.get("EGOVLAB_MININET_LOG", "error"))
        standalone = self.controller is None
        shards = ovs_shards.shards(self.prefix, self.ovs_shards)
        for shard in shards:
            shard.start()
        placed = shard_assignment(self.plan, len(shards))
        priority = rstp_priorities(self.plan)
        if shards and not standalone:
            self.relay = ControllerRelay(self.controller, [s.netns for s in shards])
        switch = partial(LabSwitch, datapath=self.env.datapath, protocols="OpenFlow13", batch=True,
                         failMode="standalone" if standalone else "secure", rstp=standalone,
                         rstp_costs=rstp_port_costs(self.plan))
        net = Mininet(topo=None, switch=switch, host=LabHost, controller=None, link=Link, build=False,
                      autoSetMacs=False, autoStaticArp=False, waitConnected=False)
        self.net = net
        if not standalone:
            ip, port = self.controller
            net.addController("c0", controller=LabController, ip=ip, port=port)
        total = len(self.plan.switches)
        for i, s in enumerate(self.plan.switches.values(), 1):
            net.addSwitch(s.name, dpid=f"{s.dpid:016x}", rstp_priority=priority.get(s.name),
                          shard=shards[placed[s.name]] if shards else None)
            if i % 25 == 0 or i == total:
                self.progress("creating switches", i, total)
        total = len(self.plan.hosts)
        for i, h in enumerate(self.plan.hosts.values(), 1):
            net.addHost(h.name, ip=None)
            if i % 25 == 0 or i == total:
                self.progress("creating hosts", i, total)
        total = len(self.plan.links)
        for i, l in enumerate(self.plan.links, 1):
            params: dict = {}
            for end, node in (("1", l.a), ("2", l.b)):
                host = self.plan.hosts.get(node)
                if host is not None:
                    params[f"addr{end}"] = host.mac if l.kind != "mgmt" else host.mgmt_mac
            if l.kind in SHAPED_KINDS and self.env.netem:
                # Where netem exists, bandwidth, delay and loss go into the topology (TCLink).
                shape = {"bw": l.bandwidth / 1e6}
                if l.delay_ms:
                    shape["delay"] = f"{l.delay_ms}ms"
                if l.loss_pct:
                    shape["loss"] = l.loss_pct
                net.addLink(l.a, l.b, port1=l.a_port, port2=l.b_port, cls=TCLink, **params, **shape)
            else:
                net.addLink(l.a, l.b, port1=l.a_port, port2=l.b_port, **params)
            if i % 25 == 0 or i == total:
                self.progress("wiring links", i, total)

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
            "pids": {name: self.net[name].pid for name in [*self.plan.hosts, *self.plan.switches]}}))

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
        self.net = None
        removed = cleanup.remove_lab(self.prefix)
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


def _configure_host(pid: int, host: HostNode, routes4: list[str], routes6: list[str]) -> None:
    with netns.inside(pid), IPRoute() as ipr, Ethtool() as ethtool:
        lo = ipr.link_lookup(ifname="lo")[0]
        ipr.link("set", index=lo, state="up")
        interfaces = [(f"{host.name}-eth0", host.ipv4, host.ipv6, True)]
        if host.mgmt_ipv4 is not None:
            interfaces.append((f"{host.name}-eth1", host.mgmt_ipv4, host.mgmt_ipv6, False))
        for ifname, v4, v6, routed in interfaces:
            # The userspace datapath forwards what the veth hands it as is: a checksum left to
            # offload would arrive unfinished and TCP/UDP would be dropped (ICMP would not).
            features = ethtool.get_features(ifname)
            for name in ("tx-checksum-ip-generic", "tx-checksum-ipv4", "tx-checksum-ipv6"):
                if name in features.features:
                    features.features[name].enable = False
            ethtool.set_features(ifname, features)
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


def quiet_ipv6(pid: int, ifname: str, addressed: bool) -> None:
    """Before a new interface comes up, in its node's namespace: a host's keeps IPv6 for its
    planned addresses but neither solicits routers nor runs duplicate address detection; a
    switch port carries no IPv6 at all. Left to the kernel, the province's ~1,200 interfaces
    each sent router solicitations (4 s apart, then backing off) and DAD probes, which the
    standalone fabric flooded everywhere: ovs-vswitchd at 1.9 cores for ~15 s after `up`, and
    the national site's path to the DC down for most of it (measured here)."""
    base = f"/proc/sys/net/ipv6/conf/{ifname}"
    settings = (("accept_ra", 0), ("router_solicitations", 0), ("accept_dad", 0)) if addressed \
        else (("disable_ipv6", 1),)
    with netns.inside(pid):
        if not os.path.isdir(base):  # a kernel without IPv6
            return
        for key, value in settings:
            with open(f"{base}/{key}", "w") as f:
                f.write(str(value))


class LabHost(Host):
    def addIntf(self, intf, *args, **kwargs):
        super().addIntf(intf, *args, **kwargs)
        quiet_ipv6(self.pid, intf.name, addressed=True)


class LabController(RemoteController):
    """Mininet's RemoteController, its reachability checked with a socket connect: Mininet's own
    check telnets the OpenFlow port and decodes whatever the controller sends first (its binary
    OpenFlow hello) as text, which raised a UnicodeDecodeError out of one drill's bring-up."""

    def isListening(self, ip: str, port: int) -> bool:
        try:
            with socket.create_connection((ip, port), timeout=2):
                return True
        except OSError:
            warn(f"Unable to contact the remote controller at {ip}:{port}\n")
            return False


class LabSwitch(OVSSwitch):
    """OVSSwitch with RSTP (not 802.1D STP: seconds, not half a minute, to converge), run by the
    system's Open vSwitch or by one of the lab's shards (`ovs_shards`)."""

    def __init__(self, name, rstp=False, rstp_priority: int | None = None, rstp_costs: dict[str, int] | None = None,
                 shard: ovs_shards.Shard | None = None, **params):
        self.shard = shard  # before the shell starts: it decides where the shell lives
        super().__init__(name, **params)
        self.rstp = rstp
        self.rstp_priority = rstp_priority  # None: the default, 32768
        self.rstp_costs = rstp_costs or {}  # interface -> port path cost; absent: by link speed

    def addIntf(self, intf, *args, **kwargs):
        super().addIntf(intf, *args, **kwargs)
        quiet_ipv6(self.pid, intf.name, addressed=False)

    def _popen(self, cmd, **params):
        if self.shard is not None:
            # The shell lives in the shard's namespace and talks to its daemons, so every command
            # Mininet runs for this switch, and every link end it creates, is there too.
            cmd = ["ip", "netns", "exec", self.shard.netns, *self.shard.env_command, *cmd]
        return super()._popen(cmd, **params)

    @classmethod
    def batchStartup(cls, switches, run=None):
        from mininet.util import errRun

        run = run or errRun
        by_shard: dict = {}
        for switch in switches:
            by_shard.setdefault(switch.shard, []).append(switch)
        for shard, members in by_shard.items():
            # one ovsdb transaction per daemon, through its own database socket
            env = "" if shard is None else " ".join(shard.env_command) + " "
            super().batchStartup(members, run=lambda cmd, env=env, **kw: run(env + cmd, **kw))
        return switches

    def bridgeOpts(self):
        opts = super().bridgeOpts()
        if self.rstp and self.failMode == "standalone":
            opts += " rstp_enable=true"
            if self.rstp_priority is not None:
                opts += f" other_config:rstp-priority={self.rstp_priority}"
        return opts

    def intfOpts(self, intf):
        opts = super().intfOpts(intf)
        link = getattr(intf, "link", None)
        if self.rstp and link is not None:
            peer = link.intf2 if link.intf1 is intf else link.intf1
            if isinstance(peer.node, Host):  # a host port is an edge port: forward at once
                opts += f" -- set Port {intf} other_config:rstp-port-admin-edge=true"
            elif str(intf) in self.rstp_costs:
                opts += f" -- set Port {intf} other_config:rstp-path-cost={self.rstp_costs[str(intf)]}"
        return opts


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
