"""`egovlab verify`: the compiled OpenFlow program against the intended policy, exhaustively,
without a switch (pure: the compiler's own output, walked as Open vSwitch would run it).

From every host's port, for each IP version, the header space is cut into equivalence classes
at the boundaries the rules themselves use: every destination address a rule names, the
regions of every masked prefix, every protocol, TCP/UDP port and ICMP type a rule names, and
one representative of everything else of each kind (another port, another ICMP type, another
protocol). Packets of one class meet the same rules, so one walk answers for all of them; no
set is sampled. A walk runs the tables (first match by priority; masked matches, conntrack
states and marks, goto, meters, fast-failover groups with their watch ports' liveness under
the given faults, TAP copies, output) switch to switch until the packet is delivered, dropped
by a rule, handled by no rule (a black hole), sent round a loop, or lost at a down port. For
every delivered new connection the reply is walked back with the conntrack state the forward
packet left (modelled per switch: each Open vSwitch daemon has its own conntrack).

The result is compared class by class with `inventory.policy.Intent` (the one reading of the
scenario's flows); each difference carries the chain of rules that decided it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import netaddr

from egovlab.inventory.policy import ICMP_ECHO, Intent, covers
from egovlab.topology.model import EmulationPlan

from .program import CT_EST, CT_NEW, ETH
from .compiler import TABLE_CLASSIFY, TABLE_POLICY, Group, SwitchProgram, attachments, neighbour_table

NEW, EST = CT_NEW[0], CT_EST[0]  # the ct_state a lookup sets: the bits the rules match
ADDRESS_FIELDS = ("ipv4_src", "ipv4_dst", "ipv6_src", "ipv6_dst")
ICMP_PROTO = {4: 1, 6: 58}
ICMP_FIELD = {4: "icmpv4_type", 6: "icmpv6_type"}
ICMP_REPLY = {4: 0, 6: 129}
OTHER_ICMP = {4: 13, 6: 200}  # a timestamp request; an ICMPv6 type for private experiments
OTHER_PROTO = 132  # SCTP: a protocol no rule names
EPHEMERAL = 40000  # the reply's destination port (a client's ephemeral port)


@dataclass(frozen=True)
class RuleRef:
    switch: str
    table: int
    priority: int  # -1: no rule matched (a table miss)
    cookie: int = 0
    label: str = ""  # the switch in scenario terms (site/role)

    def text(self) -> str:
        where = f"{self.label} ({self.switch})" if self.label else self.switch
        if self.priority < 0:
            return f"{where} table {self.table}: no rule matches"
        return f"{where} table {self.table} priority {self.priority} cookie {self.cookie:#x}"


@dataclass(frozen=True)
class PortClass:
    """A class of packets by protocol and destination port (or ICMP type)."""

    proto: str  # tcp | udp | icmp | other
    number: int | None  # the port or ICMP type, None for 'other protocol'
    other: bool = False  # a representative of every port (type) no rule names

    @property
    def name(self) -> str:
        if self.proto == "other":
            return "other-protocols"
        return f"{self.proto}/{'other' if self.other else self.number}"


@dataclass
class Outcome:
    kind: str  # delivered | misdelivered | denied | black-hole | loop | controller | port-down | no-live-bucket | no-neighbour
    chain: list[RuleRef]
    host: str | None = None  # delivered to
    copies: list[str] = field(default_factory=list)  # TAP copies (switch names)
    fields: set[str] = field(default_factory=set)  # what the deciding rules looked at


class _Rule:
    __slots__ = ("tests", "actions", "ref", "priority", "fields")

    def __init__(self, rule, switch: str, label: str = ""):
        self.priority, self.actions = rule.priority, rule.actions
        self.ref = RuleRef(switch, rule.table, rule.priority, rule.cookie, label)
        tests = []
        for f, v in rule.match:
            if f in ADDRESS_FIELDS:
                if isinstance(v, tuple):
                    mask = int(netaddr.IPAddress(v[1]))
                    tests.append((f, int(netaddr.IPAddress(v[0])) & mask, mask))
                else:
                    tests.append((f, int(netaddr.IPAddress(v)), None))
            elif f == "ct_state":
                tests.append((f, v[0] & v[1], v[1]))
            elif f == "eth_dst":
                tests.append((f, str(v).lower(), None))
            else:
                tests.append((f, v, None))
        self.tests = tuple(tests)
        self.fields = frozenset(t[0] for t in tests)

    def hits(self, pkt: dict) -> bool:
        for f, want, mask in self.tests:
            have = pkt.get(f)
            if have is None:
                return False
            if mask is None:
                if have != want:
                    return False
            elif have & mask != want:
                return False
        return True


def _exact(rule: _Rule, f: str):
    return next((want for name, want, mask in rule.tests if name == f and mask is None), None)


class _Table:
    """One table's rules, indexed by the exact fields most rules name (in_port, eth_dst, the
    destination address) so that a lookup reads a handful of candidates, in priority order."""

    KEYS = ("in_port", "eth_dst", "ipv4_dst", "ipv6_dst")

    def __init__(self, rules: list[_Rule]):
        self.rules = sorted(rules, key=lambda r: -r.priority)
        self.index: dict[tuple, list[_Rule]] = {}
        for r in self.rules:
            key = tuple(_exact(r, k) for k in self.KEYS)
            self.index.setdefault(key, []).append(r)
        self.shapes = sorted({tuple(v is not None for v in key) for key in self.index})  # a fixed order

    def lookup(self, pkt: dict, counter: list[int]) -> _Rule | None:
        """The highest-priority rule that matches (on a tie, the first shape's, as a stable sort of
        all candidates would give): each shape's list is in priority order, so it is read only up
        to its first hit, and not at all once its best cannot beat what was found."""
        values = [pkt.get(k) for k in self.KEYS]
        best: _Rule | None = None
        for shape in self.shapes:
            for r in self.index.get(tuple(v if on else None for v, on in zip(values, shape)), ()):
                if best is not None and r.priority <= best.priority:
                    break
                counter[0] += 1
                if r.hits(pkt):
                    best = r
                    break
        return best


@dataclass
class _Connection:
    """What one connection leaves in each switch's conntrack (switch -> mark)."""

    marks: dict[str, int] = field(default_factory=dict)


