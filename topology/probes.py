"""Probes on a running lab: the reachability matrix against intent, and the failover probe.

Matrix: from one representative host of every site kind and every DC zone, to every service
(each declared TCP port and ICMP, on a server that runs it in the primary DC) and to every
zone and site kind (ICMP), over IPv4 and IPv6 where both ends have the family. A TCP port
counts as reachable when the handshake completes or is refused (a RST came back, so the path
exists); a timeout is unreachable. UDP is not probed: it has no handshake to prove a path.
Each result is compared with what the scenario's policy intends (`inventory.policy`).

Probe processes run inside the hosts' namespaces (nsenter) and carry an `egovlab-lab=PREFIX`
argument so that `egovlab down` finds them.
"""
from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from egovlab.inventory.errors import EgovlabError
from egovlab.inventory.policy import allowed, endpoint_of
from egovlab.inventory.scenario import Scenario

from .model import EmulationPlan, HostNode
from .state import read_state

PROBER = Path(__file__).with_name("prober.py")
FAILOVER_PORT = 40404
LINGER_S = 0.5  # a receiver counts this long past its senders' end: datagrams still in flight


@dataclass(frozen=True)
class Probe:
    source: str  # row label: "kind:commune" or "zone:dmz"
    target: str  # column label: "service:cong-dvc", "zone:db", "kind:district"
    src_host: str  # scenario host names
    dst_host: str
    port: str  # "tcp/443" or "icmp"
    version: int
    address: str
    intended: bool


@dataclass
class ProbeResult:
    probe: Probe
    reachable: bool
    detail: str  # open | refused | timeout | unreachable | replied | no-reply

    @property
    def differs(self) -> bool:
        return self.reachable != self.probe.intended



def representatives(sc: Scenario, plan: EmulationPlan) -> dict[str, HostNode]:
    """Row label -> the host that speaks for it: first host of each site kind, first server of each zone."""
    rows: dict[str, HostNode] = {}
    primary = next((d for d in sc.data_centres() if sc.sites[d].kind == "provincial-dc"), None)
    stages_of_kind: dict[str, set[str]] = {}
    for name, site in sc.sites.items():
        stages_of_kind.setdefault(site.kind, set()).add(sc.stages[name])
    for host in plan.hosts.values():
        kind = sc.sites[host.site].kind
        if host.zone is not None:
            if host.site == primary:
                rows.setdefault(f"zone:{host.zone}", host)
        elif host.role == "host" or kind == "national":
            # A kind whose sites are at different IPv6 stages gets a row per stage.
            stage = sc.stages[host.site]
            rows.setdefault(f"kind:{kind}" if len(stages_of_kind[kind]) == 1 else f"kind:{kind} ({stage})", host)
    return rows


def matrix_plan(sc: Scenario, plan: EmulationPlan) -> list[Probe]:
    """Every probe of the matrix, with what the policy intends for it (pure: no lab needed)."""
    rows = representatives(sc, plan)
    primary = next((d for d in sc.data_centres() if sc.sites[d].kind == "provincial-dc"), None)
    by_label = {h.label: h for h in plan.hosts.values()}
    # Columns: services on the first server that runs them where they are primarily placed.
    targets: list[tuple[str, HostNode, list[str]]] = []
    for name, svc in sc.spec.services.items():
        server = next((r for r in sc.servers() if name in r.server.runs and r.site == svc.placement.primary), None)
        if server is not None and server.name in by_label:
            tcp = [p for p in svc.ports if p.startswith("tcp/")]
            targets.append((f"service:{name}", by_label[server.name], tcp + ["icmp"]))
    for label, host in rows.items():
        if label.startswith("zone:") and host.site == primary:
            targets.append((label, host, ["icmp"]))
    kind_ports = sorted({p for f in sc.spec.policy.allow if f.ports for p in f.ports if p.proto == "tcp"
                         and any(t.kind == "kind" for t in f.to)})
    probes: list[Probe] = []
    for row, src in rows.items():
        src_ep = endpoint_of(sc, src.label)
        columns = list(targets)
        for label, host in rows.items():
            if label.startswith("kind:"):
                kind = label[5:].split(" ")[0]
                parent = sc.sites[src.site].parent
                if parent and sc.sites[parent].kind == kind:  # agency isolation: one's own district
                    host = next((h for h in plan.hosts.values() if h.site == parent and h.role == "host"), host)
                columns.append((label, host, kind_ports + ["icmp"]))
        for label, dst, ports in columns:
            if dst.name == src.name:
                continue
            dst_ep = endpoint_of(sc, dst.label)
            for version, s_addr, d_addr in ((4, src.ipv4, dst.ipv4), (6, src.ipv6, dst.ipv6)):
                if s_addr is None or d_addr is None:
                    continue
                for port in ports:
                    probes.append(Probe(row, label, src.label, dst.label, port, version, str(d_addr.ip),
                                        allowed(sc, src_ep, dst_ep, port, version)))
    return probes


