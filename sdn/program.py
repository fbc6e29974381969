"""The compiled program as plain frozen data: rules, groups and meters per switch, with the
tables, cookies and counters they use. What the controller sends, `verify` walks, the device
configs render and the tests compare."""
from __future__ import annotations

from dataclasses import dataclass, field

TABLE_CLASSIFY, TABLE_POLICY, TABLE_FORWARD = 0, 1, 2
TABLE_NO_ROUTE = 3  # never holds a rule: a route to a destination that cannot be reached goes here (a table miss)
ETH = {4: 0x0800, 6: 0x86DD}  # the EtherType of each IP version


def masked(net) -> tuple[str, str]:
    """A prefix (netaddr.IPNetwork) as a masked address match, (network, netmask), as os-ken takes it."""
    return str(net.network), str(net.netmask)
CT_ZONE = 1
# conntrack states as the rules match them, (value, mask): +trk+new, +trk+est, +trk+rel
CT_NEW, CT_EST, CT_REL = (0x21, 0x21), (0x22, 0x22), (0x24, 0x24)
# Cookies: every rule the controller installs carries COOKIE in its top bits (re-sync deletes by
# cookie and mask); counting rules add COUNTED and their counter id, so the controller can read
# exactly those back in one flow-stats request per switch.
COOKIE = 0xE6 << 48
COOKIE_MASK = 0xFFFF << 48
COUNTED = 1 << 32
DROP_COUNTER = 1  # the counter id of table 1's default-deny rule; zone pairs count from 2


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
