"""Prometheus metrics of the controller, read from the switches' own counters.

The app polls each switch (aggregate stats for its rule count, flow stats of the counting rules
for bytes per zone pair and policy drops); this collector renders the latest figures on every
scrape, so a scrape never waits on a switch.
"""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class ControllerCollector:
    def __init__(self, app):
        self.app = app

    def collect(self):
        app = self.app
        names = {s.dpid: s.name for s in app.plan.switches.values()}
        connected = GaugeMetricFamily("egovlab_sdn_switches_connected", "Switches connected to the controller")
        connected.add_metric([], len(app.datapaths))
        yield connected
        programmed = GaugeMetricFamily("egovlab_sdn_switches_programmed", "Switches holding their compiled program")
        programmed.add_metric([], len(app.installed))
        yield programmed
        rules = GaugeMetricFamily("egovlab_sdn_rules", "Rules egovlab installed, as the switch reports them",
                                  labels=["switch"])
        compiled = GaugeMetricFamily("egovlab_sdn_rules_compiled", "Rules in the switch's compiled program",
                                     labels=["switch"])
        for dpid, prog in sorted(app.programs.items()):
            compiled.add_metric([names.get(dpid, str(dpid))], len(prog.rules))
            if dpid in app.flow_counts:
                rules.add_metric([names.get(dpid, str(dpid))], app.flow_counts[dpid])
        yield rules
        yield compiled
        zone_bytes = CounterMetricFamily("egovlab_sdn_zone_pair_bytes", "Bytes of established connections per "
                                         "zone pair (both directions, counted at each packet's ingress edge)",
                                         labels=["src_zone", "dst_zone"])
        zone_packets = CounterMetricFamily("egovlab_sdn_zone_pair_packets", "Packets of established connections "
                                           "per zone pair", labels=["src_zone", "dst_zone"])
        drops = CounterMetricFamily("egovlab_sdn_policy_drops", "Packets dropped by the zone policy (default deny)",
                                    labels=["switch"])
        totals: dict[int, list[int]] = {}
        for dpid, counters in sorted(app.counters.items()):
            for counter, (packets, octets) in counters.items():
                if counter == app.drop_counter:
                    drops.add_metric([names.get(dpid, str(dpid))], packets)
                else:
                    t = totals.setdefault(counter, [0, 0])
                    t[0] += packets
                    t[1] += octets
        for counter, (packets, octets) in sorted(totals.items()):
            pair = app.counter_names.get(counter, ("?", "?"))
            zone_packets.add_metric(list(pair), packets)
            zone_bytes.add_metric(list(pair), octets)
        yield zone_bytes
        yield zone_packets
        yield drops
        for key, help_text in (("failovers", "Link failures the controller re-optimised after the switches' "
                                             "local fast failover"),
                               ("recomputes", "Global recomputations (port-status changes, address takeovers)"),
                               ("takeovers", "Addresses a standby took over (gratuitous ARP)"),
                               ("installs", "Full (re-)installs of a switch's program"),
                               ("arp_answers", "ARP requests answered by the controller"),
                               ("nd_answers", "IPv6 neighbour solicitations answered by the controller")):
            c = CounterMetricFamily(f"egovlab_sdn_{key}", help_text)
            c.add_metric([], app.stats[key])
            yield c


def serve(app, port: int) -> None:
    """Serve /metrics on 127.0.0.1:port from an eventlet green thread (the controller's hub)."""
    import eventlet
    import eventlet.wsgi
    from os_ken.lib import hub
    from prometheus_client import CollectorRegistry, make_wsgi_app

    registry = CollectorRegistry()
    registry.register(ControllerCollector(app))
    sock = eventlet.listen(("127.0.0.1", port))
    hub.spawn(eventlet.wsgi.server, sock, make_wsgi_app(registry), log_output=False)