class Walker:
    def __init__(self, plan: EmulationPlan, programs: dict[int, SwitchProgram], down: set[str] = frozenset()):
        self.plan, self.down = plan, set(down)
        by_dpid = {s.dpid: s.name for s in plan.switches.values()}
        self.labels = {s.name: s.label for s in plan.switches.values()}
        self.tables: dict[str, dict[int, _Table]] = {}
        self.groups: dict[str, dict[int, Group]] = {}
        self.meters: dict[str, set[int]] = {}
        for dpid, prog in programs.items():
            name = by_dpid[dpid]
            per: dict[int, list[_Rule]] = {}
            for rule in prog.rules:
                per.setdefault(rule.table, []).append(_Rule(rule, name, self.labels[name]))
            self.tables[name] = {t: _Table(rs) for t, rs in per.items()}
            self.groups[name], self.meters[name] = prog.groups, set(prog.meters)
        self.peer: dict[tuple[str, int], tuple[str, int]] = {}
        for link in plan.links:
            self.peer[(link.a, link.port(link.a))] = (link.b, link.port(link.b))
            self.peer[(link.b, link.port(link.b))] = (link.a, link.port(link.a))
        self.evaluations = [0]
        self.attached = attachments(plan)  # host -> (edge switch, port)
        # what the controller answers ARP and ND with: a host sends to the MAC it is given
        self.neighbours = {int(netaddr.IPAddress(ip)): mac.lower() for ip, mac in neighbour_table(plan).items()}

    def next_port(self, switch: str, pkt: dict) -> int | None:
        """The port `switch` sends `pkt` out of, arriving from the fabric, as its own tables decide
        (None: dropped, to the controller, or no live bucket)."""
        out = self._pipeline(switch, pkt, _Connection(), [], [], set())
        return None if isinstance(out, str) else out[0]

    def live(self, node: str, port: int) -> bool:
        return f"{node}-eth{port}" not in self.down

    def walk(self, switch: str, in_port: int, pkt: dict, conn: _Connection) -> Outcome:
        chain: list[RuleRef] = []
        copies: list[str] = []
        seen: set[str] = set()
        visited: set[tuple[str, int]] = set()

        def end(kind: str, host: str | None = None) -> Outcome:
            return Outcome(kind, chain, host, copies, seen)

        while True:
            if (switch, in_port) in visited:
                return end("loop")
            visited.add((switch, in_port))
            pkt = {**pkt, "in_port": in_port}
            out = self._pipeline(switch, pkt, conn, chain, copies, seen)
            if isinstance(out, str):
                return end(out)
            port, pkt = out
            peer, peer_port = self.peer.get((switch, port), (None, None))
            if not self.live(switch, port) or (peer is not None and not self.live(peer, peer_port)):
                return end("port-down")
            if peer is None:
                return end("black-hole")  # an output to a port with nothing behind it
            if peer in self.plan.hosts:
                # a host takes only frames for its own MAC
                return end("delivered", peer) if pkt.get("eth_dst") == self.plan.hosts[peer].mac.lower() \
                    else end("black-hole")
            switch, in_port = peer, peer_port

    def _pipeline(self, switch: str, pkt: dict, conn: _Connection, chain: list, copies: list, seen: set):
        table = TABLE_CLASSIFY
        tables = self.tables.get(switch, {})
        while True:
            rule = tables[table].lookup(pkt, self.evaluations) if table in tables else None
            if rule is None:
                chain.append(RuleRef(switch, table, -1, label=self.labels.get(switch, "")))
                return "black-hole"
            chain.append(rule.ref)
            seen.update(rule.fields)
            next_table, port = None, None
            for act in rule.actions:
                kind = act[0]
                if kind == "ct":
                    mark = conn.marks.get(switch)
                    pkt = {**pkt, "ct_state": NEW if mark is None else EST, "ct_mark": mark or 0}
                    next_table = act[2]
                    break
                if kind == "ct_commit":
                    if act[2] is not None or switch not in conn.marks:
                        conn.marks[switch] = act[2] or conn.marks.get(switch, 0)
                elif kind == "goto":
                    next_table = act[1]
                elif kind == "controller":
                    return "controller"
                elif kind == "set_eth_dst":
                    pkt = {**pkt, "eth_dst": act[1].lower()}
                elif kind == "group":
                    group = self.groups[switch].get(act[1])
                    if group is None:
                        return "black-hole"
                    if group.kind == "all":
                        copies.append(switch)
                        continue
                    port = next((out for watch, out in group.buckets if self.live(switch, watch)), None)
                    if port is None:
                        return "no-live-bucket"
                elif kind == "output":
                    port = act[1]
                # meters shape traffic; they do not decide (reported by `verify`)
            if port is not None:
                return port, pkt
            if next_table is None:
                return "denied"
            table = next_table


