"""The province's workload on its primary data centre, as a network of queues.

From the Scenario (never from its own copy of the province):
- arrival rate per service from `workload.services.*.requests_per_day` (an average working
  day), shaped by the daily and weekly profiles and the month-end factor;
- per-request demand on each tier (web = DMZ cores, app = internal cores, db = cores of the
  servers running the database service, san = SAN controllers' IOPS) and transfer sizes over
  the access channel (the Internet lines for citizens, the DC's TSLCD uplinks for agencies);
- tier capacities from the servers placed in the primary DC's zones.
Assumptions the scenario does not carry are named here and printed in every report.
"""
from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
from dataclasses import dataclass, field

from egovlab.inventory.errors import EgovlabError
from egovlab.inventory.scenario import Scenario
from egovlab.inventory.schema import Workload

from .engine import Dist, RequestClass, Station

# Stated assumptions (not in the scenario schema yet); every report prints them.
ASSUMPTIONS = {
    "san_iops_per_controller": (20_000, "IOPS one SAN controller serves; the document gives no storage figures"),
    "database_service": ("csdl", "the service whose servers form the DB tier"),
    "month_end_days": (3, "the last days of a month carry the month-end factor"),
}
TIERS = ("net", "web", "app", "db", "san")
DEFAULT_RESPONSE_TARGET_S = 2.0


@dataclass
class ServiceDemand:
    name: str
    per_day: float  # requests on an average working day
    web_s: float
    app_s: float
    db_s: float
    san_ios: float
    kbytes: float  # request + response
    channel: str
    write_kb: float = 0.0  # what a request stores (its request body, assumed): replicated to the backup DC


@dataclass
class ProvinceModel:
    scenario: str
    dc: str
    services: list[ServiceDemand]
    capacity: dict[str, int]  # tier -> servers (cores; SAN controllers; access links)
    san_iops: float  # per controller
    channel_bps: dict[str, float]  # access channel -> bits per second of one of its links
    channel_links: dict[str, int]
    daily: list[float]  # normalised: mean 1 over the 24 hours
    weekly: list[float]  # relative to a working day
    month_end: float
    notes: list[str] = field(default_factory=list)
    # Video conferences (§VII.4.c): while a meeting runs, its streams hold this much of the DC's
    # TSLCD uplink (the MCU is in the DC); meetings per working hour and their length.
    vc_bps: float = 0.0
    vc_meetings_per_hour: float = 0.0
    vc_duration_h: float = 0.0

    def with_meeting(self, on: bool = True) -> "ProvinceModel":
        """The model during a video conference: the TSLCD uplink left for requests shrinks."""
        if not on or not self.vc_bps:
            return self
        left = self.channel_bps["tslcd"] - self.vc_bps
        if left <= 0:
            raise EgovlabError(f"video conferences need {self.vc_bps / 1e6:g} Mbps, more than the DC's TSLCD "
                               f"uplink ({self.channel_bps['tslcd'] / 1e6:g} Mbps)")
        return dataclasses.replace(self, channel_bps={**self.channel_bps, "tslcd": left})

    def profile(self, t_s: float, start: dt.datetime) -> float:
        """Load factor at `t_s` seconds after `start` (1.0 = an average working-day hour)."""
        when = start + dt.timedelta(seconds=t_s)
        factor = self.daily[when.hour] * self.weekly[when.weekday()]
        days = calendar.monthrange(when.year, when.month)[1]
        if when.day > days - ASSUMPTIONS["month_end_days"][0]:
            factor *= self.month_end
        return factor

    def peak_factor(self) -> float:
        return max(self.daily) * max(self.weekly) * self.month_end

    def rate(self, svc: ServiceDemand, factor: float = 1.0) -> float:
        return svc.per_day / 86_400 * factor

    def tier_demand(self, svc: ServiceDemand) -> dict[str, float]:
        """Seconds of one server of each tier per request."""
        bps = self.channel_bps[svc.channel]
        return {"net": svc.kbytes * 8_000 / bps, "web": svc.web_s, "app": svc.app_s, "db": svc.db_s,
                "san": svc.san_ios / self.san_iops}

    def station_name(self, tier: str, channel: str) -> str:
        return f"{tier}:{channel}" if tier == "net" else tier

    def utilisation(self, factor: float = 1.0, capacity: dict[str, int] | None = None) -> dict[str, float]:
        cap = capacity or self.capacity
        load: dict[str, float] = {}
        for svc in self.services:
            for tier, d in self.tier_demand(svc).items():
                key = self.station_name(tier, svc.channel)
                load[key] = load.get(key, 0.0) + self.rate(svc, factor) * d
        return {k: v / self.servers(k, cap) for k, v in load.items()}

    def servers(self, station: str, capacity: dict[str, int] | None = None) -> int:
        cap = capacity or self.capacity
        if station.startswith("net:"):
            return self.channel_links[station[4:]]
        return cap[station]

    def queueing_network(self, factor: float, capacity: dict[str, int] | None = None,
                         dist: str = "exp") -> tuple[list[Station], list[RequestClass]]:
        """Stations and request classes for a per-request simulation at a constant load factor."""
        names = sorted({self.station_name(t, s.channel) for s in self.services for t in TIERS})
        stations = [Station(n, self.servers(n, capacity), Dist("exp", 1.0)) for n in names]
        index = {n: i for i, n in enumerate(names)}
        classes = []
        for svc in self.services:
            route = [(index[self.station_name(t, svc.channel)], Dist(dist, d))
                     for t, d in self.tier_demand(svc).items() if d > 0]
            classes.append(RequestClass(svc.name, self.rate(svc, factor), route))
        return stations, classes


