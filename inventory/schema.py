"""The scenario schema: what a province's YAML file may say, as pydantic v2 models.

Structure only (types, ranges, allowed words). Cross-references (a link to an unknown site,
a dependency cycle, overlapping pools) are checked in `validate.py` once the structure holds,
so that every problem of one kind is reported at once.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import netaddr
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from .units import parse_bandwidth, parse_delay, parse_loss

SiteKind = Literal[
    "national",  # TSLCD level I: the national network (NGSP, national databases)
    "core",  # TSLCD level II provincial core node (the operator's point of presence)
    "provincial-dc",
    "backup-dc",
    "department",
    "district",
    "commune",
    "public-service-centre",
    "soc",
    "internet",
]
SITE_KINDS: tuple[str, ...] = SiteKind.__args__  # type: ignore[attr-defined]
DC_KINDS = ("provincial-dc", "backup-dc")
AGENCY_KINDS = ("department", "district", "commune", "public-service-centre")

LinkKind = Literal["tslcd-l1", "tslcd-l2", "internet", "dc-interconnect", "lan"]
LINK_KINDS: tuple[str, ...] = LinkKind.__args__  # type: ignore[attr-defined]

ZoneName = Literal["dmz", "internal", "db", "san", "mgmt", "soc"]
ZONES: tuple[str, ...] = ZoneName.__args__  # type: ignore[attr-defined]

Stage = Literal["v4-only", "dual-stack", "v6-only"]
Basis = Literal["document", "external", "assumption", "derived"]

Name = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=48),
]


def _network(version: int):
    def check(value: object) -> netaddr.IPNetwork:
        try:
            net = netaddr.IPNetwork(str(value))
        except (netaddr.AddrFormatError, ValueError, TypeError):
            raise ValueError(f"expected an IPv{version} prefix like "
                             f"{'198.18.0.0/15' if version == 4 else '2001:db8::/48'}, got {value!r}") from None
        if net.version != version:
            raise ValueError(f"expected an IPv{version} prefix, got IPv{net.version} {value!r}")
        if net.ip != net.network:
            raise ValueError(f"{value!r} has host bits set (did you mean {net.cidr}?)")
        return net

    return check


IPv4Net = Annotated[object, BeforeValidator(_network(4))]
IPv6Net = Annotated[object, BeforeValidator(_network(6))]
Bandwidth = Annotated[int, BeforeValidator(parse_bandwidth)]
Delay = Annotated[float, BeforeValidator(parse_delay)]
Loss = Annotated[float, BeforeValidator(parse_loss)]


class PortSpec(str):
    """A port of the policy, parsed once: 'tcp/443', 'udp/514', 'icmp' (echo) or 'any'.

    It stays the string it was written as (messages, YAML, JSON), and carries its parts."""

    proto: str  # tcp | udp | icmp | any
    number: int | None

    @classmethod
    def parse(cls, value: object) -> "PortSpec":
        text = str(value).strip().lower()
        proto, _, number = text.partition("/")
        if text in ("icmp", "any"):
            out = cls(text)
            out.proto, out.number = text, None
            return out
        if proto not in ("tcp", "udp") or not number.isdigit() or not 1 <= int(number) <= 65535:
            raise ValueError(f"expected a port like 'tcp/443', 'udp/514', 'icmp' or 'any', got {value!r}")
        out = cls(f"{proto}/{int(number)}")
        out.proto, out.number = proto, int(number)
        return out


class SelectorSpec(str):
    """A flow end, parsed once: 'zone:dmz', 'kind:commune', 'site:sadec', 'service:cong-dvc' or 'any'."""

    kind: str  # any | zone | kind | site | service
    ref: str

    @classmethod
    def parse(cls, value: object) -> "SelectorSpec":
        text = str(value).strip()
        kind, _, ref = text.partition(":")
        if text == "any":
            kind, ref = "any", ""
        elif kind not in ("zone", "kind", "site", "service") or not ref:
            raise ValueError(f"expected 'zone:NAME', 'kind:KIND', 'site:NAME', 'service:NAME' or 'any', "
                             f"got {value!r}")
        out = cls("any" if kind == "any" else f"{kind}:{ref}")
        out.kind, out.ref = kind, ref
        return out


# Typed as str for the schema and serialisation; the values are the parsed subclasses above.
Port = Annotated[str, BeforeValidator(lambda v: str(v)), AfterValidator(PortSpec.parse)]
Selector = Annotated[str, AfterValidator(SelectorSpec.parse)]
# A flow end is one selector or a list of them.
Selectors = Annotated[list[Selector], BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
                      Field(min_length=1)]


class Strict(BaseModel):
    """Unknown fields are errors: a typo must not silently become a default."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class Figure(Strict):
    """A number with its provenance: from the document, an external source, or an assumption."""

    value: float = Field(ge=0)
    basis: Basis
    ref: str = Field(min_length=1, description="document section/table, source, or the reasoning")
    range: tuple[float, float] | None = Field(
        default=None, description="low and high values for `egovlab sensitivity` (default: value ±50 %)")

    @model_validator(mode="after")
    def _range_is_an_interval(self) -> "Figure":
        if self.range is not None and not 0 <= self.range[0] < self.range[1]:
            raise ValueError(f"range: expected [low, high] with 0 <= low < high, got {list(self.range)}")
        return self


