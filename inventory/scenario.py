"""The resolved `Scenario`: the one object every engine reads.

`resolve()` turns the file as written (`ScenarioSpec`) into what the province is: communes
generated where the document gives only counts, every uplink a `Link`, every site's effective
kind defaults and IPv6 stage. It never fails on bad references; `validate.py` reports those.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from .schema import DC_KINDS, KindDefaults, Phase, ScenarioSpec, Server, Site, Uplink

if TYPE_CHECKING:
    from .addressing import AddressPlan

# Defaults for what a site kind usually is, used where neither the site nor the scenario's
# kind_defaults says. LAN sizes are devices on the agency LAN; hosts are the representative
# hosts an emulation starts (one per commune, two per department and district).
BUILTIN_KIND_DEFAULTS: dict[str, KindDefaults] = {
    "national": KindDefaults(lan_size=16, hosts=1),
    "core": KindDefaults(lan_size=0, hosts=0),
    "provincial-dc": KindDefaults(lan_size=0, hosts=0),
    "backup-dc": KindDefaults(lan_size=0, hosts=0),
    "department": KindDefaults(lan_size=60, hosts=2),
    "district": KindDefaults(lan_size=80, hosts=2),
    "commune": KindDefaults(lan_size=25, hosts=1),
    "public-service-centre": KindDefaults(lan_size=40, hosts=2),
    "soc": KindDefaults(lan_size=16, hosts=1),
    "internet": KindDefaults(lan_size=16, hosts=2),
}
BUILTIN_SERVER_CORES = 16
BUILTIN_SERVER_MEMORY_GB = 64


@dataclass(frozen=True)
class Link:
    name: str
    a: str
    b: str
    kind: str
    bandwidth: int  # bits per second
    delay_ms: float | None
    loss_pct: float | None
    role: str  # primary | backup
    path: str  # where the scenario declares it, for messages

    def other(self, site: str) -> str:
        return self.b if site == self.a else self.a


@dataclass(frozen=True)
class ServerRef:
    name: str
    site: str
    zone: str | None  # None: on the site LAN
    server: Server
    cores: int
    memory_gb: int

    @property
    def path(self) -> str:
        if self.zone:
            return f"sites.{self.site}.zones.{self.zone}.servers.{self.name}"
        return f"sites.{self.site}.servers.{self.name}"


@dataclass
class Scenario:
    source: str
    spec: ScenarioSpec
    sites: dict[str, Site]
    site_paths: dict[str, str]  # site -> where it is declared (generated communes: their generator)
    links: list[Link]
    phase: Phase | None
    stages: dict[str, str]  # site -> effective IPv6 stage
    plan: "AddressPlan | None" = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.spec.scenario

    def defaults(self, kind: str) -> KindDefaults:
        merged = BUILTIN_KIND_DEFAULTS[kind].model_dump()
        if kind in self.spec.kind_defaults:
            merged.update(self.spec.kind_defaults[kind].model_dump(exclude_none=True))
        return KindDefaults(**merged)

    def lan_size(self, site: str) -> int:
        s = self.sites[site]
        return s.lan_size if s.lan_size is not None else self.defaults(s.kind).lan_size or 0

    def host_count(self, site: str) -> int:
        s = self.sites[site]
        return s.hosts if s.hosts is not None else self.defaults(s.kind).hosts or 0

    def host_names(self, site: str) -> list[str]:
        return [f"{site}-h{i}" for i in range(1, self.host_count(site) + 1)]

    @functools.cached_property
    def server_runs(self) -> dict[str, tuple[str, ...]]:
        """Server name -> the services it runs: read once, asked for every pair of hosts."""
        return {ref.name: tuple(ref.server.runs) for ref in self.servers()}

    def servers(self) -> Iterator[ServerRef]:
        for site_name, site in self.sites.items():
            d = self.defaults(site.kind)
            places = [(None, site.servers)] + [(z, zone.servers) for z, zone in site.zones.items()]
            for zone_name, servers in places:
                for name, server in servers.items():
                    yield ServerRef(
                        name, site_name, zone_name, server,
                        server.cores or d.cores or BUILTIN_SERVER_CORES,
                        server.memory_gb or d.memory_gb or BUILTIN_SERVER_MEMORY_GB,
                    )

    def sites_of_kind(self, *kinds: str) -> list[str]:
        return [n for n, s in self.sites.items() if s.kind in kinds]

    def data_centres(self) -> list[str]:
        return self.sites_of_kind(*DC_KINDS)

    def links_of(self, site: str) -> list[Link]:
        return [l for l in self.links if site in (l.a, l.b)]

    def ipv4_enabled(self, site: str) -> bool:
        return self.stages[site] != "v6-only"

    def ipv6_enabled(self, site: str) -> bool:
        return self.stages[site] != "v4-only"


def commune_names(district: str, count: int) -> list[str]:
    return [f"{district}-xa-{i:02d}" for i in range(1, count + 1)]


def resolve(spec: ScenarioSpec, source: str) -> Scenario:
    sites: dict[str, Site] = {}
    site_paths: dict[str, str] = {}
    for name, site in spec.sites.items():
        sites[name] = site
        site_paths[name] = f"sites.{name}"
    # Generated communes come after the declared sites; a name clash is reported by validate.
    for name, site in spec.sites.items():
        gen = site.communes
        if gen is None or site.kind != "district":
            continue
        for cname in commune_names(name, gen.count):
            if cname in sites:
                continue
            sites[cname] = Site(
                kind="commune", title=f"{site.title or name}: commune (generated)", ref=gen.ref,
                parent=name, lan_size=gen.lan_size, hosts=gen.hosts, ipv6=gen.ipv6, generated=True,
            )
            site_paths[cname] = f"sites.{name}.communes"

    scenario = Scenario(source, spec, sites, site_paths, [], None, {})
    scenario.links = _links(scenario)
    scenario.phase, scenario.stages = _stages(scenario)
    return scenario


def _links(sc: Scenario) -> list[Link]:
    spec = sc.spec
    links: list[Link] = []
    taken: set[str] = set()

    def unique(base: str) -> str:
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        return name

    def params(kind: str, bandwidth, delay, loss, fallback_bw=None, fallback_delay=None):
        ld = spec.link_defaults.get(kind)
        bw = bandwidth or fallback_bw or (ld.bandwidth if ld else 10**9)
        dl = delay if delay is not None else (fallback_delay if fallback_delay is not None else (ld.delay if ld else None))
        ls = loss if loss is not None else (ld.loss if ld else None)
        return bw, dl, ls

    # Explicitly named links first, so generated names never take a name the file chose.
    for spec_link in spec.links:
        if spec_link.name:
            taken.add(spec_link.name)
    for site_name, site in sc.sites.items():
        d = sc.defaults(site.kind)
        uplinks = list(site.uplinks)
        implicit = not uplinks and site.parent is not None
        if implicit:  # a site with only a parent hangs off it on the kind's default uplink
            uplinks = [Uplink(to=site.parent, kind=d.uplink_kind or "tslcd-l2")]
        for i, up in enumerate(uplinks):
            bw, dl, ls = params(up.kind, up.bandwidth, up.delay, up.loss, d.uplink_bandwidth, d.uplink_delay)
            name = up.name or unique(f"{site_name}--{up.to}")
            where = sc.site_paths[site_name] + (".parent" if implicit and not site.generated else
                                                "" if implicit else f".uplinks[{i}]")
            links.append(Link(name, site_name, up.to, up.kind, bw, dl, ls, up.role, where))
    for i, spec_link in enumerate(spec.links):
        a, b = spec_link.endpoints
        bw, dl, ls = params(spec_link.kind, spec_link.bandwidth, spec_link.delay, spec_link.loss)
        name = spec_link.name or unique(f"{a}--{b}")
        links.append(Link(name, a, b, spec_link.kind, bw, dl, ls, spec_link.role, f"links[{i}]"))
    return links


def _stages(sc: Scenario) -> tuple[Phase | None, dict[str, str]]:
    rollout = sc.spec.ipv6
    phases = rollout.phases
    in_force: list[Phase] = phases
    current = None
    if phases:
        if rollout.current:
            names = [p.name for p in phases]
            cut = names.index(rollout.current) + 1 if rollout.current in names else len(phases)
            in_force = phases[:cut]
        current = in_force[-1] if in_force else None
    stages: dict[str, str] = {}
    for name, site in sc.sites.items():
        stage = rollout.default_stage
        for phase in in_force:  # phases are cumulative: a later phase overrides an earlier one
            stage = phase.sites.get(name, phase.kinds.get(site.kind, stage))
        stages[name] = site.ipv6 or stage
    return current, stages
