"""Prometheus metrics of the controller, read from the switches' own counters, and the
controller's control calls: /reload (a policy change) and /audit (every switch read back and
compared with its program).

The app polls each switch (aggregate stats for its rule count, flow stats of the counting rules
for bytes per zone pair and policy drops); this collector renders the latest figures on every
scrape, so a scrape never waits on a switch.
"""
from __future__ import annotations

import hmac
import json
import os
import secrets

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from egovlab.inventory.errors import EgovlabError
from egovlab.topology.state import state_dir


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
                               ("givebacks", "Addresses their owner announced again after a takeover"),
                               ("reloads", "Policy changes (and rollbacks) applied without restarting"),
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
    metrics_app = make_wsgi_app(registry)
    # POST /reload {"scenario": FILE} or /audit {} with the secret only root can read from the
    # lab's state: the control API commits policy changes through it, the soak audits the
    # switches (any local user can reach this port).
    secret = secrets.token_urlsafe(24)
    path = state_dir(app.plan.prefix) / "controller.secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret)

    calls = {"/reload": lambda body: app.reload(body["scenario"]),
             "/audit": lambda body: app.audit(float(body.get("timeout_s", 60)))}

    def wsgi(environ, start_response):
        call = calls.get(environ.get("PATH_INFO"))
        if call is None:
            return metrics_app(environ, start_response)
        status, result = "200 OK", None
        if environ.get("REQUEST_METHOD") != "POST":
            status, result = "405 Method Not Allowed", {"error": "POST only"}
        elif not hmac.compare_digest(environ.get("HTTP_X_EGOVLAB_SECRET", ""), secret):
            status, result = "403 Forbidden", {"error": "wrong secret"}
        else:
            try:
                body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}")
                result = call(body)
            except (EgovlabError, ValueError, KeyError, OSError) as exc:
                status, result = "422 Unprocessable Entity", {"error": str(exc)}
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(result).encode()]

    sock = eventlet.listen(("127.0.0.1", port))
    hub.spawn(eventlet.wsgi.server, sock, wsgi, log_output=False)