def nsenter(pid: int, prefix: str, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", "-t", str(pid), "-n", "--", *argv, f"egovlab-lab={prefix}"],
                          capture_output=True, text=True, timeout=timeout)


def run_matrix(probes: list[Probe], pids: dict[str, int], by_label: dict[str, str], prefix: str,
               timeout_s: float = 2.0) -> list[ProbeResult]:
    """Run the probes: one prober process per source host, each probing all its targets at once
    (a source takes about one timeout, however many probes it has); every source at once where
    egovlab's controller answers ARP/ND, a few at a time on a fabric that floods them.

    Probes that fail are tried once more before they count as unreachable: the
    userspace datapath here can take tens of ms per hop under load, and a loaded first
    attempt must not be reported as a policy difference.
    """
    first = _run_batch(probes, pids, by_label, prefix, timeout_s)
    retry = [r.probe for r in first if not r.reachable]
    if not retry:
        return first
    again = {id(r.probe): r for r in _run_batch(retry, pids, by_label, prefix, timeout_s)}
    return [again.get(id(r.probe), r) for r in first]


FLOODING_SOURCES_AT_ONCE = 4


def sources_at_once(prefix: str, sources: int) -> int:
    """How many sources probe together. Under egovlab's own controller, which answers ARP and
    neighbour solicitations, all of them; on learning switches (or an outside controller, which
    may flood) a few: every source's first packets to each destination all at once are about a
    thousand ARP/ND floods through the province's 210 userspace bridges, and most are lost
    (measured: 1,438 of 1,480 probes failed standalone)."""
    record = read_state(prefix)
    proxied = record is not None and record.spec.own_controller
    return max(1, sources if proxied else min(sources, FLOODING_SOURCES_AT_ONCE))


def _run_batch(probes: list[Probe], pids: dict[str, int], by_label: dict[str, str], prefix: str,
               timeout_s: float) -> list[ProbeResult]:
    by_source: dict[str, list[Probe]] = {}
    for p in probes:
        by_source.setdefault(p.src_host, []).append(p)

    def one(src: str, batch: list[Probe]) -> list[ProbeResult]:
        spec = json.dumps({"timeout": timeout_s, "targets": [[p.address, p.port] for p in batch]})
        pid = pids[by_label[src]]
        proc = nsenter(pid, prefix, [sys.executable, str(PROBER), spec], timeout=60 + timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"prober in {src} failed: {proc.stderr.strip()}")
        answers = json.loads(proc.stdout)
        return [ProbeResult(p, a["reachable"], a["detail"]) for p, a in zip(batch, answers)]

    results: list[ProbeResult] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=sources_at_once(prefix, len(by_source))) as pool:
        for part in pool.map(lambda item: one(*item), by_source.items()):
            results.extend(part)
    return results


def summarize(results: list[ProbeResult]) -> dict:
    diff = [r for r in results if r.differs]
    return {
        "probes": len(results),
        "reachable": sum(r.reachable for r in results),
        "intended": sum(r.probe.intended for r in results),
        "differ": len(diff),
        "allowed_but_unreachable": sum(1 for r in diff if r.probe.intended),
        "denied_but_reachable": sum(1 for r in diff if not r.probe.intended),
        "differences": [{**asdict(r.probe), "reachable": r.reachable, "detail": r.detail} for r in diff],
        "results": [{**asdict(r.probe), "reachable": r.reachable, "detail": r.detail} for r in results],
    }


def cell(results: list[ProbeResult]) -> str:
    """A matrix cell: per IP version ✓ (all probes reach), ✗ (none), ~ (some); '!' where any differs."""
    parts = []
    for version in (4, 6):
        mine = [r for r in results if r.probe.version == version]
        if not mine:
            continue
        ok = sum(r.reachable for r in mine)
        mark = "✓" if ok == len(mine) else "✗" if ok == 0 else "~"
        parts.append(f"{version}{mark}{'!' if any(r.differs for r in mine) else ''}")
    return " ".join(parts)


# -- failover probe ------------------------------------------------------------------------

@dataclass
class FailoverResult:
    link: str
    source: str
    destination: str
    address: str
    interval_ms: float
    sent: int
    received: int
    lost: int
    outage_ms: float  # the longest silence around the cut, minus one interval
    cut_at: float  # UNIX time of the fault
    first_loss_after_cut_ms: float | None


