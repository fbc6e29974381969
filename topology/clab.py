"""containerlab: the lab plan as a containerlab topology, and a topology back as a scenario skeleton.

The province maps onto containerlab's own kinds: every emulated host and server a `linux`
node, every Open vSwitch bridge an `ovs-bridge` node, every link a `veth` link whose endpoints
carry the planned interface names and addresses. Labels carry what egovlab knows of a node
(site, site kind, zone, role, IPv6 stage). The DCs' out-of-band networks stay what they are in
the lab — their own bridges and links to each server's second interface — because
containerlab's management network is one network joining every node, which would merge the
DCs' OOB networks and put every commune on them; containerlab gets a management network of its
own, outside every scenario range.

containerlab keeps link impairments out of the topology file: `scripts()` writes them as
`containerlab tools netem set` lines (for an end on a container), or `tc` lines for a link
between two bridges, whose ports live in the host's namespace, where containerlab's netem
tool does not reach; and the `ovs-vsctl add-br` lines containerlab expects run before it.
"""
from __future__ import annotations

import json
import shlex
from functools import lru_cache
from pathlib import Path

import jsonschema
import netaddr

from egovlab.inventory.addressing import EXTERNAL_KINDS
from egovlab.inventory.errors import EgovlabError, InputError, Problem
from egovlab.inventory.scenario import Scenario
from egovlab.inventory.units import format_bandwidth

from .model import EmulationPlan, EmuLink, HostNode

SCHEMA = Path(__file__).parent / "schemas" / "containerlab" / "clab.schema.json"
CLAB_PREFIX = "clab"  # containerlab's default: containers are clab-<name>-<node>
# a /20 holds the province (~470 nodes); containerlab's default /24 (172.20.20.0/24) is inside the first
MGMT_CANDIDATES = (("172.20.16.0/20", "3fff:172:20:20::/64"), ("172.31.240.0/20", "3fff:172:31:250::/64"))
RESERVED = ("198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "10.0.0.0/8", "172.16.0.0/12",
            "192.168.0.0/16", "100.64.0.0/10", "2001:db8::/32", "fc00::/7")
HOST_IMAGE = "ghcr.io/srl-labs/network-multitool:latest"
MTU = 1500


def node_name(plan: EmulationPlan, name: str) -> str:
    """A host is its scenario label; a bridge its lab name (`egs12`): containerlab's
    `ovs-bridge` node is an Open vSwitch bridge made beforehand, and a bridge's name is a Linux
    interface name, 15 characters at most."""
    return plan.hosts[name].label if name in plan.hosts else name


def interface(plan: EmulationPlan, link: EmuLink, node: str) -> str:
    """containerlab reserves a container's eth0 for its management network: a host's planned
    eth0 (LAN) is eth1 there, its eth1 (OOB) eth2; a bridge's port keeps the lab's name."""
    if node in plan.hosts:
        return f"eth{link.port(node) + 1}"
    return link.intf(node)


def management_subnets(sc: Scenario) -> tuple[str, str]:
    """An IPv4 and an IPv6 management subnet outside every range of the scenario (the lab
    tools' own management network: containerlab's, netlab's)."""
    a = sc.spec.addressing
    used = netaddr.IPSet([p for p in (*a.ipv4_pools, a.ipv4_link_pool, a.external_ipv4, a.ipv6_prefix, a.external_ipv6)
                          if p is not None])
    for v4, v6 in MGMT_CANDIDATES:
        if not (used & netaddr.IPSet([v4, v6])):
            return v4, v6
    raise EgovlabError("every management subnet egovlab offers containerlab overlaps the scenario's addresses")


def labels(sc: Scenario, plan: EmulationPlan, name: str) -> dict[str, str]:
    if name in plan.hosts:
        h = plan.hosts[name]
        labels = {"egovlab.site": h.site, "egovlab.site-kind": sc.sites[h.site].kind, "egovlab.role": h.role,
                  "egovlab.ipv6-stage": sc.stages[h.site]}
        if sc.sites[h.site].parent:
            labels["egovlab.parent"] = sc.sites[h.site].parent
        if h.zone:
            labels["egovlab.zone"] = h.zone
        server = next((r.server for r in sc.servers() if r.name == h.label), None) if h.role == "server" else None
        if server is not None:
            labels["egovlab.server-role"] = server.role
    else:
        s = plan.switches[name]
        labels = {"egovlab.label": s.label, "egovlab.site": s.site, "egovlab.site-kind": sc.sites[s.site].kind,
                  "egovlab.role": s.role, "egovlab.ipv6-stage": sc.stages[s.site]}
        if sc.sites[s.site].parent:
            labels["egovlab.parent"] = sc.sites[s.site].parent
        if s.zone:
            labels["egovlab.zone"] = s.zone
    return labels


