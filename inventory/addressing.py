"""The dual-stack address plan: deterministic, stable, every address inside its pool.

IPv4: one subnet per LAN sized to its devices plus headroom, one per DC zone, an out-of-band
management subnet per DC, and a /31 per point-to-point link (RFC 3021).
IPv6: one /56 (the scenario's `site_prefix_length`) per site, a /64 per LAN inside it at a
fixed index (so a zone's /64 never moves), and a /64 reserved per link of which the first
/127 is used (RFC 6164).

Stability: every block is keyed by name (`lan:SITE`, `link:LINK`, ...). Blocks recorded in an
allocation file are kept as they are; only new or outgrown keys get fresh space, so adding a
site never renumbers another one.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from pathlib import Path

import netaddr
import yaml

from . import safe_yaml
from .errors import InputError, Problem
from .scenario import Scenario
from .schema import DC_KINDS, ZONES

FIRST_HOST = 10  # .1 is the gateway, .2-.9 are kept for the LAN's own equipment (CPE, firewall)
ZONE_INDEX = {zone: i + 1 for i, zone in enumerate(ZONES)}  # /64 index of a zone inside the DC /56
LAN_INDEX = 0
OOB_INDEX = 0xFF
EXTERNAL_KINDS = ("internet", "national")  # address space the province does not own


class PrefixPool:
    """A buddy allocator over one or more networks of one IP version.

    Allocation takes the lowest free block of the smallest size that fits, so the result
    depends only on the order of requests, never on hashing or timing.
    """

    def __init__(self, networks: list[netaddr.IPNetwork]):
        self.width = 32 if networks[0].version == 4 else 128
        self.version = networks[0].version
        self._free: dict[int, set[int]] = {}
        self._heap: dict[int, list[int]] = {}
        self.size = 0
        for net in networks:
            self._add(net.prefixlen, int(net.network))
            self.size += net.size

    def _add(self, plen: int, start: int) -> None:
        self._free.setdefault(plen, set()).add(start)
        heapq.heappush(self._heap.setdefault(plen, []), start)

    def _take(self, plen: int) -> int | None:
        heap, free = self._heap.get(plen, []), self._free.get(plen, set())
        while heap:
            start = heapq.heappop(heap)
            if start in free:
                free.discard(start)
                return start
        return None

    def _split_down(self, start: int, plen: int, target: int) -> int:
        while plen < target:  # keep the lower half, free the upper half
            plen += 1
            self._add(plen, start + (1 << (self.width - plen)))
        return start

    def allocate(self, plen: int) -> netaddr.IPNetwork | None:
        for have in range(plen, -1, -1):
            start = self._take(have)
            if start is not None:
                start = self._split_down(start, have, plen)
                return netaddr.IPNetwork((start, plen), version=self.version)
        return None

    def reserve(self, net: netaddr.IPNetwork) -> bool:
        """Carve exactly `net` out of the free space; False if any of it is taken or outside."""
        want, plen = int(net.network), net.prefixlen
        for have in range(plen, -1, -1):
            start = want & ~((1 << (self.width - have)) - 1)
            if start in self._free.get(have, ()):
                self._free[have].discard(start)
                # Split towards `want`, freeing the halves that do not contain it.
                while have < plen:
                    have += 1
                    half = 1 << (self.width - have)
                    if want & half:
                        self._add(have, start)
                        start += half
                    else:
                        self._add(have, start + half)
                return True
        return False


@dataclass(frozen=True)
class Request:
    key: str  # "lan:SITE", "zone:SITE:ZONE", "oob:SITE", "link:LINK", "site:SITE"
    plen: int
    pool: str  # which pool: "v4", "v4-link", "v4-external", "v6", "v6-external"


@dataclass
class Subnet:
    key: str
    site: str
    purpose: str  # lan | zone | oob | link
    zone: str | None
    ipv4: netaddr.IPNetwork | None
    ipv6: netaddr.IPNetwork | None
    v4_active: bool
    v6_active: bool

    @property
    def gateway4(self) -> netaddr.IPAddress | None:
        return self.ipv4[1] if self.ipv4 is not None and self.v4_active else None

    @property
    def gateway6(self) -> netaddr.IPAddress | None:
        return self.ipv6[1] if self.ipv6 is not None and self.v6_active else None


@dataclass
class HostAddress:
    name: str
    site: str
    zone: str | None
    role: str  # host | server
    subnet: str
    ipv4: netaddr.IPAddress | None
    ipv6: netaddr.IPAddress | None
    mgmt_ipv4: netaddr.IPAddress | None = None
    mgmt_ipv6: netaddr.IPAddress | None = None


@dataclass
class LinkAddress:
    name: str
    a: str
    b: str
    ipv4: netaddr.IPNetwork | None  # the /31
    ipv6: netaddr.IPNetwork | None  # the /127
    v4_active: bool
    v6_active: bool

    def address(self, site: str, version: int) -> netaddr.IPAddress | None:
        net = self.ipv4 if version == 4 else self.ipv6
        if net is None or not (self.v4_active if version == 4 else self.v6_active):
            return None
        return net[0] if site == self.a else net[1]


@dataclass
class AddressPlan:
    subnets: dict[str, Subnet] = field(default_factory=dict)
    hosts: dict[str, HostAddress] = field(default_factory=dict)
    links: dict[str, LinkAddress] = field(default_factory=dict)
    allocations: dict[str, str] = field(default_factory=dict)  # "v4:lan:x" -> "198.18.0.0/24"
    new: list[str] = field(default_factory=list)  # keys that got space in this run
    renumbered: list[str] = field(default_factory=list)  # recorded keys that no longer fitted

    def site_subnets(self, site: str) -> list[Subnet]:
        return [s for s in self.subnets.values() if s.site == site]


def ipv4_prefix_for(addresses: int) -> int:
    """Smallest IPv4 prefix holding network, gateway, reserved, `addresses` hosts, broadcast."""
    need = FIRST_HOST + addresses + 1
    return 32 - max(3, math.ceil(math.log2(need)))


def _with_headroom(count: int, headroom: float) -> int:
    return math.ceil(count * (1 + headroom))


def requests(sc: Scenario) -> list[Request]:
    """Every block the scenario needs, in a deterministic order (largest first, then by key)."""
    headroom = sc.spec.addressing.lan_headroom
    site_plen = sc.spec.addressing.site_prefix_length
    servers_by_place: dict[tuple[str, str | None], int] = {}
    for ref in sc.servers():
        servers_by_place[(ref.site, ref.zone)] = servers_by_place.get((ref.site, ref.zone), 0) + 1
    reqs: list[Request] = []
    for name, site in sc.sites.items():
        external = (site.pool or ("external" if site.kind in EXTERNAL_KINDS else "province")) == "external"
        v4pool, v6pool = ("v4-external", "v6-external") if external else ("v4", "v6")
        lan = sc.lan_size(name) + servers_by_place.get((name, None), 0)
        lan = max(lan, sc.host_count(name) + servers_by_place.get((name, None), 0))
        if lan > 0:
            reqs.append(Request(f"lan:{name}", ipv4_prefix_for(_with_headroom(lan, headroom)), v4pool))
        if site.kind in DC_KINDS:
            dc_servers = 0
            for zone in site.zones:
                count = servers_by_place.get((name, zone), 0)
                dc_servers += count
                reqs.append(Request(f"zone:{name}:{zone}", ipv4_prefix_for(_with_headroom(count, headroom)), v4pool))
            reqs.append(Request(f"oob:{name}", ipv4_prefix_for(_with_headroom(dc_servers, headroom)), v4pool))
        reqs.append(Request(f"site:{name}", site_plen, v6pool))
    for link in sc.links:
        reqs.append(Request(f"link:{link.name}", 31, "v4-link"))
        reqs.append(Request(f"link:{link.name}", 64, "v6"))
    return sorted(reqs, key=lambda r: (r.pool, r.plen, r.key))


def _pools(sc: Scenario) -> dict[str, tuple[str, PrefixPool]]:
    a = sc.spec.addressing
    pools = {
        "v4": ("addressing.ipv4_pools", PrefixPool(list(a.ipv4_pools))),
        "v4-link": ("addressing.ipv4_link_pool", PrefixPool([a.ipv4_link_pool])),
        "v6": ("addressing.ipv6_prefix", PrefixPool([a.ipv6_prefix])),
    }
    pools["v4-external"] = ("addressing.external_ipv4", PrefixPool([a.external_ipv4])) if a.external_ipv4 else pools["v4"]
    pools["v6-external"] = ("addressing.external_ipv6", PrefixPool([a.external_ipv6])) if a.external_ipv6 else pools["v6"]
    return pools


def _record_key(req: Request) -> str:
    return f"{'v4' if req.pool.startswith('v4') else 'v6'}:{req.key}"


def plan(sc: Scenario, recorded: dict[str, str] | None = None) -> tuple[AddressPlan, list[Problem]]:
    """Plan every address of the scenario, keeping the `recorded` allocations that still fit."""
    recorded = recorded or {}
    pools = _pools(sc)
    result = AddressPlan()
    blocks: dict[str, netaddr.IPNetwork] = {}
    reqs = requests(sc)
    pending: list[Request] = []
    for req in reqs:  # first keep what was recorded, so new blocks go around it
        key = _record_key(req)
        old = recorded.get(key)
        if old is not None:
            net = netaddr.IPNetwork(old)
            if net.prefixlen <= req.plen and pools[req.pool][1].reserve(net):
                blocks[key] = net
                continue
            result.renumbered.append(key)
        pending.append(req)
    short: dict[str, list[Request]] = {}
    for req in pending:
        key = _record_key(req)
        net = pools[req.pool][1].allocate(req.plen)
        if net is None:
            short.setdefault(pools[req.pool][0], []).append(req)
            continue
        blocks[key] = net
        result.new.append(key)
    problems = [
        Problem(where, f"exhausted: no room for {len(missing)} more block(s), first {missing[0].key} "
                       f"(/{missing[0].plen}); the pool holds {pools[missing[0].pool][1].size} addresses")
        for where, missing in short.items()
    ]
    if problems:
        return result, problems
    result.allocations = {k: str(v) for k, v in sorted(blocks.items())}
    _assign(sc, result, blocks)
    return result, []


def _assign(sc: Scenario, result: AddressPlan, blocks: dict[str, netaddr.IPNetwork]) -> None:
    """Derive subnets, host and link addresses from the blocks."""
    def six(site: str, index: int) -> netaddr.IPNetwork:
        site_block = blocks[f"v6:site:{site}"]
        return netaddr.IPNetwork((int(site_block.network) + (index << 64), 64), version=6)

    refs_by_site: dict[str, list] = {}
    for ref in sc.servers():
        refs_by_site.setdefault(ref.site, []).append(ref)
    for name, site in sc.sites.items():
        v4, v6 = sc.ipv4_enabled(name), sc.ipv6_enabled(name)
        refs = refs_by_site.get(name, [])
        if f"v4:lan:{name}" in blocks:
            result.subnets[f"lan:{name}"] = Subnet(f"lan:{name}", name, "lan", None,
                                                   blocks[f"v4:lan:{name}"], six(name, LAN_INDEX), v4, v6)
            lan = result.subnets[f"lan:{name}"]
            members = [(h, "host", None) for h in sc.host_names(name)]
            members += [(r.name, "server", r) for r in refs if r.zone is None]
            for i, (host, role, _) in enumerate(members):
                result.hosts[host] = HostAddress(host, name, None, role, lan.key,
                                                 lan.ipv4[FIRST_HOST + i] if v4 else None,
                                                 lan.ipv6[FIRST_HOST + i] if v6 else None)
        if site.kind in DC_KINDS:
            for zone in site.zones:
                key = f"zone:{name}:{zone}"
                result.subnets[key] = Subnet(key, name, "zone", zone, blocks[f"v4:{key}"],
                                             six(name, ZONE_INDEX[zone]), v4, v6)
            oob = Subnet(f"oob:{name}", name, "oob", None, blocks[f"v4:oob:{name}"], six(name, OOB_INDEX), True, True)
            result.subnets[oob.key] = oob
            dc_refs = [r for r in refs if r.zone is not None]
            per_zone: dict[str, int] = {}
            for j, ref in enumerate(dc_refs):
                i = per_zone.get(ref.zone, 0)
                per_zone[ref.zone] = i + 1
                zone_net = result.subnets[f"zone:{name}:{ref.zone}"]
                result.hosts[ref.name] = HostAddress(
                    ref.name, name, ref.zone, "server", zone_net.key,
                    zone_net.ipv4[FIRST_HOST + i] if v4 else None,
                    zone_net.ipv6[FIRST_HOST + i] if v6 else None,
                    oob.ipv4[FIRST_HOST + j], oob.ipv6[FIRST_HOST + j])
    for link in sc.links:
        v4 = sc.ipv4_enabled(link.a) and sc.ipv4_enabled(link.b)
        v6 = sc.ipv6_enabled(link.a) and sc.ipv6_enabled(link.b)
        block6 = blocks[f"v6:link:{link.name}"]
        result.links[link.name] = LinkAddress(
            link.name, link.a, link.b, blocks[f"v4:link:{link.name}"],
            netaddr.IPNetwork((int(block6.network), 127), version=6), v4, v6)


# -- the allocation file ---------------------------------------------------------------------

ALLOCATION_HEADER = (
    "# egovlab address allocations: which block each LAN, zone and link holds.\n"
    "# Written by `egovlab plan FILE --save`; kept so that adding a site renumbers nothing.\n"
)


def allocation_path(scenario_path: str | Path) -> Path:
    p = Path(scenario_path)
    return p.with_name(p.stem + ".allocations.yml")


def read_allocations(path: Path) -> dict[str, str]:
    """The recorded blocks, each checked: a `v4:`/`v6:` key and a network of that family."""
    if not path.exists():
        return {}
    data = safe_yaml.read(path, empty=None)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(str(path), [Problem("", f"not an allocation file: expected 'key: prefix' lines, "
                                                 f"got a {type(data).__name__}")])
    problems, out = [], {}
    for key, value in data.items():
        where, family = str(key), str(key)[:3]
        if family not in ("v4:", "v6:"):
            problems.append(Problem(where, "unknown key: expected 'v4:...' or 'v6:...'"))
            continue
        try:
            net = netaddr.IPNetwork(str(value), version=int(family[1]))
        except (netaddr.AddrFormatError, ValueError, TypeError):
            problems.append(Problem(where, f"expected an IPv{family[1]} prefix, got {str(value)[:60]!r}"))
            continue
        if net.ip != net.network:
            problems.append(Problem(where, f"{value} has host bits set (the block is {net.cidr})"))
            continue
        out[where] = str(net)
    if problems:
        raise InputError(str(path), problems)
    return out


def allocation_text(allocations: dict[str, str]) -> str:
    return ALLOCATION_HEADER + yaml.safe_dump(dict(sorted(allocations.items())), sort_keys=False)


def write_allocations(path: Path, allocations: dict[str, str]) -> None:
    path.write_text(allocation_text(allocations))
