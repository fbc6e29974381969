"""The lab's devices as a network engineer's tools see them (pure): names, ports, neighbours.

A device is a switch (named by its label with ':' for '/', e.g. `h-cao-lanh:agg`, since '/'
cannot stand in a URL path segment) or a host (its scenario name, e.g. `web-dvc-1`); node names
(`egs12`) are accepted too. Neighbours come from the emulated wiring, as LLDP would report them.
"""
from __future__ import annotations

from dataclasses import dataclass

from egovlab.inventory.errors import EgovlabError

from .model import EmuLink, EmulationPlan


@dataclass(frozen=True)
class Port:
    interface: str  # the Linux interface name (its end of the link)
    link: EmuLink
    peer: str  # the node at the other end
    peer_interface: str


def name_of(plan: EmulationPlan, node: str) -> str:
    if node in plan.switches:
        return plan.switches[node].label.replace("/", ":")
    return plan.hosts[node].label


def resolve(plan: EmulationPlan, device: str) -> str:
    """The node name of a device name, a label or a node name; a clear error if none."""
    for candidate in (device, device.replace(":", "/")):
        if candidate in plan.switches or candidate in plan.hosts:
            return candidate
        if candidate in plan.by_label:
            return plan.by_label[candidate]
    raise EgovlabError(f"unknown device '{device}' (GET /api/v1/labs/{plan.prefix}/devices lists them)")


def inventory(plan: EmulationPlan) -> list[dict]:
    out = [{"name": name_of(plan, n), "node": n, "kind": "switch", "role": s.role, "site": s.site, "zone": s.zone}
           for n, s in plan.switches.items()]
    out += [{"name": h.label, "node": n, "kind": "host", "role": h.role, "site": h.site, "zone": h.zone}
            for n, h in plan.hosts.items()]
    return out


def ports(plan: EmulationPlan, node: str) -> list[Port]:
    out = []
    for link in plan.links:
        if node in (link.a, link.b):
            peer = link.b if node == link.a else link.a
            out.append(Port(link.intf(node), link, peer, link.intf(peer)))
    return sorted(out, key=lambda p: p.link.port(node))


def describe(plan: EmulationPlan, port: Port) -> str:
    link = port.link
    what = link.scenario_link or link.kind
    return f"{what} to {name_of(plan, port.peer)} ({link.role})" if link.scenario_link else f"{what} to {name_of(plan, port.peer)}"


def chassis_id(plan: EmulationPlan, node: str) -> str:
    """Switches: the datapath id as a MAC (OVS derives its bridge MAC the same way); hosts: eth0's MAC."""
    if node in plan.switches:
        dpid = plan.switches[node].dpid & 0xFFFFFFFFFFFF
        return ":".join(f"{(dpid >> s) & 0xff:02x}" for s in range(40, -8, -8))
    return plan.hosts[node].mac


def lldp_neighbors(plan: EmulationPlan, node: str) -> dict[str, list[dict]]:
    return {p.interface: [{"hostname": name_of(plan, p.peer), "port": p.peer_interface}] for p in ports(plan, node)}


def lldp_neighbors_detail(plan: EmulationPlan, node: str) -> dict[str, list[dict]]:
    out = {}
    for p in ports(plan, node):
        switch = p.peer in plan.switches
        capab = ["bridge"] if switch else ["station"]
        out[p.interface] = [{
            "parent_interface": "",
            "remote_port": p.peer_interface,
            "remote_port_description": describe(plan, Port(p.peer_interface, p.link, node, p.interface)),
            "remote_chassis_id": chassis_id(plan, p.peer),
            "remote_system_name": name_of(plan, p.peer),
            "remote_system_description": ("Open vSwitch (egovlab emulated switch)" if switch
                                          else "Linux network namespace (egovlab emulated host)"),
            "remote_system_capab": capab,
            "remote_system_enable_capab": capab,
        }]
    return out


def interfaces_ip(plan: EmulationPlan, node: str) -> dict[str, dict]:
    """Hosts: eth0's service addresses, eth1's management ones; the lab's switches are L2 only."""
    if node not in plan.hosts:
        return {}
    h = plan.hosts[node]
    out: dict[str, dict] = {}
    for intf, v4, v6 in ((f"{node}-eth0", h.ipv4, h.ipv6), (f"{node}-eth1", h.mgmt_ipv4, h.mgmt_ipv6)):
        families = {}
        if v4 is not None:
            families["ipv4"] = {str(v4.ip): {"prefix_length": v4.prefixlen}}
        if v6 is not None:
            families["ipv6"] = {str(v6.ip): {"prefix_length": v6.prefixlen}}
        if families:
            out[intf] = families
    return out