def analyse(received: list[tuple[int, float]], count: int, interval_s: float, cut_at: float) -> dict:
    """Outage window and losses from (seq, send time) pairs (pure)."""
    seqs = sorted({seq for seq, _ in received})
    lost = count - len(seqs)
    gaps = [(b - a - 1, a, b) for a, b in zip(seqs, seqs[1:]) if b - a > 1]
    if seqs and seqs[0] > 0:
        gaps.append((seqs[0], -1, seqs[0]))
    if seqs and seqs[-1] < count - 1:
        gaps.append((count - 1 - seqs[-1], seqs[-1], count))
    if not seqs:
        gaps.append((count, -1, count))
    worst = max(gaps, default=(0, 0, 0))
    outage_ms = worst[0] * interval_s * 1000
    send_times = dict(received)
    first_loss = None
    if gaps:
        before = send_times.get(worst[1])
        if before is not None:
            first_loss = (before + interval_s - cut_at) * 1000
    return {"lost": lost, "received": len(seqs), "outage_ms": outage_ms, "first_loss_after_cut_ms": first_loss}


def failover_pair(sc: Scenario, plan: EmulationPlan, link: str) -> tuple[str, str, int]:
    """A host behind the link's first site, and a server in the primary DC that the policy lets
    it reach over UDP (the probe's protocol), with that port; any DC server if none is allowed."""
    target = next((l for l in sc.links if l.name == link), None)
    if target is None:
        raise EgovlabError(f"unknown link '{link}'")
    src = next((h.label for h in plan.hosts.values() if h.site == target.a and h.ipv4), None)
    if src is None:
        raise EgovlabError(f"no IPv4 host behind '{target.a}' to probe link '{link}' from")
    dc = next(d for d in sc.data_centres() if sc.sites[d].kind == "provincial-dc")
    servers = [h for h in plan.hosts.values() if h.site == dc and h.zone]
    src_ep = endpoint_of(sc, src)
    for h in servers:
        for svc in endpoint_of(sc, h.label).services:
            for port in sc.spec.services[svc].ports:
                if port.startswith("udp/") and allowed(sc, src_ep, endpoint_of(sc, h.label), port, 4):
                    return src, h.label, int(port[4:])
    return src, servers[0].label, FAILOVER_PORT


def receiver_spec(version: int, port: int, seconds: float) -> dict:
    """A datagram receiver's arguments (prober.receive): it counts until its senders are done
    (the parent closes its stdin) and LINGER_S more; a cap far past the senders' `seconds`."""
    return {"bind": "::" if version == 6 else "0.0.0.0", "port": port, "linger": LINGER_S, "seconds": seconds + 60}