class Uplink(Strict):
    to: Name
    kind: LinkKind = "tslcd-l2"
    bandwidth: Bandwidth | None = None
    delay: Delay | None = None
    loss: Loss | None = None
    role: Literal["primary", "backup"] = "primary"
    name: Name | None = None


class LinkSpec(Strict):
    """A link not expressed as a site's uplink (Internet lines, DC interconnect, L1 trunks)."""

    name: Name | None = None
    endpoints: tuple[Name, Name]
    kind: LinkKind
    bandwidth: Bandwidth | None = None
    delay: Delay | None = None
    loss: Loss | None = None
    role: Literal["primary", "backup"] = "primary"
    ref: str = ""


class Server(Strict):
    role: str = Field(min_length=1)
    runs: list[Name] = []
    cores: int | None = Field(default=None, gt=0)
    memory_gb: int | None = Field(default=None, gt=0)
    physical: bool = True


class Zone(Strict):
    title: str = ""
    servers: dict[Name, Server] = {}


class CommuneGenerator(Strict):
    """Communes of a district, generated by count when the document does not name them."""

    count: int = Field(ge=0)
    basis: Basis
    ref: str = Field(min_length=1)
    lan_size: int | None = Field(default=None, ge=0)
    hosts: int | None = Field(default=None, ge=0)
    ipv6: Stage | None = None


class Site(Strict):
    kind: SiteKind
    title: str = ""
    ref: str = ""
    parent: Name | None = None
    uplinks: list[Uplink] = []
    lan_size: int | None = Field(default=None, ge=0)
    hosts: int | None = Field(default=None, ge=0)
    ipv6: Stage | None = None
    pool: Literal["province", "external"] | None = None
    zones: dict[ZoneName, Zone] = {}
    servers: dict[Name, Server] = {}  # servers on the site LAN (outside DC zones)
    communes: CommuneGenerator | None = None
    generated: bool = False


class Placement(Strict):
    primary: Name
    backup: Name | None = None


class Service(Strict):
    title: str = ""
    ref: str = ""
    zone: ZoneName | None = None
    ports: list[Port] = Field(min_length=1)
    depends_on: list[Name] = []
    replicas: int = Field(default=1, ge=1)
    backup_replicas: int = Field(default=1, ge=0)
    placement: Placement
    ip_versions: list[Literal[4, 6]] = Field(default=[4, 6], min_length=1)
    exposure: Literal["internet", "tslcd", "internal"] = "internal"


class Flow(Strict):
    name: str | None = None
    source: Selectors = Field(alias="from")
    to: Selectors
    ports: list[Port] | None = None
    ip: list[Literal[4, 6]] = Field(default=[4, 6], min_length=1)
    relation: Literal["parent"] | None = None
    note: str = ""


class Policy(Strict):
    default: Literal["deny"] = "deny"
    allow: list[Flow] = []


class Addressing(Strict):
    ipv4_pools: list[IPv4Net] = Field(min_length=1)
    ipv4_link_pool: IPv4Net
    ipv6_prefix: IPv6Net
    site_prefix_length: int = Field(default=56, ge=32, le=56)  # a site holds 256 /64s
    external_ipv4: IPv4Net | None = None
    external_ipv6: IPv6Net | None = None
    lan_headroom: float = Field(default=0.25, ge=0, le=4)


class Phase(Strict):
    name: Name
    start: dt.date
    ref: str = ""
    kinds: dict[SiteKind, Stage] = {}
    sites: dict[Name, Stage] = {}


class IPv6Rollout(Strict):
    default_stage: Stage = "v4-only"
    current: Name | None = None  # the phase in force; default: the last one
    phases: list[Phase] = []