# -- header-space classes ------------------------------------------------------------------------

def _edge_rules(walker: Walker, switch: str, port: int) -> list[_Rule]:
    """The rules of the edge switch that a packet from this port can meet."""
    out = []
    for table in walker.tables.get(switch, {}).values():
        for r in table.rules:
            in_port = _exact(r, "in_port")
            if in_port is None or in_port == port:
                out.append(r)
    return out


def port_classes(rules: list[_Rule], version: int, intent_ports: frozenset[str] = frozenset()) -> list[PortClass]:
    """Classes cut at every port a rule or the intent names (a port the program forgot is a class)."""
    named: dict[str, set[int]] = {"tcp": set(), "udp": set(), "icmp": set()}
    for p in intent_ports:
        if p.proto in ("tcp", "udp"):
            named[p.proto].add(p.number)
    for r in rules:
        for f, want, _ in r.tests:
            if f == "tcp_dst":
                named["tcp"].add(want)
            elif f == "udp_dst":
                named["udp"].add(want)
            elif f == ICMP_FIELD[version]:
                named["icmp"].add(want)
    named["icmp"].add(ICMP_ECHO[version])
    out = []
    for proto in ("tcp", "udp"):
        out += [PortClass(proto, n) for n in sorted(named[proto])]
        other = next(n for n in range(1, 65536) if n not in named[proto])
        out.append(PortClass(proto, other, other=True))
    out += [PortClass("icmp", t) for t in sorted(named["icmp"])]
    out.append(PortClass("icmp", next(t for t in range(OTHER_ICMP[version], 256) if t not in named["icmp"]),
                         other=True))
    out.append(PortClass("other", None))
    return out


