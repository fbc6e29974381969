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
from egovlab.topology.model import emulation_plan
from egovlab.topology.state import state_dir

from . import compiler, core, metrics

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
        dp = ev.msg.datapath
        self.datapaths[dp.id] = dp
        self.install(dp)

    def install(self, dp) -> None:
        """Replace everything this controller installed on the switch (re-sync: no duplicates)."""
        installs = self.core.switch_up(dp.id)
        if not installs:
            self.logger.warning("egovlab: unknown switch dpid %016x", dp.id)
            return
        for install in installs:
            self._send_install(dp, install.program)
        self._write_status()

    def _send_install(self, dp, prog: compiler.SwitchProgram) -> None:
        ofp, parser = dp.ofproto, dp.ofproto_parser
        dp.send_msg(parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL, out_port=ofp.OFPP_ANY,
                                      out_group=ofp.OFPG_ANY, cookie=compiler.COOKIE,
                                      cookie_mask=compiler.COOKIE_MASK, match=parser.OFPMatch()))
        dp.send_msg(parser.OFPGroupMod(dp, command=ofp.OFPGC_DELETE, group_id=ofp.OFPG_ALL))
        dp.send_msg(parser.OFPBarrierRequest(dp))
        dp.send_msg(parser.OFPMeterMod(dp, command=ofp.OFPMC_DELETE, flags=0, meter_id=ofp.OFPM_ALL))
        for meter in prog.meters.values():
            dp.send_msg(self._meter_mod(dp, meter, ofp.OFPMC_ADD))
        for group in prog.groups.values():
            dp.send_msg(self._group_mod(dp, group, ofp.OFPGC_ADD))
        dp.send_msg(parser.OFPBarrierRequest(dp))
        for rule in prog.rules:
            dp.send_msg(self._flow_mod(dp, rule))
        dp.send_msg(parser.OFPBarrierRequest(dp))

    def _write_status(self) -> None:
        """Where `egovlab up --sdn` sees that every switch holds its rules."""
        d = state_dir(self.plan.prefix)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / "controller.json.tmp"
        tmp.write_text(json.dumps({**self.core.status(), "metrics": f"http://127.0.0.1:{self.metrics_port}/metrics"
                                   if self.metrics_port else None}))
        tmp.replace(d / "controller.json")

    def _group_mod(self, dp, group: compiler.Group, command: int):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        if group.kind == "all":  # the TAP: a copy, re-addressed to the sensor, out of the SOC port
            buckets = [parser.OFPBucket(watch_port=ofp.OFPP_ANY, watch_group=ofp.OFPG_ANY,
                                        actions=[parser.OFPActionSetField(eth_dst=group.set_eth_dst),
                                                 parser.OFPActionOutput(out)]) for _, out in group.buckets]
            return parser.OFPGroupMod(dp, command=command, type_=ofp.OFPGT_ALL, group_id=group.group_id,
                                      buckets=buckets)
        buckets = [parser.OFPBucket(watch_port=watch, watch_group=ofp.OFPG_ANY, actions=[parser.OFPActionOutput(out)])
                   for watch, out in group.buckets]
        return parser.OFPGroupMod(dp, command=command, type_=ofp.OFPGT_FF, group_id=group.group_id, buckets=buckets)

    def _meter_mod(self, dp, meter: compiler.Meter, command: int):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        band = parser.OFPMeterBandDrop(rate=meter.rate_kbps, burst_size=meter.burst_kb)
        return parser.OFPMeterMod(dp, command=command, flags=ofp.OFPMF_KBPS | ofp.OFPMF_BURST,
                                  meter_id=meter.meter_id, bands=[band])

    def _flow_mod(self, dp, rule: compiler.Rule):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        actions, instructions = [], []
        for act in rule.actions:
            kind = act[0]
            if kind == "output":
                actions.append(parser.OFPActionOutput(act[1]))
            elif kind == "group":
                actions.append(parser.OFPActionGroup(act[1]))
            elif kind == "controller":
                actions.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER))
            elif kind == "ct":  # conntrack lookup, then continue in table act[2]
                actions.append(parser.NXActionCT(flags=0, zone_src="", zone_ofs_nbits=act[1],
                                                 recirc_table=act[2], alg=0, actions=[]))
            elif kind == "ct_commit":  # commit, marking the connection with its zone pair (None: keep)
                mark = [] if act[2] is None else [parser.OFPActionSetField(ct_mark=act[2])]
                actions.append(parser.NXActionCT(flags=1, zone_src="", zone_ofs_nbits=act[1], recirc_table=255,
                                                 alg=0, actions=mark))
            elif kind == "set_eth_dst":
                actions.append(parser.OFPActionSetField(eth_dst=act[1]))
            elif kind == "goto":
                instructions.append(parser.OFPInstructionGotoTable(act[1]))
            elif kind == "meter":
                instructions.append(parser.OFPInstructionMeter(act[1], ofp.OFPIT_METER))
        if actions:
            instructions.insert(0, parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
        return parser.OFPFlowMod(dp, cookie=rule.cookie, table_id=rule.table, priority=rule.priority,
                                 match=parser.OFPMatch(**dict(rule.match)), instructions=instructions)

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

    @set_ev_cls(ofp_event.EventOFPAggregateStatsReply, MAIN_DISPATCHER)
    def on_aggregate_stats(self, ev):
        self.flow_counts[ev.msg.datapath.id] = ev.msg.body.flow_count

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def on_flow_stats(self, ev):
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
        if ns is not None and ns.type_ == icmpv6.ND_NEIGHBOR_SOLICIT and ip6 is not None:
            target = ns.data.dst
            mac = self.core.neighbour(target, "nd")
            if mac is None:
                return
            reply = packet.Packet()
            reply.add_protocol(ethernet.ethernet(ethertype=eth.ethertype, dst=eth.src, src=mac))
            reply.add_protocol(ipv6.ipv6(src=target, dst=ip6.src, nxt=58, hop_limit=255))
            reply.add_protocol(icmpv6.icmpv6(type_=icmpv6.ND_NEIGHBOR_ADVERT, data=icmpv6.nd_neighbor(
                res=3, dst=target, option=icmpv6.nd_option_tla(hw_src=mac))))
            self._send(dp, in_port, reply)

    def _send(self, dp, port: int, pkt) -> None:
        pkt.serialize()
        ofp, parser = dp.ofproto, dp.ofproto_parser
        dp.send_msg(parser.OFPPacketOut(dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                                        actions=[parser.OFPActionOutput(port)], data=pkt.data))

    # -- port changes: global re-optimisation after the switches' local fast failover ---------

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def on_port_status(self, ev):
        msg = ev.msg
        port, ofp = msg.desc, msg.datapath.ofproto
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
                elif kind in ("group_add", "group_modify"):
                    command = ofp.OFPGC_ADD if kind == "group_add" else ofp.OFPGC_MODIFY
                    dp.send_msg(self._group_mod(dp, op[1], command))
                elif kind == "flow_add":
                    dp.send_msg(self._flow_mod(dp, op[1]))
                elif kind == "flow_delete":
                    rule = op[1]
                    dp.send_msg(parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE_STRICT, table_id=rule.table,
                                                  priority=rule.priority, out_port=ofp.OFPP_ANY,
                                                  out_group=ofp.OFPG_ANY, match=parser.OFPMatch(**dict(rule.match))))
                elif kind == "group_delete":
                    dp.send_msg(parser.OFPGroupMod(dp, command=ofp.OFPGC_DELETE, group_id=op[1]))
        return sum(u.changed_rules for u in updates)