class KindDefaults(Strict):
    lan_size: int | None = Field(default=None, ge=0)
    hosts: int | None = Field(default=None, ge=0)
    uplink_kind: LinkKind | None = None
    uplink_bandwidth: Bandwidth | None = None
    uplink_delay: Delay | None = None
    cores: int | None = Field(default=None, gt=0)
    memory_gb: int | None = Field(default=None, gt=0)


class LinkDefaults(Strict):
    bandwidth: Bandwidth
    delay: Delay | None = None
    loss: Loss | None = None


class ServiceLoad(Strict):
    """Per-request demand of one service on each tier, and its arrival volume."""

    requests_per_day: Figure
    web_ms: Figure
    app_ms: Figure
    db_ms: Figure
    san_ios: Figure
    request_kb: Figure
    response_kb: Figure
    channel: Literal["internet", "tslcd"] = "internet"


class VideoConference(Strict):
    rooms: Figure
    endpoints: Figure
    meetings_per_month: Figure
    duration_min: Figure
    endpoint_kbps: Figure


Level = Literal["province", "district", "commune"]
Driver = Literal["online-dossiers", "dossiers", "users", "page-views", "none"]


class Share(Figure):
    value: float = Field(ge=0, le=1)


class Growth(Strict):
    """How the workload grows from the base year (the year the workload's figures describe).

    A service's requests follow its driver: `online-dossiers` (dossiers x the online share,
    averaged over the levels by their share of dossiers), `dossiers`, `users` or `page-views`
    (each compounded by its yearly rate), or `none`. Video conferences follow the online share
    of meetings. Shares between the years given are interpolated linearly.
    """

    base_year: int = Field(ge=2000, le=2100)
    dossier_levels: dict[Level, Share] = Field(min_length=1)
    online_dossiers: dict[Level, dict[int, Share]] = Field(min_length=1)
    online_meetings: dict[int, Share] = {}
    yearly: dict[Literal["dossiers", "users", "page-views"], Figure] = {}
    drivers: dict[Name, Driver] = {}

    @model_validator(mode="after")
    def _schedules_start_at_the_base_year(self) -> "Growth":
        schedules = {f"online_dossiers.{lvl}": years for lvl, years in self.online_dossiers.items()}
        if self.online_meetings:
            schedules["online_meetings"] = self.online_meetings
        for where, years in schedules.items():
            if self.base_year not in years:
                raise ValueError(f"{where}: needs the base year {self.base_year} (the share the workload describes)")
        missing = set(self.dossier_levels) - set(self.online_dossiers)
        if missing:
            raise ValueError(f"online_dossiers: no schedule for {', '.join(sorted(missing))}")
        return self


class Workload(Strict):
    daily_profile: list[float] = Field(min_length=24, max_length=24)
    weekly_profile: list[float] = Field(min_length=7, max_length=7)
    month_end_factor: Figure
    services: dict[Name, ServiceLoad] = {}
    video_conference: VideoConference | None = None
    targets: dict[str, Figure] = {}
    growth: Growth | None = None


StrategyName = Literal["hot/sync", "hot/async", "warm/sync", "warm/async", "cold/backup"]


class StrategyCost(Strict):
    capital: Figure
    yearly: Figure


class DRCosts(Strict):
    """What each disaster-recovery strategy costs (`egovlab dr` ranks those meeting the targets)."""

    currency: str = Field(min_length=1, max_length=40)
    strategies: dict[StrategyName, StrategyCost] = Field(min_length=1)


class Resilience(Strict):
    server_mtbf_h: Figure
    server_mttr_h: Figure
    link_mtbf_h: Figure
    link_mttr_h: Figure
    dc_mtbf_h: Figure
    dc_mttr_h: Figure
    detection_s: Figure
    redirection_s: Figure
    replication: Literal["sync", "async"] = "async"
    replication_lag_s: Figure
    standby: Literal["cold", "warm", "hot"] = "warm"
    rto_target_s: Figure
    rpo_target_s: Figure
    costs: DRCosts | None = None


class ScenarioSpec(Strict):
    """The whole file, as written (before communes are generated and uplinks become links)."""

    scenario: Name
    title: str = ""
    source: str = ""
    addressing: Addressing
    ipv6: IPv6Rollout = IPv6Rollout()
    kind_defaults: dict[SiteKind, KindDefaults] = {}
    link_defaults: dict[LinkKind, LinkDefaults] = {}
    sites: dict[Name, Site] = Field(min_length=1)
    links: list[LinkSpec] = []
    services: dict[Name, Service] = {}
    policy: Policy = Policy()
    workload: Workload | None = None
    resilience: Resilience | None = None
