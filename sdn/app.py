"""The os-ken (Ryu API) adapter: installs the compiled rules, answers ARP/ND, follows port changes.

Thin by design: what to install comes from `compiler.compile_network`; this module only turns
rules into OpenFlow 1.3 messages. The scenario, prefix and host cap come from the launcher
(`egovlab controller`), which sets `CONFIG` before os-ken starts the app.
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

from . import compiler, metrics

CONFIG: dict = {}  # scenario, prefix, hosts_per_site, metrics_port: set by the launcher
POLL_S = 2.0  # how often the switches' counters are read for the metrics
COALESCE_S = 0.2  # port changes arriving within this window are recomputed together


class EgovlabController(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        sc = loader.load(CONFIG["scenario"])
        self.scenario = sc
        self.plan = emulation_plan(sc, prefix=CONFIG.get("prefix", "eg"), hosts_per_site=CONFIG.get("hosts_per_site"))
        self.down: set[str] = set()
        self.programs = compiler.compile_network(sc, self.plan)
        self.neighbours = compiler.neighbour_table(self.plan)
        self.datapaths: dict[int, object] = {}
        self.stats = {"installs": 0, "recomputes": 0, "reloads": 0, "failovers": 0, "takeovers": 0, "arp_answers": 0,
                      "nd_answers": 0}
        self.takeovers: dict[str, str] = {}  # host -> the standby that took over its address
        self._pending, self._reasons = False, []  # a scheduled recomputation, and what caused it
        self.installed: set[int] = set()
        # what the switches last reported: rule counts, and (packets, bytes) per counting rule
        self.counter_names = compiler.counter_names(sc, self.plan)
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

    # -- install ---------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def on_features(self, ev):
        dp = ev.msg.datapath
        self.datapaths[dp.id] = dp
        self.install(dp)

    def install(self, dp) -> None:
        """Replace everything this controller installed on the switch (re-sync: no duplicates)."""
        prog = self.programs.get(dp.id)
        if prog is None:
            self.logger.warning("egovlab: unknown switch dpid %016x", dp.id)
            return
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
        self.stats["installs"] += 1
        self.installed.add(dp.id)
        self._write_status()

    def _write_status(self) -> None:
        """Where `egovlab up --sdn` sees that every switch holds its rules."""
        d = state_dir(self.plan.prefix)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / "controller.json.tmp"
        tmp.write_text(json.dumps({"switches": len(self.programs), "installed": sorted(self.installed),
                                   "rules": sum(len(p.rules) for p in self.programs.values()),
                                   "groups": sum(len(p.groups) for p in self.programs.values()),
                                   "down": sorted(self.down), **self.stats,
                                   "metrics": f"http://127.0.0.1:{self.metrics_port}/metrics"
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
            self._gratuitous(req.src_ip, req.src_mac)
            return
        if req is not None and req.opcode == arp.ARP_REQUEST:
            mac = self.neighbours.get(req.dst_ip)
            if mac is None:
                return
            reply = packet.Packet()
            reply.add_protocol(ethernet.ethernet(ethertype=eth.ethertype, dst=eth.src, src=mac))
            reply.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=mac, src_ip=req.dst_ip,
                                       dst_mac=req.src_mac, dst_ip=req.src_ip))
            self._send(dp, in_port, reply)
            self.stats["arp_answers"] += 1
            return
        ns = pkt.get_protocol(icmpv6.icmpv6)
        ip6 = pkt.get_protocol(ipv6.ipv6)
        if ns is not None and ns.type_ == icmpv6.ND_NEIGHBOR_SOLICIT and ip6 is not None:
            target = ns.data.dst
            mac = self.neighbours.get(target)
            if mac is None:
                return
            reply = packet.Packet()
            reply.add_protocol(ethernet.ethernet(ethertype=eth.ethertype, dst=eth.src, src=mac))
            reply.add_protocol(ipv6.ipv6(src=target, dst=ip6.src, nxt=58, hop_limit=255))
            reply.add_protocol(icmpv6.icmpv6(type_=icmpv6.ND_NEIGHBOR_ADVERT, data=icmpv6.nd_neighbor(
                res=3, dst=target, option=icmpv6.nd_option_tla(hw_src=mac))))
            self._send(dp, in_port, reply)
            self.stats["nd_answers"] += 1

    def _gratuitous(self, ip: str, mac: str) -> None:
        """A host announcing an address: an address takeover if it is another host's and the
        scenario lets this host stand in for it (a standby DC's server); ignored otherwise."""
        if self.neighbours.get(ip) in (None, mac):
            return
        by_mac = {h.mac: h.name for h in self.plan.hosts.values()}
        owner = next((h.name for h in self.plan.hosts.values()
                      if ip in (str(h.ipv4.ip) if h.ipv4 else None, str(h.ipv6.ip) if h.ipv6 else None)), None)
        claimer = by_mac.get(mac)
        if owner is None or claimer is None or not compiler.takeover_allowed(self.scenario, self.plan, owner, claimer):
            self.logger.warning("egovlab: ignored a claim of %s by %s", ip, mac)
            return
        self.takeovers[owner] = claimer
        for addr, m in list(self.neighbours.items()):
            if m == self.plan.hosts[owner].mac:
                self.neighbours[addr] = mac
        self.stats["takeovers"] += 1
        self._schedule(f"{ip} taken over by {claimer}")

    def _send(self, dp, port: int, pkt) -> None:
        pkt.serialize()
        ofp, parser = dp.ofproto, dp.ofproto_parser
        dp.send_msg(parser.OFPPacketOut(dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                                        actions=[parser.OFPActionOutput(port)], data=pkt.data))

    # -- port changes: global re-optimisation after the switches' local fast failover ---------

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def on_port_status(self, ev):
        msg = ev.msg
        port = msg.desc
        ofp = msg.datapath.ofproto
        name = port.name.decode() if isinstance(port.name, bytes) else port.name
        is_down = bool(port.state & ofp.OFPPS_LINK_DOWN) or bool(port.config & ofp.OFPPC_PORT_DOWN)
        before = self._down_links()
        (self.down.add if is_down else self.down.discard)(name)
        after = self._down_links()
        if after == before:  # the other end of an already failed link, or no change
            return
        self.stats["failovers"] += len(after - before) // 2  # links newly down (two ends each)
        self._schedule(f"{name} {'down' if is_down else 'up'}")

    def _schedule(self, why: str) -> None:
        """One recomputation for a burst of changes (a DC going dark downs some 80 ports at once),
        a moment after the first: the switches' fast-failover groups carry traffic meanwhile."""
        self._reasons.append(why)
        if not self._pending:
            self._pending = True
            hub.spawn_after(COALESCE_S, self._reprogram)

    def _reprogram(self) -> None:
        """Recompile for the network as it is now and move every switch to it without a gap."""
        self._pending = False
        reasons, self._reasons = self._reasons, []
        why = ", ".join(reasons[:3]) + (f" and {len(reasons) - 3} more" if len(reasons) > 3 else "")
        t0 = time.perf_counter()
        changed_rules = self._recompile()
        self.stats["recomputes"] += 1
        self._write_status()
        self.logger.warning("egovlab: %s: recomputed, %d rule changes sent in %.2f s", why, changed_rules,
                            time.perf_counter() - t0)

    def _recompile(self) -> int:
        old = self.programs
        self.programs = compiler.compile_network(self.scenario, self.plan, down=self._down_links(),
                                                 takeovers=self.takeovers)
        return sum(self.update(dp, old[dpid], self.programs[dpid]) for dpid, dp in self.datapaths.items())

    def reload(self, source: str) -> dict:
        """A changed policy for the same network (a committed policy change, or its rollback):
        recompile and move every switch to it without a gap, as after a port change."""
        sc = loader.load(source)
        plan = emulation_plan(sc, prefix=self.plan.prefix, hosts_per_site=CONFIG.get("hosts_per_site"))
        if plan.switches != self.plan.switches or plan.hosts != self.plan.hosts or plan.links != self.plan.links:
            raise ValueError(f"{source}: changes the network itself, not only its policy: restart the lab")
        t0 = time.perf_counter()
        self.scenario = sc
        self.counter_names = compiler.counter_names(sc, self.plan)
        changed_rules = self._recompile()
        self.stats["reloads"] += 1
        self._write_status()
        seconds = time.perf_counter() - t0
        self.logger.warning("egovlab: policy from %s: %d rule changes sent in %.2f s", source, changed_rules, seconds)
        return {"changed_rules": changed_rules, "seconds": round(seconds, 3),
                "rules": sum(len(p.rules) for p in self.programs.values())}

    def update(self, dp, old: compiler.SwitchProgram, new: compiler.SwitchProgram) -> int:
        """Move a switch from one program to the next without a gap: add and modify first,
        delete what is gone last (an OFPFC_ADD of an existing match replaces it in place)."""
        ofp, parser = dp.ofproto, dp.ofproto_parser
        for gid, group in new.groups.items():
            if old.groups.get(gid) != group:
                dp.send_msg(self._group_mod(dp, group, ofp.OFPGC_MODIFY if gid in old.groups else ofp.OFPGC_ADD))
        dp.send_msg(parser.OFPBarrierRequest(dp))
        old_rules, new_rules = set(old.rules), set(new.rules)
        added = new_rules - old_rules
        for rule in added:
            dp.send_msg(self._flow_mod(dp, rule))
        kept = {(r.table, r.priority, r.match) for r in new_rules}
        removed = [r for r in old_rules - new_rules if (r.table, r.priority, r.match) not in kept]
        for rule in removed:
            dp.send_msg(parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE_STRICT, table_id=rule.table,
                                          priority=rule.priority, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                                          match=parser.OFPMatch(**dict(rule.match))))
        dp.send_msg(parser.OFPBarrierRequest(dp))
        for gid in set(old.groups) - set(new.groups):
            dp.send_msg(parser.OFPGroupMod(dp, command=ofp.OFPGC_DELETE, group_id=gid))
        return len(added) + len(removed)

    def _down_links(self) -> set[str]:
        """Both ends of a link count as down when either end is."""
        out = set(self.down)
        for link in self.plan.links:
            ends = {link.intf(link.a), link.intf(link.b)}
            if ends & self.down:
                out |= ends
        return out