def address_classes(rules: list[_Rule], version: int) -> tuple[set[int], list[tuple[int, int]]]:
    """Destination addresses a rule names exactly, and the masked prefixes (network, mask)."""
    f = f"ipv{version}_dst"
    exact, masked = set(), set()
    for r in rules:
        for name, want, mask in r.tests:
            if name == f:
                (exact.add(want) if mask is None else masked.add((want, mask)))
    return exact, sorted(masked)


def _packet(version: int, src_ip: int, dst_ip: int, eth_dst: str, pc: PortClass, reply: bool = False) -> dict:
    pkt = {"eth_type": ETH[version], f"ipv{version}_src": src_ip, f"ipv{version}_dst": dst_ip, "eth_dst": eth_dst}
    if pc.proto == "tcp":
        pkt |= {"ip_proto": 6, "tcp_dst": EPHEMERAL if reply else pc.number}
    elif pc.proto == "udp":
        pkt |= {"ip_proto": 17, "udp_dst": EPHEMERAL if reply else pc.number}
    elif pc.proto == "icmp":
        icmp = ICMP_REPLY[version] if reply and pc.number == ICMP_ECHO[version] else pc.number
        pkt |= {"ip_proto": ICMP_PROTO[version], ICMP_FIELD[version]: icmp}
    else:
        pkt |= {"ip_proto": OTHER_PROTO}
    return pkt


def _intended(ports: set[str], pc: PortClass, version: int) -> bool:
    if pc.proto == "other" or pc.other:
        return "any" in ports
    return covers(ports, pc.proto, pc.number, version)


# -- the verification ------------------------------------------------------------------------------

@dataclass
class Report:
    scenario: str
    faults: list[str]
    sources: int = 0
    pairs: int = 0  # (source, destination, family) with a result
    classes: int = 0  # (source, destination class, port class, family) evaluated
    permitted: int = 0
    intended: int = 0
    differences: list[dict] = field(default_factory=list)
    black_holes: list[dict] = field(default_factory=list)
    loops: list[dict] = field(default_factory=list)
    shadowed: list[dict] = field(default_factory=list)
    meters: dict[str, int] = field(default_factory=dict)
    rule_evaluations: int = 0
    rules: int = 0
    table: list[dict] = field(default_factory=list)  # per pair: permitted and intended port classes

    @property
    def equal(self) -> bool:
        return not (self.differences or self.black_holes or self.loops)

    def summary(self) -> dict:
        return {"scenario": self.scenario, "faults": self.faults, "sources": self.sources, "pairs": self.pairs,
                "classes": self.classes, "rules": self.rules, "rule_evaluations": self.rule_evaluations,
                "permitted_classes": self.permitted, "intended_classes": self.intended,
                "differences": len(self.differences), "black_holes": len(self.black_holes),
                "loops": len(self.loops), "shadowed_rules": len(self.shadowed), "meters": self.meters,
                "equal": self.equal}

    def as_json(self) -> dict:
        return {**self.summary(), "difference_list": self.differences, "black_hole_list": self.black_holes,
                "loop_list": self.loops, "shadowed_list": self.shadowed, "pairs_table": self.table}


def _deciding(out: Outcome) -> str:
    """The rule a difference is owed to: the policy rule that let a connection in, else the
    rule (or table miss) where it stopped."""
    if out.kind == "delivered":
        return next((r.text() for r in out.chain if r.table == TABLE_POLICY), out.chain[0].text())
    return out.chain[-1].text() if out.chain else ""


def _chain(chain: list[RuleRef]) -> list[dict]:
    return [{"switch": r.switch, "label": r.label, "table": r.table, "priority": r.priority, "cookie": r.cookie}
            for r in chain]


