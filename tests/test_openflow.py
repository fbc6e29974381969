"""The program as OpenFlow messages and back (sdn/openflow.py), through os-ken's own encoding:
what the controller reads from a connecting switch must equal what it compiled, or a warm start
would replace (or delete) rules that are already right."""
from __future__ import annotations

import struct

import netaddr
import pytest
from os_ken.ofproto import ofproto_parser, ofproto_protocol, ofproto_v1_3
from os_ken.ofproto import ofproto_v1_3_parser as parser

from egovlab.inventory import loader
from egovlab.sdn import compiler, openflow, program
from egovlab.topology.model import emulation_plan

from .conftest import SCENARIOS

DP = ofproto_protocol.ProtocolDesc(ofproto_v1_3.OFP_VERSION)
OFP = ofproto_v1_3


def _wire(msg):
    """A flow mod as the switch reads it: serialized, then decoded by os-ken."""
    msg.serialize()
    return ofproto_parser.msg(DP, *ofproto_parser.header(msg.buf), msg.buf)


def _described(mod):
    """A group mod as the switch describes the group back (a group-desc entry), through os-ken:
    the same type, id and serialized buckets behind a group-desc header."""
    mod.serialize()
    buckets = bytes(mod.buf[OFP.OFP_GROUP_MOD_SIZE:])
    entry = struct.pack("!HBxI", OFP.OFP_GROUP_DESC_STATS_SIZE + len(buckets), mod.type, mod.group_id) + buckets
    return parser.OFPGroupDescStats.parser(entry, 0)


def _configured(mod):
    """A meter mod as the switch reports its configuration back (a meter-config entry)."""
    mod.serialize()
    bands = bytes(mod.buf[OFP.OFP_METER_MOD_SIZE:])
    entry = struct.pack("!HHI", OFP.OFP_METER_CONFIG_SIZE + len(bands), mod.flags, mod.meter_id) + bands
    return parser.OFPMeterConfigStats.parser(entry, 0)


@pytest.mark.parametrize("scenario", ["dongthap", SCENARIOS / "small-dc.yml", SCENARIOS / "wan.yml"])
def test_every_compiled_rule_group_and_meter_reads_back_as_itself(scenario):
    sc = loader.load(scenario)
    programs = compiler.compile_network(sc, emulation_plan(sc))
    seen = set()
    for prog in programs.values():
        for rule in prog.rules:
            assert openflow.rule_of(_wire(openflow.flow_mod(DP, rule)), OFP) == rule
            seen |= {a[0] for a in rule.actions}
        for group in prog.groups.values():
            assert openflow.group_of(_described(openflow.group_mod(DP, group, OFP.OFPGC_ADD)), OFP) == group
            seen.add(f"group-{group.kind}")
        for meter in prog.meters.values():
            assert openflow.meter_of(_configured(openflow.meter_mod(DP, meter, OFP.OFPMC_ADD))) == meter
            seen.add("meter-band")
    if scenario == "dongthap":  # every kind of action and group the compiler makes was read back
        assert seen >= {"output", "group", "goto", "meter", "ct", "ct_commit", "controller", "group-ff",
                        "group-all", "meter-band"}


def test_a_host_prefix_is_matched_as_the_bare_address_open_vswitch_reports():
    assert program.masked(netaddr.IPNetwork("198.18.0.7/32")) == "198.18.0.7"
    assert program.masked(netaddr.IPNetwork("2001:db8::/48")) == ("2001:db8::", "ffff:ffff:ffff::")


def test_an_action_egovlab_never_writes_reads_back_as_a_rule_no_compiled_one_equals():
    mod = parser.OFPFlowMod(DP, cookie=compiler.COOKIE, table_id=2, priority=5, match=parser.OFPMatch(in_port=1),
                            instructions=[parser.OFPInstructionActions(OFP.OFPIT_APPLY_ACTIONS,
                                                                       [parser.OFPActionPopVlan()])])
    rule = openflow.rule_of(_wire(mod), OFP)
    assert rule.actions == (("unknown-action", "OFPActionPopVlan"),)
    with pytest.raises(ValueError, match="no OpenFlow encoding"):
        openflow.flow_mod(DP, rule)


def test_the_fingerprint_names_the_program_not_its_order_and_is_none_of_its_rules():
    sc = loader.load(SCENARIOS / "small-dc.yml")
    prog = next(iter(compiler.compile_network(sc, emulation_plan(sc)).values()))
    fp = program.fingerprint(prog)
    mod = _wire(openflow.flow_mod(DP, fp))  # a rule that drops, in a table no packet reaches
    assert (mod.cookie, mod.table_id, mod.instructions) == (fp.cookie, program.TABLE_FINGERPRINT, [])
    assert mod.cookie & compiler.COOKIE_MASK != compiler.COOKIE  # never read or counted as a program rule
    reordered = compiler.SwitchProgram(prog.dpid, prog.name, prog.rules[::-1], prog.groups, prog.meters)
    assert program.fingerprint(reordered) == fp
    changed = compiler.SwitchProgram(prog.dpid, prog.name, prog.rules[1:], prog.groups, prog.meters)
    assert program.fingerprint(changed) != fp