def response_target(sc: Scenario) -> float:
    """The p95 response-time target every service is held to (`workload.targets.response_p95_s`)."""
    target = sc.spec.workload.targets.get("response_p95_s") if sc.spec.workload else None
    return target.value if target else DEFAULT_RESPONSE_TARGET_S


def tier_capacity(sc: Scenario, dc: str) -> tuple[dict[str, int], dict[str, int]]:
    """(cores per tier, servers per tier) of a data centre; SAN 'cores' are its controllers."""
    db_service = ASSUMPTIONS["database_service"][0]
    cores = {"web": 0, "app": 0, "db": 0, "san": 0}
    servers = {"web": 0, "app": 0, "db": 0}
    for ref in sc.servers():
        if ref.site != dc:
            continue
        tier = {"dmz": "web", "internal": "app", "db": "db"}.get(ref.zone)
        if tier == "db" and db_service not in ref.server.runs:
            continue
        if tier:
            cores[tier] += ref.cores
            servers[tier] += 1
        elif ref.zone == "san" and ref.server.runs:
            cores["san"] += 1  # controllers, not cores
    return cores, servers


def build(sc: Scenario) -> ProvinceModel:
    w = sc.spec.workload
    if w is None or not w.services:
        raise EgovlabError(f"{sc.source}: workload: the scenario has no workload to simulate")
    primary = [d for d in sc.data_centres() if sc.sites[d].kind == "provincial-dc"]
    if not primary:
        raise EgovlabError(f"{sc.source}: sites: no provincial-dc to simulate")
    dc = primary[0]
    cores, _ = tier_capacity(sc, dc)
    for tier, n in cores.items():
        if n == 0:
            raise EgovlabError(f"{sc.source}: sites.{dc}.zones: no servers for the {tier} tier")
    internet = [l for l in sc.links if l.kind == "internet" and dc in (l.a, l.b)]
    uplinks = [l for l in sc.links if l.kind == "tslcd-l2" and l.a == dc]
    if not internet:
        raise EgovlabError(f"{sc.source}: links: the data centre '{dc}' has no Internet line")
    channel_bps = {"internet": sum(l.bandwidth for l in internet) / len(internet),
                   "tslcd": max(l.bandwidth for l in uplinks) if uplinks else 1e9}
    channel_links = {"internet": len(internet), "tslcd": 1}
    return ProvinceModel(
        sc.name, dc, capacity=cores, san_iops=ASSUMPTIONS["san_iops_per_controller"][0],
        channel_bps=channel_bps, channel_links=channel_links,
        notes=[f"Internet: {len(internet)} lines, mean {channel_bps['internet'] / 1e6:g} Mbps each; a request's "
               f"transfer holds one line (FIFO), an approximation of TCP sharing",
               "video conferences: the peak hour assumes a meeting at full size (worst case); the year places "
               "meetings at random in working hours"],
        **demand(w))


def demand(w: Workload) -> dict:
    """The ProvinceModel fields that come from the workload (what a what-if or a sample changes)."""
    services = [ServiceDemand(name, load.requests_per_day.value, load.web_ms.value / 1000, load.app_ms.value / 1000,
                              load.db_ms.value / 1000, load.san_ios.value,
                              load.request_kb.value + load.response_kb.value, load.channel,
                              write_kb=load.request_kb.value)
                for name, load in w.services.items()]
    mean_daily = sum(w.daily_profile) / 24
    out = {"services": services, "daily": [x / mean_daily for x in w.daily_profile],
           "weekly": list(w.weekly_profile), "month_end": w.month_end_factor.value}
    vc = w.video_conference
    if vc is not None:
        # Every endpoint's stream crosses the DC's uplink; meetings fall in working hours
        # (22 working days of 9 office hours a month: an assumption).
        out.update(vc_bps=vc.endpoints.value * vc.endpoint_kbps.value * 1000,
                   vc_meetings_per_hour=vc.meetings_per_month.value / (22 * 9),
                   vc_duration_h=vc.duration_min.value / 60)
    return out


def with_workload(model: ProvinceModel, w: Workload, san_iops: float | None = None) -> ProvinceModel:
    """The same data centre under another workload (and SAN controller rating)."""
    return dataclasses.replace(model, **demand(w), san_iops=model.san_iops if san_iops is None else san_iops)


def assumptions_of(sc: Scenario) -> list[dict]:
    """Every figure the simulation uses with its basis, for the report."""
    out = []
    w = sc.spec.workload
    for name, load in (w.services.items() if w else []):
        for field_name, fig in load:
            if hasattr(fig, "basis"):
                out.append({"what": f"workload.services.{name}.{field_name}", "value": fig.value,
                            "basis": fig.basis, "ref": fig.ref})
    if w is not None:
        out.append({"what": "workload.month_end_factor", "value": w.month_end_factor.value,
                    "basis": w.month_end_factor.basis, "ref": w.month_end_factor.ref})
    r = sc.spec.resilience
    if r is not None:
        for field_name, fig in r:
            if hasattr(fig, "basis"):
                out.append({"what": f"resilience.{field_name}", "value": fig.value, "basis": fig.basis,
                            "ref": fig.ref})
    for key, (value, why) in ASSUMPTIONS.items():
        out.append({"what": f"simulation.{key}", "value": value, "basis": "assumption", "ref": why})
    return out
