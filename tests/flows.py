"""A reference reading of one OpenFlow table for tests: the highest-priority rule whose every
field matches the packet (masked addresses as prefixes), independent of `sdn.verify`'s indexed one."""
from __future__ import annotations

import netaddr


def lookup(prog, table: int, pkt: dict):
    def hit(field, want) -> bool:
        have = pkt.get(field)
        if isinstance(want, tuple) and field.startswith("ipv"):
            return have is not None and netaddr.IPAddress(have) in netaddr.IPNetwork(f"{want[0]}/{want[1]}")
        return have == want
    rules = [r for r in prog.rules if r.table == table and all(hit(f, v) for f, v in r.match)]
    return max(rules, key=lambda r: r.priority, default=None)