def _endpoint(plan: EmulationPlan, link: EmuLink, node: str) -> dict:
    out = {"node": node_name(plan, node), "interface": interface(plan, link, node)}
    host: HostNode | None = plan.hosts.get(node)
    if host is not None:
        mgmt = link.kind == "mgmt"
        out["mac"] = host.mgmt_mac if mgmt else host.mac
        for key, addr in (("ipv4", host.mgmt_ipv4 if mgmt else host.ipv4), ("ipv6", host.mgmt_ipv6 if mgmt else host.ipv6)):
            if addr is not None:
                out[key] = f"{addr.ip}/{addr.prefixlen}"
    return out


def topology(sc: Scenario, plan: EmulationPlan) -> dict:
    """The containerlab topology of the plan (a dict to write as YAML; it validates against
    containerlab's schema)."""
    nodes: dict[str, dict] = {}
    for name in plan.switches:
        nodes[name] = {"kind": "ovs-bridge", "labels": labels(sc, plan, name)}
    for name, h in plan.hosts.items():
        nodes[h.label] = {"kind": "linux", "image": HOST_IMAGE, "labels": labels(sc, plan, name)}
    declared = {l.name: l for l in sc.links}
    links = []
    for link in plan.links:
        entry = {"type": "veth", "endpoints": [_endpoint(plan, link, link.a), _endpoint(plan, link, link.b)], "mtu": MTU,
                 "vars": {"egovlab.kind": link.kind, "egovlab.role": link.role, "egovlab.bandwidth-bps": link.bandwidth}}
        if link.scenario_link:
            entry["vars"]["egovlab.link"] = link.scenario_link
            if declared[link.scenario_link].path.startswith("sites."):  # a site's uplink, not a `links:` entry
                entry["vars"]["egovlab.uplink-of"] = declared[link.scenario_link].a
        for key, value in (("egovlab.delay-ms", link.delay_ms), ("egovlab.loss-pct", link.loss_pct)):
            if value:
                entry["vars"][key] = value
        links.append(entry)
    v4, v6 = management_subnets(sc)
    mgmt = {"network": f"{sc.name}-clab-mgmt", "ipv4-subnet": v4, "ipv6-subnet": v6}
    return {"name": sc.name, "prefix": CLAB_PREFIX, "mgmt": mgmt, "topology": {"nodes": nodes, "links": links}}


