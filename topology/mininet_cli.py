"""Mininet's CLI over a running lab (`egovlab up --cli`).

The lab's nodes are not Mininet's (topology/builder.py), so each gets a Mininet node whose shell
joins the node's namespace (`mnexec -a PID`), with its interfaces named: `h1 ping h2`,
`pingall`, `xterm`, `h1 ip addr` work as in Mininet. Leaving the CLI ends the shells only.
"""
from __future__ import annotations

from mininet.cli import CLI
from mininet.link import Intf
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import Host, Node

from .model import EmulationPlan


class _Attached:
    def __init__(self, name, target_pid: int, **params):
        self.target_pid = target_pid
        super().__init__(name, inNamespace=False, **params)

    def startShell(self, mnopts=None):
        super().startShell(mnopts=f"-cda {self.target_pid}")


class AttachedHost(_Attached, Host):
    pass


class AttachedSwitch(_Attached, Node):
    pass


def run(plan: EmulationPlan, pids: dict[str, int]) -> None:
    setLogLevel("info")
    net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False)
    for name in plan.hosts:
        net.addHost(name, cls=AttachedHost, target_pid=pids[name])
    for name in plan.switches:
        net.addHost(name, cls=AttachedSwitch, target_pid=pids[name])
    net.switches = [net[name] for name in plan.switches]
    net.hosts = [net[name] for name in plan.hosts]
    for link in plan.links:
        for node in (link.a, link.b):
            Intf(link.intf(node), node=net[node], port=link.port(node))
    try:
        CLI(net)
    finally:
        for node in net.values():
            node.terminate()
