"""The compiled program as OpenFlow 1.3 messages (os-ken), both ways: the flow, group and meter
mods the controller sends, and the reverse, a switch's flow, group and meter tables read back
into the same plain data, so a controller that (re)connects sends only what differs (a warm
start, as Faucet does) instead of wiping tables the switch forwards with.

`rule_of(flow_mod(r)) == r` for every rule the compiler makes (tests/test_openflow.py, through
os-ken's own encoding): the compiled form is the one Open vSwitch reports back.
"""
from __future__ import annotations

from .program import COUNTED, Group, Meter, Rule


def flow_mod(dp, rule: Rule):
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
        elif kind == "ct":  # conntrack lookup in zone act[1], then continue in table act[2]
            actions.append(parser.NXActionCT(flags=0, zone_src="", zone_ofs_nbits=act[1],
                                             recirc_table=act[2], alg=0, actions=[]))
        elif kind == "ct_commit":  # commit, marking the connection with its zone pair (None: keep)
            mark = [] if act[2] is None else [parser.OFPActionSetField(ct_mark=act[2])]
            actions.append(parser.NXActionCT(flags=1, zone_src="", zone_ofs_nbits=act[1], recirc_table=ofp.OFPTT_ALL,
                                             alg=0, actions=mark))
        elif kind == "set_eth_dst":
            actions.append(parser.OFPActionSetField(eth_dst=act[1]))
        elif kind == "goto":
            instructions.append(parser.OFPInstructionGotoTable(act[1]))
        elif kind == "meter":
            instructions.append(parser.OFPInstructionMeter(act[1], ofp.OFPIT_METER))
        else:
            raise ValueError(f"no OpenFlow encoding for action {act!r}")
    if actions:
        instructions.insert(0, parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
    return parser.OFPFlowMod(dp, cookie=rule.cookie, table_id=rule.table, priority=rule.priority,
                             match=parser.OFPMatch(**dict(rule.match)), instructions=instructions)


def flow_delete(dp, rule: Rule):
    """Delete exactly this rule (its table, priority and match)."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE_STRICT, table_id=rule.table, priority=rule.priority,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=parser.OFPMatch(**dict(rule.match)))


def group_mod(dp, group: Group, command: int):
    ofp, parser = dp.ofproto, dp.ofproto_parser
    if group.kind == "all":  # the TAP: a copy, re-addressed to the sensor, out of the SOC port
        buckets = [parser.OFPBucket(watch_port=ofp.OFPP_ANY, watch_group=ofp.OFPG_ANY,
                                    actions=[parser.OFPActionSetField(eth_dst=group.set_eth_dst),
                                             parser.OFPActionOutput(out)]) for _, out in group.buckets]
        return parser.OFPGroupMod(dp, command=command, type_=ofp.OFPGT_ALL, group_id=group.group_id, buckets=buckets)
    buckets = [parser.OFPBucket(watch_port=watch, watch_group=ofp.OFPG_ANY, actions=[parser.OFPActionOutput(out)])
               for watch, out in group.buckets]
    return parser.OFPGroupMod(dp, command=command, type_=ofp.OFPGT_FF, group_id=group.group_id, buckets=buckets)


def meter_mod(dp, meter: Meter, command: int):
    ofp, parser = dp.ofproto, dp.ofproto_parser
    band = parser.OFPMeterBandDrop(rate=meter.rate_kbps, burst_size=meter.burst_kb)
    return parser.OFPMeterMod(dp, command=command, flags=ofp.OFPMF_KBPS | ofp.OFPMF_BURST,
                              meter_id=meter.meter_id, bands=[band])


# -- reading a switch's tables back -----------------------------------------------------------

def rule_of(stat, ofp) -> Rule:
    """A flow-stats entry (OFPFlowStats) as the Rule that makes it."""
    meter, applied, goto = [], [], []
    for inst in stat.instructions:
        if inst.type == ofp.OFPIT_METER:
            meter.append(("meter", inst.meter_id))
        elif inst.type == ofp.OFPIT_APPLY_ACTIONS:
            applied += [_action(a, ofp) for a in inst.actions]
        elif inst.type == ofp.OFPIT_GOTO_TABLE:
            goto.append(("goto", inst.table_id))
        else:
            applied.append(("unknown-instruction", inst.type))  # never equal to a compiled rule: replaced
    counter = stat.cookie & 0xFFFFFFFF if stat.cookie & COUNTED else 0
    # the order OpenFlow executes instructions in, which is the order the compiler writes them
    return Rule(stat.table_id, stat.priority, tuple(sorted(stat.match.items())), tuple(meter + applied + goto), counter)


def _action(a, ofp) -> tuple:
    name = type(a).__name__
    if name == "OFPActionOutput":
        return ("controller",) if a.port == ofp.OFPP_CONTROLLER else ("output", a.port)
    if name == "OFPActionGroup":
        return "group", a.group_id
    if name == "OFPActionSetField" and a.key == "eth_dst":
        return "set_eth_dst", a.value
    if name == "NXActionCT" and not a.flags & 1 and not a.actions:
        return "ct", a.zone_ofs_nbits, a.recirc_table
    if name == "NXActionCT" and a.flags & 1:
        marks = [x.value for x in a.actions if type(x).__name__ == "OFPActionSetField" and x.key == "ct_mark"]
        return "ct_commit", a.zone_ofs_nbits, marks[0] if marks else None
    return "unknown-action", name  # not egovlab's: the rule differs from any compiled one and is replaced


def group_of(desc, ofp) -> Group:
    """A group-description entry (OFPGroupDescStats) as the Group that makes it."""
    if desc.type == ofp.OFPGT_ALL:
        outs = [[a for a in b.actions if type(a).__name__ == "OFPActionOutput"] for b in desc.buckets]
        macs = {a.value for b in desc.buckets for a in b.actions
                if type(a).__name__ == "OFPActionSetField" and a.key == "eth_dst"}
        return Group(desc.group_id, tuple((0, o[0].port) for o in outs if o), kind="all",
                     set_eth_dst=macs.pop() if len(macs) == 1 else None)
    buckets = tuple((b.watch_port, b.actions[0].port) for b in desc.buckets
                    if len(b.actions) == 1 and type(b.actions[0]).__name__ == "OFPActionOutput")
    return Group(desc.group_id, buckets, kind="ff" if desc.type == ofp.OFPGT_FF else f"type-{desc.type}")


def meter_of(config) -> Meter:
    """A meter-configuration entry (OFPMeterConfigStats) as the Meter that makes it."""
    band = config.bands[0] if config.bands else None
    return Meter(config.meter_id, band.rate if band else 0, band.burst_size if band else 0)