def scripts(sc: Scenario, plan: EmulationPlan) -> dict[str, str]:
    """The shell scripts beside the topology: `bridges.sh` makes the Open vSwitch bridges before
    `containerlab deploy`; `netem.sh` applies every link's rate, delay and loss after it."""
    head = ["#!/bin/sh", "set -e"]
    bridges = [*head, f"# before `containerlab deploy`: the bridges of '{sc.name}' (egovlab export clab)"]
    bridges += [shlex.join(["ovs-vsctl", "--may-exist", "add-br", name]) for name in plan.switches]
    netem = [*head, f"# after `containerlab deploy`: the link impairments of '{sc.name}' (egovlab export clab)"]
    for link in plan.links:
        if link.kind == "mgmt":
            continue
        host = next((n for n in (link.a, link.b) if n in plan.hosts), None)
        if host is not None:
            args = ["containerlab", "tools", "netem", "set", "-n", f"{CLAB_PREFIX}-{sc.name}-{node_name(plan, host)}",
                    "-i", interface(plan, link, host), "--rate", str(max(1, link.bandwidth // 1000))]  # kbit/s
            if link.delay_ms:
                args += ["--delay", f"{link.delay_ms:g}ms"]
            if link.loss_pct:
                args += ["--loss", f"{link.loss_pct:g}"]
            netem.append(shlex.join(args))
            continue
        shape = ["rate", f"{link.bandwidth}bit"]
        if link.delay_ms:
            shape += ["delay", f"{link.delay_ms:g}ms"]
        if link.loss_pct:
            shape += ["loss", f"{link.loss_pct:g}%"]
        for node in (link.a, link.b):  # each port shapes what it sends: both directions
            netem.append(shlex.join(["tc", "qdisc", "replace", "dev", interface(plan, link, node), "root", "netem",
                                     *shape]))
    return {"bridges.sh": "\n".join(bridges) + "\n", "netem.sh": "\n".join(netem) + "\n"}


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def problems(doc: dict) -> list[Problem]:
    """Where the document breaks containerlab's schema (empty when it holds)."""
    return [Problem(".".join(str(p) for p in e.absolute_path), e.message)
            for e in sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


# -- back: a topology egovlab exported, as a scenario skeleton ----------------------------------

def scenario_skeleton(doc: dict, source: str) -> dict:
    """The sites (kinds, parents, IPv6 stages, DC zones and their servers, representative host
    counts), the links between sites (kind, role, bandwidth, delay, loss) and address pools
    spanning the exported addresses, of a topology `topology()` wrote. Services and policy are
    not in a containerlab topology: the skeleton has none (add them to use it as a lab)."""
    nodes = (doc.get("topology") or {}).get("nodes") or {}
    if not isinstance(nodes, dict) or not nodes:
        raise InputError(source, [Problem("topology.nodes", "no nodes")])
    unlabelled = sorted(n for n, v in nodes.items() if "egovlab.site" not in ((v or {}).get("labels") or {}))
    if unlabelled:
        raise InputError(source, [Problem(f"topology.nodes.{unlabelled[0]}", "no egovlab.site label: only topologies "
                                          f"egovlab exported can be read back ({len(unlabelled)} such node(s))")])
    sites: dict[str, dict] = {}
    site_of = {}
    v4: dict[bool, list] = {True: [], False: []}
    v6: dict[bool, list] = {True: [], False: []}
    for name, node in nodes.items():
        lb = node["labels"]
        site = sites.setdefault(lb["egovlab.site"], {"kind": lb["egovlab.site-kind"], "hosts": 0})
        site_of[name] = lb["egovlab.site"]
        if lb.get("egovlab.parent"):
            site["parent"] = lb["egovlab.parent"]
        if lb.get("egovlab.ipv6-stage"):
            site["ipv6"] = lb["egovlab.ipv6-stage"]
        if node["kind"] != "linux":
            continue
        if lb.get("egovlab.role") == "server":
            server = {"role": lb.get("egovlab.server-role", "server")}
            if lb.get("egovlab.zone"):
                site.setdefault("zones", {}).setdefault(lb["egovlab.zone"], {"servers": {}})["servers"][name] = server
            else:
                site.setdefault("servers", {})[name] = server
        else:
            site["hosts"] += 1
    links: list[dict] = []
    seen: set[str] = set()
    for link in doc["topology"].get("links") or []:
        ends = link.get("endpoints") or []
        external = [lb_kind in EXTERNAL_KINDS for lb_kind in
                    (sites[site_of[e["node"]]]["kind"] for e in ends if e.get("node") in site_of)]
        for e, ext in zip(ends, external):
            if "ipv4" in e and (link.get("vars") or {}).get("egovlab.kind") != "mgmt":
                v4[ext].append(netaddr.IPNetwork(e["ipv4"]).cidr)
            if "ipv6" in e and (link.get("vars") or {}).get("egovlab.kind") != "mgmt":
                v6[ext].append(netaddr.IPNetwork(e["ipv6"]).cidr)
        var = link.get("vars") or {}
        if not var.get("egovlab.link"):
            continue  # inside a site: the planner makes those again
        a, b = (site_of[e["node"]] for e in ends)
        entry = {"name": var["egovlab.link"], "kind": var["egovlab.kind"], "role": var.get("egovlab.role", "primary")}
        if var.get("egovlab.bandwidth-bps"):
            entry["bandwidth"] = format_bandwidth(int(var["egovlab.bandwidth-bps"]))
        if var.get("egovlab.delay-ms"):
            entry["delay"] = f"{var['egovlab.delay-ms']:g}ms"
        if var.get("egovlab.loss-pct"):
            entry["loss"] = f"{var['egovlab.loss-pct']:g}%"
        if entry["name"] in seen:
            continue
        seen.add(entry["name"])
        if (owner := var.get("egovlab.uplink-of")) in (a, b):
            sites[owner].setdefault("uplinks", []).append({"to": b if owner == a else a, **entry})
        else:
            links.append({"name": entry.pop("name"), "endpoints": [a, b], **entry})

    def pool(nets: list) -> str | None:
        """The block spanning the exported subnets, with room: IPv4 four times over (LAN
        headroom, gateways), IPv6 at least a /48 (sites take /56 blocks)."""
        if not nets:
            return None
        span = netaddr.spanning_cidr(nets)
        want = max(8, span.prefixlen - 2) if span.version == 4 else min(48, span.prefixlen)
        # never wider than the reserved block the addresses are in (benchmarking, documentation, private)
        block = next((b for b in map(netaddr.IPNetwork, RESERVED) if b.version == span.version and span in b), None)
        if block is not None:
            want = max(want, block.prefixlen)
        return str(span.supernet(want)[0] if want < span.prefixlen else span)

    province4 = pool(v4[False]) or "198.18.0.0/16"
    link_pool = next(c for c in ("198.19.0.0/20", "100.64.0.0/20", "10.255.0.0/20")
                     if not netaddr.IPSet([c]) & netaddr.IPSet(v4[False] + v4[True]))
    addressing = {"ipv4_pools": [province4], "ipv4_link_pool": link_pool,
                  "ipv6_prefix": pool(v6[False]) or "2001:db8::/48"}
    if v4[True]:
        addressing["external_ipv4"] = pool(v4[True])
    if v6[True]:
        addressing["external_ipv6"] = pool(v6[True])
    return {"scenario": doc.get("name", "imported"),
            "title": f"imported from the containerlab topology {Path(source).name}",
            "addressing": addressing, "sites": sites, "links": links}
