"""A switch's compiled program as text (pure): `ovs-ofctl dump-flows`-like lines, one per rule,
group and meter, sorted so that two programs diff line by line (a device's effective
configuration, and what a policy change would change)."""
from __future__ import annotations

import difflib

import netaddr

from .compiler import TABLE_CLASSIFY, TABLE_FORWARD, TABLE_POLICY, SwitchProgram
from .program import TABLE_NO_ROUTE

TABLE_NAMES = {TABLE_CLASSIFY: "classify", TABLE_POLICY: "policy", TABLE_FORWARD: "forward", TABLE_NO_ROUTE: "no-route"}


def _action(action: tuple) -> str:
    kind, *args = action
    if not args:
        return kind
    return f"{kind}:{','.join(str(a) for a in args)}"


def _value(v) -> str:
    """A masked match (value, mask) as ovs-ofctl writes it: bits in hex, an address as a prefix."""
    if isinstance(v, tuple) and len(v) == 2:
        if all(isinstance(x, int) for x in v):
            return f"{v[0]:#x}/{v[1]:#x}"
        return f"{v[0]}/{netaddr.IPAddress(v[1]).netmask_bits()}"
    return str(v)


def rule_line(rule) -> str:
    match = ",".join(f"{k}={_value(v)}" for k, v in rule.match) or "*"
    counted = f" counter={rule.counter}" if rule.counter else ""
    return (f"table={rule.table}({TABLE_NAMES.get(rule.table, '?')}) priority={rule.priority} {match}"
            f" actions={';'.join(_action(a) for a in rule.actions) or 'drop'}{counted}")


def program_lines(prog: SwitchProgram) -> list[str]:
    lines = [f"meter={m.meter_id} rate={m.rate_kbps}kbps burst={m.burst_kb}kb" for m in prog.meters.values()]
    lines += [f"group={g.group_id} type={g.kind} buckets=" + ",".join(f"watch:{w}->output:{o}" for w, o in g.buckets)
              + (f" set_eth_dst={g.set_eth_dst}" if g.set_eth_dst else "") for g in prog.groups.values()]
    rules = sorted(prog.rules, key=lambda r: (r.table, -r.priority, r.match))
    return sorted(lines) + [rule_line(r) for r in rules]


def program_diff(old: SwitchProgram, new: SwitchProgram, name: str) -> str:
    return "".join(difflib.unified_diff([line + "\n" for line in program_lines(old)],
                                        [line + "\n" for line in program_lines(new)],
                                        f"{name} (running)", f"{name} (candidate)", n=0))
