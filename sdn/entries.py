"""A switch's forwarding entries in NAPALM's shape (`get_mac_address_table`): each host's MAC and
the interface the switch sends that host's packets by, as its own compiled tables decide (the
fabric routes by prefix, so this is read by walking the tables, not from a rule per MAC); a
fast-failover group shows its primary port. Static: the controller installs them. An out-of-band
switch carries the management interfaces, every other one the data interfaces."""
from __future__ import annotations

from egovlab.topology import devices
from egovlab.topology.model import EmulationPlan

from .program import ETH, SwitchProgram
from .verify import Walker


def mac_table(plan: EmulationPlan, node: str, program: SwitchProgram | None) -> list[dict]:
    if program is None:
        return []
    by_port = {p.link.port(node): p.interface for p in devices.ports(plan, node)}
    walker = Walker(plan, {program.dpid: program})
    oob = plan.switches[node].role == "oob"
    entries = {}
    for h in plan.hosts.values():
        interfaces = ((4, h.mgmt_ipv4, h.mgmt_mac), (6, h.mgmt_ipv6, h.mgmt_mac)) if oob else \
            ((4, h.ipv4, h.mac), (6, h.ipv6, h.mac))
        for v, addr, mac in interfaces:
            if addr is None or mac in entries:
                continue
            port = walker.next_port(node, {"eth_type": ETH[v], f"ipv{v}_dst": int(addr.ip), "eth_dst": mac.lower()})
            if port in by_port:
                entries[mac] = by_port[port]
    return [{"mac": mac, "interface": intf, "vlan": 0, "static": True, "active": True, "moves": 0, "last_move": 0.0}
            for mac, intf in sorted(entries.items())]