def verify(intent: Intent, plan: EmulationPlan, programs: dict[int, SwitchProgram], down: set[str] = frozenset(),
           faults: list[str] | None = None) -> Report:
    """Walk every class from every host; compare with intent. `down`: interfaces taken down."""
    walker = Walker(plan, programs, down)
    report = Report(plan.scenario, faults or [], rules=sum(len(p.rules) for p in programs.values()))
    report.meters = {s: len(m) for s, m in walker.meters.items() if m}
    attached = walker.attached
    intent_ports = intent.named_ports()
    for src_name, (edge, port) in sorted(attached.items()):
        src = plan.hosts[src_name]
        report.sources += 1
        rules = _edge_rules(walker, edge, port)
        if src.ipv4 is not None:  # address resolution: the controller answers every ARP request
            arp = walker.walk(edge, port, {"eth_type": 0x0806, "eth_dst": "ff:ff:ff:ff:ff:ff"}, _Connection())
            if arp.kind != "controller":
                report.differences.append({"source": src.label, "destination": "*", "family": 4, "class": "arp",
                                           "intended": "to the controller", "verified": arp.kind,
                                           "outcome": arp.kind, "rule": _deciding(arp), "chain": _chain(arp.chain)})
        for v, own in ((4, src.ipv4), (6, src.ipv6)):
            if own is None:
                continue
            exact, masked = address_classes(rules, v)
            classes = port_classes(rules, v, intent_ports)
            # Addresses no rule names exactly, in the same region of every masked prefix, meet the
            # same edge rules: a decision there that looked at no destination field holds for all.
            decided: dict[tuple, Outcome] = {}
            for dst_name, dst in sorted(plan.hosts.items()):
                addr = dst.ipv4 if v == 4 else dst.ipv6
                if dst_name == src_name or addr is None or dst_name not in attached:
                    continue
                dst_ip = int(addr.ip)
                region = None if dst_ip in exact else tuple(dst_ip & m == n for n, m in masked)
                intended = intent.ports(src.label, dst.label).get(v, set())
                permitted, wanted = [], []
                for pc in classes:
                    report.classes += 1
                    out = decided.get((region, pc)) if region is not None else None
                    if out is None:
                        out = connect(walker, src_name, dst_name, v, pc)
                        if region is not None and out.kind == "denied" and not out.fields & DESTINATION_FIELDS:
                            decided[(region, pc)] = out
                    ok, want = out.kind == "delivered" and out.host == dst_name, _intended(intended, pc, v)
                    report.permitted += ok
                    report.intended += want
                    permitted += [pc.name] if ok else []
                    wanted += [pc.name] if want else []
                    row = {"source": src.label, "destination": dst.label, "family": v, "class": pc.name}
                    if out.kind.endswith("black-hole"):
                        report.black_holes.append({**row, "outcome": out.kind, "chain": _chain(out.chain)})
                    elif out.kind.endswith("loop"):
                        report.loops.append({**row, "outcome": out.kind, "chain": _chain(out.chain)})
                    if v == 6 and pc.proto == "icmp" and pc.number == ND_SOLICITATION and out.kind != "controller":
                        report.differences.append({**row, "intended": "to the controller", "verified": out.kind,
                                                   "outcome": out.kind, "chain": _chain(out.chain),
                                                   "rule": out.chain[-1].text() if out.chain else ""})
                    elif ok != want:
                        report.differences.append({**row, "intended": want, "verified": ok, "outcome": out.kind,
                                                   "rule": _deciding(out), "chain": _chain(out.chain)})
                if permitted or wanted:
                    report.pairs += 1
                    report.table.append({"source": src.label, "destination": dst.label, "family": v,
                                         "permitted": permitted, "intended": wanted})
    report.rule_evaluations = walker.evaluations[0]
    report.shadowed = shadowed_rules(walker)
    return report


DESTINATION_FIELDS = frozenset({"eth_dst", "ipv4_dst", "ipv6_dst"})
ND_SOLICITATION = 135  # must reach the controller: it answers for every planned address


