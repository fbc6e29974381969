"""netlab: the lab plan as a netlab topology (`netlab create` turns it into containerlab's).

netlab has no Open vSwitch device; its model of a switch is a node with the `bridge` role,
and FRR is the one container device that takes that role together with the `stp` module the
province's redundant layer-2 paths need (a Linux bridge node has no STP). So every emulated
bridge is an FRR bridge, every host and server a `linux` node, every lab link a netlab link
whose host end carries the planned interface name and addresses (a host without an IPv4 or IPv6
address says so, or netlab would hand it one from its LAN pool). netlab's node names are
identifiers of at most 16 characters: the lab names (`egh12`, `egs3`) are used, and what
egovlab knows of a node or link (its label, site, kind, zone, IPv6 stage, scenario link) sits
in an `egovlab` attribute declared to netlab as a dictionary. Groups are the site kinds.
"""
from __future__ import annotations

from egovlab.inventory.scenario import Scenario

from .clab import MTU, interface, labels, management_subnets
from .model import EmulationPlan, EmuLink

BRIDGE = {"device": "frr", "role": "bridge"}


def group_name(kind: str) -> str:
    """A netlab group name is an identifier of at most 16 characters: the kind's last words
    (`public-service-centre` is `service_centre`; each node keeps its kind in full)."""
    words = kind.split("-")
    while len("_".join(words)) > 16 and len(words) > 1:
        words.pop(0)
    return "_".join(words)[:16]


def _end(plan: EmulationPlan, link: EmuLink, node: str) -> dict:
    host = plan.hosts.get(node)
    if host is None:
        return {}
    mgmt = link.kind == "mgmt"
    v4, v6 = (host.mgmt_ipv4, host.mgmt_ipv6) if mgmt else (host.ipv4, host.ipv6)
    return {"ifname": interface(plan, link, node), "ipv4": str(v4) if v4 else False, "ipv6": str(v6) if v6 else False}


def topology(sc: Scenario, plan: EmulationPlan) -> dict:
    """The netlab topology of the plan (a dict to write as YAML; `netlab create` accepts it)."""
    def attributes(name: str) -> dict:
        return {k.removeprefix("egovlab."): v for k, v in labels(sc, plan, name).items()}

    nodes: dict[str, dict] = {}
    groups: dict[str, dict] = {}
    for name in [*plan.switches, *plan.hosts]:
        node = dict(BRIDGE) if name in plan.switches else {}
        node["egovlab"] = attributes(name)
        if name in plan.hosts:
            node["egovlab"]["label"] = plan.hosts[name].label
        nodes[name] = node
        groups.setdefault(group_name(node["egovlab"]["site-kind"]), {"members": []})["members"].append(name)
    links = []
    for link in plan.links:
        entry = {link.a: _end(plan, link, link.a), link.b: _end(plan, link, link.b), "mtu": MTU,
                 "bandwidth": max(1, link.bandwidth // 1000),  # netlab's unit: kbit/s
                 "egovlab": {"kind": link.kind, "role": link.role}}
        if link.scenario_link:
            entry["egovlab"]["link"] = link.scenario_link
        for key, value in (("delay-ms", link.delay_ms), ("loss-pct", link.loss_pct)):
            if value:
                entry["egovlab"][key] = value
        links.append(entry)
    v4, v6 = management_subnets(sc)
    return {"name": sc.name[:16].replace("-", "_"), "provider": "clab", "module": ["stp"],
            "defaults": {"device": "linux", "attributes": {"node": {"egovlab": "dict"}, "link": {"egovlab": "dict"}},
                         "const": {"MAX_NODE_ID": max(150, len(nodes))}},  # netlab's default stops at 150
            "addressing": {"mgmt": {"ipv4": v4, "ipv6": v6}},
            "groups": groups, "nodes": nodes, "links": links}