def failover_probe(plan: EmulationPlan, pids: dict[str, int], link: str, src: str, dst: str,
                   version: int = 4, interval_ms: float = 1.0, seconds: float = 4.0, cut_after: float = 1.5,
                   restore: bool = True, port: int = FAILOVER_PORT) -> FailoverResult:
    """Send timestamped datagrams every `interval_ms` from src to dst; cut `link` after `cut_after` s."""
    import time as _time

    from . import faults

    s_node, d_node = plan.hosts[plan.node(src)], plan.hosts[plan.node(dst)]
    d_addr = d_node.ipv4 if version == 4 else d_node.ipv6
    if d_addr is None or (s_node.ipv4 if version == 4 else s_node.ipv6) is None:
        raise ValueError(f"{src} -> {dst} has no IPv{version} path (IPv6 rollout stage)")
    faults.resolve(plan, "link-down", link)  # fail on a bad link name before sending anything
    count = int(seconds * 1000 / interval_ms)
    base = ["nsenter", "-t"]
    rx = subprocess.Popen([*base, str(pids[d_node.name]), "-n", "--", sys.executable, str(PROBER), "receive",
                           json.dumps(receiver_spec(version, port, seconds)), f"egovlab-lab={plan.prefix}"],
                          stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        assert rx.stdout.readline().strip() == "ready"
        tx = subprocess.Popen([*base, str(pids[s_node.name]), "-n", "--", sys.executable, str(PROBER), "send",
                               json.dumps({"to": str(d_addr.ip), "port": port, "interval": interval_ms / 1000,
                                           "count": count}), f"egovlab-lab={plan.prefix}"],
                              stdout=subprocess.PIPE, text=True)
        _time.sleep(cut_after)
        record = faults.inject(plan, "link-down", link)
        sent = json.loads(tx.communicate(timeout=seconds + 30)[0])
        received = [(seq, sent) for seq, sent, *_ in json.loads(rx.communicate(timeout=30)[0])]
    finally:
        for proc in (rx,) + ((tx,) if "tx" in locals() else ()):
            if proc.poll() is None:
                proc.kill()
        if restore and "record" in locals():
            faults.inject(plan, "link-up", link)
    stats = analyse(received, count, interval_ms / 1000, record.time)
    return FailoverResult(link, src, dst, str(d_addr.ip), interval_ms, sent["sent"], stats["received"],
                          stats["lost"], stats["outage_ms"], record.time, stats["first_loss_after_cut_ms"])


# -- probe trains ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Train:
    src: str  # scenario host names
    dst: str
    port: int  # a UDP port the policy lets through from src to dst
    version: int = 4


@dataclass
class TrainResult:
    train: Train
    sent: int
    received: int
    lost: int
    outage_ms: float  # the longest silence, by sequence or by arrival, minus one interval (0: a steady flow)


def silence_ms(arrivals: list[float], interval_s: float) -> float:
    """The longest time between two arrivals, minus one interval (pure). Counting by sequence
    numbers alone misses a stall whose datagrams were held and delivered late: a host whose link
    lost its carrier queues them behind its ARP resolution and sends them all once it is back."""
    times = sorted(arrivals)
    return round(max((max(0.0, b - a - interval_s) for a, b in zip(times, times[1:])), default=0.0) * 1000, 1)


class Trains:
    """UDP datagram trains on several pairs at once, every `interval_ms` for `seconds`, as the
    failover probe sends them (one receiver per destination and port, which tells the senders
    apart by address): what a soak runs across a fault to see which flows stalled and for how
    long. A context manager: whatever happens, no sender or receiver is left running."""

    def __init__(self, plan: EmulationPlan, pids: dict[str, int], trains: list[Train], *, interval_ms: float = 10.0,
                 seconds: float = 5.0):
        self.plan, self.pids, self.trains, self.interval_s = plan, pids, trains, interval_ms / 1000
        self.count = int(seconds / self.interval_s)
        self.procs: list[subprocess.Popen] = []
        self.receivers: dict[tuple[str, int, int], subprocess.Popen] = {}
        self.senders: dict[Train, subprocess.Popen] = {}
        self.seconds = seconds

    def _spawn(self, host: str, mode: str, spec: dict) -> subprocess.Popen:
        node = self.plan.hosts[self.plan.node(host)]
        proc = subprocess.Popen(["nsenter", "-t", str(self.pids[node.name]), "-n", "--", sys.executable, str(PROBER),
                                 mode, json.dumps(spec), f"egovlab-lab={self.plan.prefix}"], stdout=subprocess.PIPE,
                                stdin=subprocess.PIPE if mode == "receive" else subprocess.DEVNULL, text=True)
        self.procs.append(proc)
        return proc

    def address(self, host: str, version: int) -> str:
        h = self.plan.hosts[self.plan.node(host)]
        addr = h.ipv4 if version == 4 else h.ipv6
        if addr is None:
            raise ValueError(f"{host} has no IPv{version} address")
        return str(addr.ip)

    def start(self) -> "Trains":
        for t in self.trains:
            key = (t.dst, t.port, t.version)
            if key not in self.receivers:
                self.receivers[key] = self._spawn(t.dst, "receive", receiver_spec(t.version, t.port, self.seconds))
        for rx in self.receivers.values():
            if rx.stdout.readline().strip() != "ready":
                raise RuntimeError("a train's receiver did not start")
        for t in self.trains:
            self.senders[t] = self._spawn(t.src, "send", {"to": self.address(t.dst, t.version), "port": t.port,
                                                          "interval": self.interval_s, "count": self.count})
        return self

    def results(self) -> list[TrainResult]:
        """Once every train has run its course (the receivers stop once every sender has)."""
        sent = {t: json.loads(p.communicate(timeout=self.seconds + 30)[0])["sent"] for t, p in self.senders.items()}
        got = {key: json.loads(p.communicate(timeout=30)[0]) for key, p in self.receivers.items()}
        out = []
        for t in self.trains:
            source = self.address(t.src, t.version)
            mine = [(seq, at, arrived) for seq, at, peer, arrived in got[(t.dst, t.port, t.version)] if peer == source]
            stats = analyse([(seq, at) for seq, at, _ in mine], self.count, self.interval_s, cut_at=0.0)
            outage = max(stats["outage_ms"], silence_ms([arrived for *_, arrived in mine], self.interval_s))
            out.append(TrainResult(t, sent[t], stats["received"], stats["lost"], outage))
        return out

    def __enter__(self) -> "Trains":
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
