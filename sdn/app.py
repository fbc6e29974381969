"""The os-ken (Ryu API) adapter: installs the compiled rules, answers ARP/ND, follows port changes.

Thin by design: every decision is `core.ControllerCore`'s (pure, tested with a fake clock and
in-memory switches); this module decodes os-ken events, calls the core with the time, and turns
what it returns into OpenFlow 1.3 messages. The scenario, prefix and host cap come from the
launcher (`egovlab controller`), which sets `CONFIG` before os-ken starts the app.
"""
from __future__ import annotations

import json
import time

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.lib.packet import arp, ethernet, icmpv6, ipv6, packet
from os_ken.ofproto import ofproto_v1_3

from egovlab.inventory import loader
from egovlab.topology.announce import NA_OVERRIDE, NA_SOLICITED
from egovlab.topology.model import emulation_plan
from egovlab.topology.state import state_dir

from . import compiler, core, metrics, openflow, program

CONFIG: dict = {}  # scenario, prefix, hosts_per_site, metrics_port: set by the launcher
POLL_S = 2.0  # how often the switches' counters are read for the metrics


class EgovlabController(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        sc = loader.load(CONFIG["scenario"])
        plan = emulation_plan(sc, prefix=CONFIG.get("prefix", "eg"), hosts_per_site=CONFIG.get("hosts_per_site"))
        self.core = core.ControllerCore(sc, plan)
        self.plan = plan
        self.datapaths: dict[int, object] = {}
        # what the switches last reported: rule counts, and (packets, bytes) per counting rule
        self.drop_counter = compiler.DROP_COUNTER
        self.flow_counts: dict[int, int] = {}
        self.counters: dict[int, dict[int, tuple[int, int]]] = {}
        self._replies: dict[int, dict[int, tuple[int, int]]] = {}
        self._readings: dict[int, _Reading] = {}  # xid of a table read of a connecting switch -> its reading
        self._syncing: dict[int, int] = {}  # xid of the barrier after a switch's re-sync -> its dpid
        self._audits: dict[int, dict] = {}  # dpid -> its drift from its program, as an audit read it
        self.metrics_port = CONFIG.get("metrics_port")
        if self.metrics_port:
            metrics.serve(self, self.metrics_port)
        hub.spawn(self._poll)
        self.logger.info("egovlab: %d switches, %d rules compiled", len(self.programs),
                         sum(len(p.rules) for p in self.programs.values()))

    # what the metrics read: the core's state
    programs = property(lambda self: self.core.programs)
    installed = property(lambda self: self.core.installed)
    stats = property(lambda self: self.core.stats)
    counter_names = property(lambda self: self.core.counter_names)

    # -- install ---------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def on_features(self, ev):
        """A warm start. First the cheap question: does the switch hold its program's fingerprint,
        and as many rules as that program? (Reading every switch's tables back costs os-ken's
        parser ~2 s of CPU for the province, long enough for reconnecting switches to time out.)"""
        dp = ev.msg.datapath
        self.datapaths[dp.id] = dp
        if dp.id not in self.programs:
            self.logger.warning("egovlab: unknown switch dpid %016x", dp.id)
            return
        ofp, parser = dp.ofproto, dp.ofproto_parser
        self._ask(_Reading(dp, full=False), [
            parser.OFPFlowStatsRequest(dp, 0, program.TABLE_FINGERPRINT, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                       program.FINGERPRINT_COOKIE, compiler.COOKIE_MASK, parser.OFPMatch()),
            parser.OFPAggregateStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, compiler.COOKIE,
                                            compiler.COOKIE_MASK, parser.OFPMatch())])

    def _read_all(self, dp, audit: bool = False) -> None:
        """Read what the switch holds: its rules with this controller's cookie, its groups and its
        meters; once all three have arrived `_resync` sends what differs (an audit only compares)."""
        ofp, parser = dp.ofproto, dp.ofproto_parser
        self._ask(_Reading(dp, full=True, audit=audit), [
            parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, compiler.COOKIE,
                                       compiler.COOKIE_MASK, parser.OFPMatch()),
            parser.OFPGroupDescStatsRequest(dp, 0),
            parser.OFPMeterConfigStatsRequest(dp, 0, ofp.OFPM_ALL)])

    def _ask(self, reading: "_Reading", requests: list) -> None:
        for req in requests:
            reading.pending.add(reading.dp.set_xid(req))
            self._readings[req.xid] = reading
            reading.dp.send_msg(req)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def on_port_desc(self, ev):
        """A (re)connecting switch's ports as they are: a link cut while no controller ran counts."""
        for port in ev.msg.body:
            self._port(port, ev.msg.datapath.ofproto)

    def _read(self, msg, take) -> bool:
        """One part of a connecting switch's table read (False: a reply to something else)."""
        reading = self._readings.get(msg.xid)
        if reading is None:
            return False
        take(reading)
        if not msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE:
            del self._readings[msg.xid]
            reading.pending.discard(msg.xid)
            if not reading.pending and self.datapaths.get(reading.dp.id) is reading.dp:
                self._answered(reading)
        return True

    def _answered(self, reading: "_Reading") -> None:
        dp = reading.dp
        if reading.audit:
            held = compiler.SwitchProgram(dp.id, "", reading.rules, reading.groups, reading.meters)
            self._audits[dp.id] = core.drift(held, self.programs[dp.id])
        elif reading.full:
            self._resync(reading)
        elif self.core.holds_program(dp.id, reading.cookies[0] if reading.cookies else None, reading.flow_count):
            self._confirm(dp)
        else:
            self._read_all(dp)

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def on_group_desc(self, ev):
        ofp = ev.msg.datapath.ofproto
        self._read(ev.msg, lambda r: r.groups.update((g.group_id, openflow.group_of(g, ofp)) for g in ev.msg.body))

    @set_ev_cls(ofp_event.EventOFPMeterConfigStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def on_meter_config(self, ev):
        self._read(ev.msg, lambda r: r.meters.update((m.meter_id, openflow.meter_of(m)) for m in ev.msg.body))

    def audit(self, timeout_s: float = 60.0) -> dict:
        """Read every connected switch back in full (rules, groups, meters: what a warm start
        reads) and compare it with its program; nothing is sent but the reads. Per switch its
        drift (`core.drift`, all zero: it holds exactly its program) and its program's
        fingerprint, so a caller can compare the program with its own compilation."""
        self._audits = {}
        asked = dict(self.datapaths)
        for dp in asked.values():
            self._read_all(dp, audit=True)
        deadline = time.monotonic() + timeout_s
        while len(self._audits) < len(asked) and time.monotonic() < deadline:
            hub.sleep(0.05)
        names = {s.dpid: s.name for s in self.plan.switches.values()}
        return {"switches": {names[d]: {**self._audits[d], "fingerprint": program.fingerprint(self.programs[d]).cookie}
                             for d in sorted(self._audits)},
                "unanswered": sorted(names[d] for d in asked if d not in self._audits),
                "not_connected": sorted(n for d, n in names.items() if d not in asked),
                "down": sorted(self.core.down)}

    def _resync(self, reading: "_Reading") -> None:
        dp = reading.dp
        held = compiler.SwitchProgram(dp.id, "", reading.rules, reading.groups, reading.meters)
        update = self.core.switch_up(dp.id, held)
        self._send_updates([update])
        self._confirm(dp)
        self.logger.info("egovlab: %016x re-synced, %d rule changes", dp.id, update.changed_rules)

    def _confirm(self, dp) -> None:
        """A barrier: its reply says the switch has done everything sent before it."""
        barrier = dp.ofproto_parser.OFPBarrierRequest(dp)
        self._syncing[dp.set_xid(barrier)] = dp.id
        dp.send_msg(barrier)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def on_barrier(self, ev):
        dpid = self._syncing.pop(ev.msg.xid, None)
        if dpid is not None:
            self.core.synced(dpid)
            self._write_status()

    def _write_status(self) -> None:
        """Where `egovlab up --sdn` sees that every switch holds its rules."""
        d = state_dir(self.plan.prefix)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / "controller.json.tmp"
        tmp.write_text(json.dumps({**self.core.status(), "metrics": f"http://127.0.0.1:{self.metrics_port}/metrics"
                                   if self.metrics_port else None}))
        tmp.replace(d / "controller.json")

    # -- counters for the metrics --------------------------------------------------------------

    def _poll(self):
        while True:
            hub.sleep(POLL_S)
            for dp in list(self.datapaths.values()):
                ofp, parser = dp.ofproto, dp.ofproto_parser
                dp.send_msg(parser.OFPAggregateStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                                            compiler.COOKIE, compiler.COOKIE_MASK, parser.OFPMatch()))
                dp.send_msg(parser.OFPFlowStatsRequest(dp, 0, compiler.TABLE_POLICY, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                                       compiler.COOKIE | compiler.COUNTED,
                                                       compiler.COOKIE_MASK | compiler.COUNTED, parser.OFPMatch()))

    @set_ev_cls(ofp_event.EventOFPAggregateStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def on_aggregate_stats(self, ev):
        if not self._read(ev.msg, lambda r: setattr(r, "flow_count", ev.msg.body.flow_count)):
            self.flow_counts[ev.msg.datapath.id] = ev.msg.body.flow_count

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def on_flow_stats(self, ev):
        ofp = ev.msg.datapath.ofproto
        if self._read(ev.msg, lambda r: r.rules.extend(openflow.rule_of(f, ofp) for f in ev.msg.body) if r.full
                      else r.cookies.extend(f.cookie for f in ev.msg.body)):
            return
        dpid = ev.msg.datapath.id
        part = self._replies.setdefault(dpid, {})
        for stat in ev.msg.body:
            counter = stat.cookie & 0xFFFFFFFF
            packets, octets = part.get(counter, (0, 0))
            part[counter] = (packets + stat.packet_count, octets + stat.byte_count)
        if not ev.msg.flags & ev.msg.datapath.ofproto.OFPMPF_REPLY_MORE:
            self.counters[dpid] = self._replies.pop(dpid)

    @set_ev_cls(ofp_event.EventOFPStateChange, [DEAD_DISPATCHER])
    def on_disconnect(self, ev):
        dp = ev.datapath
        if dp.id is not None and self.datapaths.get(dp.id) is dp:
            del self.datapaths[dp.id]
        for xid in [x for x, reading in self._readings.items() if reading.dp is dp]:
            del self._readings[xid]  # a read cut short: the switch is read anew when it reconnects

    # -- ARP / ND ---------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def on_packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        pkt = packet.Packet(msg.data)
        eth = pkt.get_protocol(ethernet.ethernet)
        in_port = msg.match["in_port"]
        req = pkt.get_protocol(arp.arp)
        if req is not None and req.src_ip == req.dst_ip:
            accepted, at = self.core.claim(req.src_ip, req.src_mac, time.monotonic())
            if not accepted:
                self.logger.warning("egovlab: ignored a claim of %s by %s", req.src_ip, req.src_mac)
            self._reprogram_at(at)
            return
        if req is not None and req.opcode == arp.ARP_REQUEST:
            mac = self.core.neighbour(req.dst_ip, "arp")
            if mac is None:
                return
            reply = packet.Packet()
            reply.add_protocol(ethernet.ethernet(ethertype=eth.ethertype, dst=eth.src, src=mac))
            reply.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=mac, src_ip=req.dst_ip,
                                       dst_mac=req.src_mac, dst_ip=req.src_ip))
            self._send(dp, in_port, reply)
            return
        ns = pkt.get_protocol(icmpv6.icmpv6)
        ip6 = pkt.get_protocol(ipv6.ipv6)
        if ns is not None and ns.type_ == icmpv6.ND_NEIGHBOR_ADVERT and not ns.data.res & NA_SOLICITED:
            # an unsolicited advertisement announces an address: IPv6's gratuitous ARP
            tla = next((o.hw_src for o in [ns.data.option] if isinstance(o, icmpv6.nd_option_tla)), eth.src)
            accepted, at = self.core.claim(ns.data.dst, tla, time.monotonic())
            if not accepted:
                self.logger.warning("egovlab: ignored a claim of %s by %s", ns.data.dst, tla)
            self._reprogram_at(at)
            return
        if ns is not None and ns.type_ == icmpv6.ND_NEIGHBOR_SOLICIT and ip6 is not None:
            target = ns.data.dst
            mac = self.core.neighbour(target, "nd")
            if mac is None:
                return
            reply = packet.Packet()
            reply.add_protocol(ethernet.ethernet(ethertype=eth.ethertype, dst=eth.src, src=mac))
            reply.add_protocol(ipv6.ipv6(src=target, dst=ip6.src, nxt=58, hop_limit=255))
            reply.add_protocol(icmpv6.icmpv6(type_=icmpv6.ND_NEIGHBOR_ADVERT, data=icmpv6.nd_neighbor(
                res=NA_SOLICITED | NA_OVERRIDE, dst=target, option=icmpv6.nd_option_tla(hw_src=mac))))
            self._send(dp, in_port, reply)

    def _send(self, dp, port: int, pkt) -> None:
        pkt.serialize()
        ofp, parser = dp.ofproto, dp.ofproto_parser
        dp.send_msg(parser.OFPPacketOut(dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                                        actions=[parser.OFPActionOutput(port)], data=pkt.data))

    # -- port changes: global re-optimisation after the switches' local fast failover ---------

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def on_port_status(self, ev):
        self._port(ev.msg.desc, ev.msg.datapath.ofproto)

    def _port(self, port, ofp) -> None:
        """A port as a switch describes it (a status change, or its ports at connection)."""
        name = port.name.decode() if isinstance(port.name, bytes) else port.name
        is_down = bool(port.state & ofp.OFPPS_LINK_DOWN) or bool(port.config & ofp.OFPPC_PORT_DOWN)
        self._reprogram_at(self.core.port_status(name, is_down, time.monotonic()))

    def _reprogram_at(self, at: float | None) -> None:
        if at is not None:
            hub.spawn_after(max(0.0, at - time.monotonic()), self._reprogram)

    def _reprogram(self) -> None:
        """Move every switch to the program for the network as it is now, without a gap."""
        t0 = time.perf_counter()
        updates, why = self.core.reprogram(set(self.datapaths))
        changed = self._send_updates(updates)
        self._write_status()
        self.logger.warning("egovlab: %s: recomputed, %d rule changes sent in %.2f s", why, changed,
                            time.perf_counter() - t0)

    def reload(self, source: str) -> dict:
        """A changed policy for the same network (a committed policy change, or its rollback)."""
        sc = loader.load(source)
        plan = emulation_plan(sc, prefix=self.plan.prefix, hosts_per_site=CONFIG.get("hosts_per_site"))
        t0 = time.perf_counter()
        changed = self._send_updates(self.core.reload(sc, plan, set(self.datapaths)))
        self._write_status()
        seconds = time.perf_counter() - t0
        self.logger.warning("egovlab: policy from %s: %d rule changes sent in %.2f s", source, changed, seconds)
        return {"changed_rules": changed, "seconds": round(seconds, 3),
                "rules": sum(len(p.rules) for p in self.programs.values())}

    def _send_updates(self, updates: list[core.Update]) -> int:
        for update in updates:
            dp = self.datapaths.get(update.dpid)
            if dp is None:
                continue
            ofp, parser = dp.ofproto, dp.ofproto_parser
            for op in update.ops:
                kind = op[0]
                if kind == "barrier":
                    dp.send_msg(parser.OFPBarrierRequest(dp))
                elif kind in ("meter_add", "meter_modify"):
                    command = ofp.OFPMC_ADD if kind == "meter_add" else ofp.OFPMC_MODIFY
                    dp.send_msg(openflow.meter_mod(dp, op[1], command))
                elif kind in ("group_add", "group_modify"):
                    command = ofp.OFPGC_ADD if kind == "group_add" else ofp.OFPGC_MODIFY
                    dp.send_msg(openflow.group_mod(dp, op[1], command))
                elif kind == "flow_add":
                    dp.send_msg(openflow.flow_mod(dp, op[1]))
                elif kind == "flow_delete":
                    dp.send_msg(openflow.flow_delete(dp, op[1]))
                elif kind == "group_delete":
                    dp.send_msg(parser.OFPGroupMod(dp, command=ofp.OFPGC_DELETE, group_id=op[1]))
                elif kind == "meter_delete":
                    dp.send_msg(parser.OFPMeterMod(dp, command=ofp.OFPMC_DELETE, flags=0, meter_id=op[1]))
        return sum(u.changed_rules for u in updates)


class _Reading:
    """What a connecting (or audited) switch holds, as the multipart replies arrive: its
    fingerprint's cookie and rule count (`full` False), or its rules, groups and meters (`full`)."""

    def __init__(self, dp, full: bool, audit: bool = False):
        self.dp, self.full, self.audit, self.pending = dp, full, audit, set()
        self.cookies: list[int] = []
        self.flow_count = 0
        self.rules: list[compiler.Rule] = []
        self.groups: dict[int, compiler.Group] = {}
        self.meters: dict[int, compiler.Meter] = {}