def connect(walker: Walker, src: str, dst: str, v: int, pc: PortClass, held_by: str | None = None) -> Outcome:
    """A new connection of one class from src to dst, then its reply: delivered only if both arrive.
    `held_by`: the host that holds dst's address now (a standby that took it over), which must
    receive it and answers, while src still sends to the MAC it had for the address."""
    hosts, attached, neighbours = walker.plan.hosts, walker.attached, walker.neighbours
    held_by = held_by or dst
    src_ip = int((hosts[src].ipv4 if v == 4 else hosts[src].ipv6).ip)
    dst_ip = int((hosts[dst].ipv4 if v == 4 else hosts[dst].ipv6).ip)
    mac = neighbours.get(dst_ip)
    if mac is None:
        return Outcome("no-neighbour", [])
    conn = _Connection()
    fwd = walker.walk(*attached[src], _packet(v, src_ip, dst_ip, mac, pc), conn)
    if fwd.kind != "delivered" or fwd.host != held_by:
        return fwd if fwd.kind != "delivered" else Outcome("misdelivered", fwd.chain, fwd.host, fwd.copies, fwd.fields)
    back = walker.walk(*attached[held_by], _packet(v, dst_ip, src_ip, neighbours[src_ip], pc, reply=True), conn)
    if back.kind == "delivered" and back.host == src:
        return Outcome("delivered", fwd.chain + back.chain, fwd.host, fwd.copies, fwd.fields | back.fields)
    kind = "reply-misdelivered" if back.kind == "delivered" else f"reply-{back.kind}"
    return Outcome(kind, fwd.chain + back.chain, None, fwd.copies, fwd.fields | back.fields)


def shadowed_rules(walker: Walker) -> list[dict]:
    """Rules a higher-priority rule of the same table always matches first: they never match."""
    out = []
    for switch, tables in walker.tables.items():
        for t, table in tables.items():
            for key, group in table.index.items():
                # coverers of a rule: rules whose key fields are absent or equal to its own
                for r in group:
                    fields = dict((f, (w, m)) for f, w, m in r.tests)
                    for shape in table.shapes:
                        ckey = tuple(k if on else None for k, on in zip(key, shape))
                        for c in table.index.get(ckey, ()):
                            if c is r or c.priority <= r.priority:
                                continue
                            if all(_covers_test(test, fields) for test in c.tests):
                                out.append({"switch": switch, "table": t, "priority": r.priority,
                                            "cookie": r.ref.cookie, "by_priority": c.priority})
                                break
                        else:
                            continue
                        break
    return out


def _covers_test(test: tuple, fields: dict) -> bool:
    f, want, mask = test
    if f not in fields:
        return False
    have, have_mask = fields[f]
    if mask is None:
        return have_mask is None and have == want
    if have_mask is None:
        return have & mask == want
    return have_mask & mask == mask and have & mask == want


def verdicts(plan: EmulationPlan, programs: dict[int, SwitchProgram], probes: list, down: set[str] = frozenset()
             ) -> list[bool]:
    """What the program does with each probe of the matrix (`topology.probes.Probe`): the verified
    column beside intent and the measurement."""
    walker = Walker(plan, programs, down)
    out = []
    for p in probes:
        src, dst = plan.by_label[p.src_host], plan.by_label[p.dst_host]
        proto, _, number = p.port.partition("/")
        pc = PortClass("icmp", ICMP_ECHO[p.version]) if proto == "icmp" else PortClass(proto, int(number))
        result = connect(walker, src, dst, p.version, pc)
        out.append(result.kind == "delivered" and result.host == dst)
    return out


def program(sc, plan: EmulationPlan, faults: list[str] = (), reconverged: bool = False,
            known_down: frozenset[str] = frozenset()) -> tuple[dict[int, SwitchProgram], set[str]]:
    """The compiled program and the interfaces down: those the faults take down (`link-down`/
    `switch-down` targets) and `known_down` (a running lab's cuts, which its controller has
    already compiled around); the program as installed for `known_down`, or the one the
    controller installs once it has learnt of the faults too (`reconverged`)."""
    from egovlab.inventory.errors import EgovlabError
    from egovlab.topology import faults as fault_model

    from .compiler import compile_network

    down: set[str] = set(known_down)
    for target in faults:
        try:
            down |= set(fault_model.resolve(plan, "link-down", target))
        except EgovlabError:
            try:
                down |= set(fault_model.resolve(plan, "switch-down", target))
            except EgovlabError:
                raise EgovlabError(f"--fault: '{target}' is neither a link nor a switch of '{sc.name}' "
                                   f"(links: `egovlab plan FILE --view links`)") from None
    down = fault_model.with_peers(plan, down)
    return compile_network(sc, plan, down=down if reconverged else set(known_down)), down
