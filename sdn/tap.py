"""The network TAP (§VIII.2.đ), pure: the primary DC's core copies every packet entering it (from
the Internet lines, the TSLCD and every zone but the SOC's own) to the SOC's sensor, through an
OpenFlow `all` group that re-addresses the copy to the sensor."""
from __future__ import annotations

from egovlab.inventory.scenario import Scenario
from egovlab.topology.model import EmulationPlan, HostNode, SwitchNode

from .program import ETH, TABLE_CLASSIFY, TABLE_FORWARD, Group, Rule

TAP_GROUP = 0x7F000001  # above every fast-failover id (primary << 16 | alternate)


def tap_sensor(sc: Scenario, plan: EmulationPlan) -> HostNode | None:
    """The SOC's sensor: the first server of the primary DC's SOC zone whose role names a TAP or IDS."""
    soc = [h for h in plan.hosts.values() if h.zone == "soc" and sc.sites[h.site].kind == "provincial-dc"]
    roles = {r.name: r.server.role.lower() for r in sc.servers()}
    return next((h for h in soc if "tap" in roles.get(h.label, "") or "ids" in roles.get(h.label, "")),
                soc[0] if soc else None)


def tap(plan: EmulationPlan, sw: SwitchNode, sensor: HostNode | None) -> tuple[dict[int, Group], list[Rule]]:
    """The TAP group and its table-0 rules, on the DC core of the sensor's site (else nothing)."""
    soc_switch = plan.zone_switch.get((sw.site, "soc"))
    if sensor is None or sw.role != "dc-core" or sw.site != sensor.site or not soc_switch:
        return {}, []
    soc_port = next(l.port(sw.name) for l in plan.links if {l.a, l.b} == {sw.name, soc_switch})
    group = Group(TAP_GROUP, ((0, soc_port),), kind="all", set_eth_dst=sensor.mac)
    rules = [Rule.make(TABLE_CLASSIFY, 150, [("group", TAP_GROUP), ("goto", TABLE_FORWARD)],
                       in_port=link.port(sw.name), eth_type=eth)
             for link in plan.links if sw.name in (link.a, link.b) and link.port(sw.name) != soc_port
             for eth in ETH.values()]
    return {TAP_GROUP: group}, rules
