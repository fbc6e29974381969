"""The compiled program as plain frozen data: rules, groups and meters per switch, with the
tables, cookies and counters they use. What the controller sends, `verify` walks, the device
configs render and the tests compare."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

TABLE_CLASSIFY, TABLE_POLICY, TABLE_FORWARD = 0, 1, 2
TABLE_NO_ROUTE = 3  # never holds a rule: a route to a destination that cannot be reached goes here (a table miss)
TABLE_FINGERPRINT = 200  # no packet reaches it: one rule whose cookie names the program the switch holds
ETH = {4: 0x0800, 6: 0x86DD}  # the EtherType of each IP version

CT_ZONE = 1
# conntrack states as the rules match them, (value, mask): +trk+new, +trk+est, +trk+rel
CT_NEW, CT_EST, CT_REL = (0x21, 0x21), (0x22, 0x22), (0x24, 0x24)
# Cookies: every rule the controller installs carries COOKIE in its top bits (a connecting switch's
# rules are read back by cookie and mask); counting rules add COUNTED and their counter id, so the controller can read
# exactly those back in one flow-stats request per switch.
COOKIE = 0xE6 << 48
COOKIE_MASK = 0xFFFF << 48
COUNTED = 1 << 32
FINGERPRINT_COOKIE = 0xE7 << 48  # outside COOKIE's space: the fingerprint is not one of the program's rules
DROP_COUNTER = 1  # the counter id of table 1's default-deny rule; zone pairs count from 2


def masked(net) -> tuple[str, str] | str:
    """A prefix (netaddr.IPNetwork) as an address match the way Open vSwitch reports it back: a
    masked address (network, netmask) as os-ken spells it, a host prefix as the bare address."""
    return str(net.network) if net.size == 1 else (str(net.network), str(net.netmask))


@dataclass(frozen=True)
class Rule:
    table: int
    priority: int
    match: tuple  # sorted (field, value) pairs, OpenFlow 1.3 OXM field names as os-ken spells them
    actions: tuple  # ("output", port) | ("group", id) | ("goto", table) | ("controller",) | ("ct", ...)
    counter: int = 0  # 0, DROP_COUNTER or a zone pair's id (see zone_pairs): read back for metrics

    @staticmethod
    def make(table: int, priority: int, actions: list, counter: int = 0, **match) -> "Rule":
        return Rule(table, priority, tuple(sorted(match.items())), tuple(actions), counter)

    @property
    def cookie(self) -> int:
        return COOKIE | (COUNTED | self.counter if self.counter else 0)


@dataclass(frozen=True)
class Group:
    group_id: int
    buckets: tuple  # ((watch_port, out_port), ...) in preference order
    kind: str = "ff"  # ff: fast failover | all: a copy to every bucket (the TAP)
    set_eth_dst: str | None = None  # 'all' groups: the sensor's MAC on the copy


@dataclass(frozen=True)
class Meter:
    meter_id: int
    rate_kbps: int
    burst_kb: int


@dataclass
class SwitchProgram:
    dpid: int
    name: str
    rules: list[Rule] = field(default_factory=list)
    groups: dict[int, Group] = field(default_factory=dict)
    meters: dict[int, Meter] = field(default_factory=dict)


def fingerprint(program: SwitchProgram) -> Rule:
    """The rule that says which program a switch holds: written last, after a barrier confirmed the
    rest, in a table no packet reaches, its cookie's counter bits a digest of the rules, groups and
    meters. A controller that (re)connects and finds it, with the right number of rules, knows the
    switch holds this program without reading its tables back (the trust it asks: nothing but an
    egovlab controller writes rules with egovlab's cookies)."""
    content = repr((sorted(map(repr, program.rules)), sorted(program.groups.items()), sorted(program.meters.items())))
    digest = int.from_bytes(hashlib.blake2b(content.encode(), digest_size=4).digest(), "big")
    return Fingerprint(TABLE_FINGERPRINT, 0, (), (), counter=digest)


@dataclass(frozen=True)
class Fingerprint(Rule):
    """The fingerprint rule: its cookie carries the digest under FINGERPRINT_COOKIE, so reading or
    counting the program's rules (by COOKIE) never includes it."""

    @property
    def cookie(self) -> int:
        return FINGERPRINT_COOKIE | self.counter
