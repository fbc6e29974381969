"""The fault soak: many faults of every kind in a row, on a lab with the services deployed and
citizens submitting the whole time; after each one, its repair, and then the checks an operator
needs to trust the next one:

- the flows outside the fault's cut set never lost a datagram (UDP probe trains across the
  fault, on flows the model says it leaves alone; flows it moves give the fault's outage);
- the intent matrix is back (every probe of `egovlab probe matrix` as the policy intends);
- the switches hold exactly the compiled program (the controller reads every switch back, and
  its program is what the pure compiler makes of the intact network);
- no acknowledged submission was lost (each citizen's acknowledged ids are in the primary).

Kinds: a redundant link cut, the same link flapping, a switch down, a site isolated, the
controller killed and restarted, one Open vSwitch daemon killed and restarted (a lab over
several daemons), an Internet line cut, and the provincial DC dark followed by the failback
(the drill and the failback, measured as those are).

`draw` is pure (the faults from a seed); `Soak` drives a lab that is up, in the process that
owns it (it restarts its controller): `egovlab soak` brings its own, tests use theirs.
"""
from __future__ import annotations

import os
import random
import signal
import statistics
import time
from dataclasses import asdict, dataclass, field

from egovlab.inventory.scenario import Scenario
from egovlab.sdn import compiler, launcher, program
from egovlab.sdn.resilience import FAULT_OF_KIND, Effect, Failure, single
from egovlab.services import drill, failback
from egovlab.services.placement import Deployment
from egovlab.suites.runner import LabHandle, Runner
from egovlab.topology import faults, probes
from egovlab.topology.model import EmulationPlan, shard_assignment
from egovlab.topology.state import LabError

KINDS = ("link-cut", "link-flap", "switch-down", "site-isolated", "controller-restart", "ovs-restart",
         "internet-line-cut", "dc-dark")
ISOLATED_KINDS = ("department", "district", "commune", "public-service-centre")
# the kinds a lab fault makes and repairs: the model's failure kind of each (resilience.single)
MODEL_KIND = {"link-cut": "link", "link-flap": "link", "internet-line-cut": "link", "switch-down": "switch",
              "site-isolated": "site"}
LEAD_S = 0.5  # trains and citizens run this long before each fault
SETTLE_S = 2.0  # ... and this long after its repair
FLAPS, FLAP_S = 3, 0.3
SAMPLE = {"alone": 6, "moved": 4, "lost": 2}  # probe trains per fault, by what the model predicts
TRAIN_INTERVAL_MS = 10.0


@dataclass(frozen=True)
class Fault:
    kind: str
    target: str


def candidates(sc: Scenario, plan: EmulationPlan, model, *, shards: int, controlled: bool,
               deployed: bool) -> dict[str, list[str]]:
    """Kind -> the targets a fault of that kind can take on this lab (an empty list: none)."""
    links = [l for l in sc.links if plan.links_of_scenario_link(l.name)]
    redundant = []
    for l in links:
        if l.kind == "internet":
            continue
        effect = model.effect(single(plan, "link", l.name))
        if effect.moved and not effect.lost:
            redundant.append(l.name)
    kinds = {name: s.kind for name, s in sc.sites.items()}
    has_backup = any(k == "backup-dc" for k in kinds.values())
    return {"link-cut": redundant, "link-flap": redundant,
            "switch-down": sorted(s.label for s in plan.switches.values() if s.role != "oob"),
            "site-isolated": sorted({s.site for s in plan.switches.values() if kinds[s.site] in ISOLATED_KINDS}),
            "controller-restart": ["controller"] if controlled else [],
            "ovs-restart": [f"ovs{k}" for k in range(1, shards + 1)] if shards > 1 else [],
            "internet-line-cut": [l.name for l in links if l.kind == "internet"],
            "dc-dark": [d for d in sc.data_centres() if kinds[d] == "provincial-dc"] if deployed and has_backup else []}


def draw(targets: dict[str, list[str]], count: int, seed: int) -> list[Fault]:
    """`count` faults, every kind that has a target in turn (each round in a seeded order), each
    on a seeded target: the same seed, the same faults."""
    rng = random.Random(seed)
    usable = [k for k in KINDS if targets.get(k)]
    if not usable:
        raise LabError("this lab has nothing a soak can fault")
    order: list[str] = []
    while len(order) < count:
        batch = usable[:]
        rng.shuffle(batch)
        order += batch
    return [Fault(kind, rng.choice(targets[kind])) for kind in order[:count]]


@dataclass
class FaultReport:
    index: int
    kind: str
    target: str
    began: float  # UNIX time the fault was made
    outage_ms: float | None  # the longest stall of a flow the fault moved (its trains), or the service's RTO
    service_wait_s: float | None  # the citizens' longest wait for an acknowledgement after the fault began
    repaired_s: float  # from the repair until the controller had converged
    trains: dict = field(default_factory=dict)  # alone/moved/lost: pairs, datagrams lost, longest outage
    matrix: dict = field(default_factory=dict)  # probes, differing
    audit: dict = field(default_factory=dict)  # switches read, drifting, program equal to the compiled one
    citizens: dict = field(default_factory=dict)  # attempts, acknowledged, lost
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class Loaded:
    """A fault made and repaired under load (`Soak.under_load`): when it began and when its repair
    was in force (wall clock; a restarted daemon's: its switches reprogrammed), how long the
    network then took to be back at its intent, the trains' results and each citizen's attempts."""
    began: float
    repaired: float
    converged_s: float
    trains: dict[probes.Train, probes.TrainResult]
    attempts: dict[str, list]


def service_wait(attempts: dict[str, list], began: float) -> float | None:
    """The citizens' longest wait for an acknowledgement after the fault began, over the IP
    families that had one; None when none did before the citizens stopped: a restarted daemon
    of the DC's switches can stay unprogrammed past their window (benchmarks/soak.py met it)."""
    waits = [w for runs in attempts.values() if (w := drill.longest_wait(runs, began)) is not None]
    return max(waits, default=None)


def summarize(reports: list[FaultReport]) -> dict:
    """Per kind: how many, how many failed a check, the outage distribution (p50, p95, max)."""
    out = {}
    for kind in KINDS:
        mine = [r for r in reports if r.kind == kind]
        if not mine:
            continue
        outages = sorted(r.outage_ms for r in mine if r.outage_ms is not None)
        out[kind] = {"faults": len(mine), "failed": sum(not r.passed for r in mine),
                     "outage_ms": _distribution(outages),
                     "service_wait_s": _distribution(sorted(r.service_wait_s for r in mine
                                                           if r.service_wait_s is not None))}
    return out


def _distribution(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "max": None}
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return {"p50": round(statistics.median(values), 3), "p95": round(p95, 3), "max": round(values[-1], 3)}


class Soak:
    def __init__(self, lab, dep: Deployment, *, hold_s: float = 2.0, rate: float = 5.0, seed: int = 1,
                 progress=print):
        self.lab, self.dep, self.hold_s, self.rate, self.progress = lab, dep, hold_s, rate, progress
        sc, plan = lab.scenario, lab.plan
        self.pids = lab.pids
        self.runner = Runner(LabHandle(sc, plan, self.pids, lab.controller_process is not None), deployment=dep)
        self.model, self.rng = self.runner.model, random.Random(seed)
        self.citizen = drill.citizens(sc, plan)[0]
        self.matrix = probes.matrix_plan(sc, plan)
        name_of = {s.dpid: name for name, s in plan.switches.items()}
        self.intact = {name_of[d]: program.fingerprint(p).cookie for d, p in compiler.compile_network(sc, plan).items()}
        self.udp = [(s, d, int(port[4:])) for s, d in self.model.flows
                    for port in sorted(self.runner.intent.ports(s, d).get(4, ())) if port.startswith("udp/")]
        self.placed = shard_assignment(plan, lab.ovs_shards)

    def targets(self) -> dict[str, list[str]]:
        return candidates(self.lab.scenario, self.lab.plan, self.model, shards=self.lab.ovs_shards,
                          controlled=self.lab.controller_process is not None, deployed=True)

    def daemon_of(self, host: str) -> str:
        """The Open vSwitch daemon (an ovs-restart target) whose switch a host hangs off."""
        return f"ovs{self.placed[self.model.edge(host)] + 1}"

    # -- one fault ------------------------------------------------------------------------------
    def run(self, faults_: list[Fault]) -> list[FaultReport]:
        self.runner.baseline()
        reports = []
        for i, fault in enumerate(faults_):
            t0 = time.monotonic()
            report = self.dc_dark(i, fault) if fault.kind == "dc-dark" else self.one(i, fault)
            self.check(report)
            report.seconds = round(time.monotonic() - t0, 2)
            reports.append(report)
            self.progress(f"[{i + 1}/{len(faults_)}] {fault.kind} {fault.target}: "
                          + ("passed" if report.passed else "FAILED: " + "; ".join(report.problems))
                          + (f" (outage {report.outage_ms:.0f} ms)" if report.outage_ms is not None else ""))
        return reports

    def failure(self, fault: Fault) -> Failure:
        plan = self.lab.plan
        if fault.kind in MODEL_KIND:
            return single(plan, MODEL_KIND[fault.kind], fault.target)
        if fault.kind == "ovs-restart":
            k = int(fault.target[3:]) - 1
            switches = {n for n, i in self.placed.items() if i == k}
            return Failure("ovs", fault.target, frozenset(faults.with_peers(
                plan, {l.intf(n) for l in plan.links for n in (l.a, l.b) if n in switches})))
        return Failure(fault.kind, fault.target, frozenset())  # the controller: the switches keep forwarding

    def trains(self, effect: Effect) -> dict[str, list[probes.Train]]:
        lost, moved = set(effect.lost), set(effect.moved)
        groups = {"alone": [], "moved": [], "lost": []}
        for s, d, port in self.udp:
            groups["lost" if (s, d) in lost else "moved" if (s, d) in moved else "alone"].append(
                probes.Train(s, d, port))
        return {k: self.rng.sample(v, min(SAMPLE[k], len(v))) for k, v in groups.items()}

    def under_load(self, fault: Fault, trains: list[probes.Train] = (), after_s: float = SETTLE_S) -> Loaded:
        """`fault` made, held, repaired and the network back at its intent, with the citizens
        submitting and `trains` running from LEAD_S before it to `after_s` past the hold."""
        window = LEAD_S + self.hold_s + after_s + (2 * FLAPS * FLAP_S if fault.kind == "link-flap" else 0)
        plan = self.lab.plan
        with drill.Citizens(plan, self.pids, self.dep, self.citizen, self.rate, window) as load, \
                probes.Trains(plan, self.pids, list(trains), interval_ms=TRAIN_INTERVAL_MS, seconds=window) as running:
            running.start()
            time.sleep(LEAD_S)
            began = time.time()
            self.make(fault)
            time.sleep(self.hold_s)
            repair = time.monotonic()
            self.repair(fault)
            repaired = time.time()
            self.runner.converged()
            return Loaded(began, repaired, time.monotonic() - repair, {r.train: r for r in running.results()},
                          load.collect())

    def one(self, i: int, fault: Fault) -> FaultReport:
        failure = self.failure(fault)
        effect = self.model.effect(failure) if failure.down else Effect(failure)
        chosen = self.trains(effect)
        loaded = self.under_load(fault, [t for group in chosen.values() for t in group])
        results, began = loaded.trains, loaded.began
        report = FaultReport(i, fault.kind, fault.target, began, None, None, round(loaded.converged_s, 3))
        for group, members in chosen.items():
            rs = [results[t] for t in members]
            report.trains[group] = {"pairs": len(rs), "datagrams_lost": sum(r.lost for r in rs),
                                    "longest_outage_ms": max((r.outage_ms for r in rs), default=0.0)}
        # the outage: how long the flows the fault moved stalled (those it cuts off are down for the
        # hold by design); a restarted daemon cuts its flows off only until it is reprogrammed
        restart = fault.kind == "ovs-restart"
        report.outage_ms = max(report.trains[g]["longest_outage_ms"] for g in ("alone", "moved", *(["lost"] * restart)))
        if report.trains["alone"]["datagrams_lost"]:
            bad = [f"{r.train.src}->{r.train.dst} ({r.lost})" for t in chosen["alone"] if (r := results[t]).lost]
            report.problems.append(f"flows outside the cut set lost datagrams: {', '.join(bad)}")
        held = 0.0 if restart else self.hold_s * 1000 * 0.5
        kept = [f"{t.src}->{t.dst}" for t in chosen["lost"] if results[t].outage_ms <= held]
        if kept:
            report.problems.append(f"the model says these flows are lost, the lab kept them: {', '.join(kept)}")
        self.citizens(report, loaded.attempts, began)
        return report

    def make(self, fault: Fault) -> None:
        plan, lab = self.lab.plan, self.lab
        if fault.kind in MODEL_KIND:
            action = FAULT_OF_KIND[MODEL_KIND[fault.kind]]
            for _ in range(FLAPS if fault.kind == "link-flap" else 0):
                faults.inject(plan, action, fault.target)
                time.sleep(FLAP_S)
                faults.inject(plan, faults.REPAIR[action], fault.target)
                time.sleep(FLAP_S)
            faults.inject(plan, action, fault.target)
        elif fault.kind == "controller-restart":
            os.killpg(lab.controller_process.pid, signal.SIGKILL)
            lab.controller_process.wait(timeout=10)
        elif fault.kind == "ovs-restart":
            shard = next(s for s in {lab.net[n].shard for n in plan.switches} if s and s.index == int(fault.target[3:]))
            self.installs_before = (launcher.status(plan.prefix) or {}).get("installs", 0)
            shard.restart_vswitchd()
        else:
            raise LabError(f"unknown soak fault kind '{fault.kind}'")

    def repair(self, fault: Fault) -> None:
        plan, lab = self.lab.plan, self.lab
        if fault.kind in MODEL_KIND:
            faults.inject(plan, faults.REPAIR[FAULT_OF_KIND[MODEL_KIND[fault.kind]]], fault.target)
        elif fault.kind == "controller-restart":
            since = time.time()
            lab.controller_process, _ = launcher.start(lab.scenario.source, prefix=plan.prefix,
                                                       hosts_per_site=lab.hosts_per_site, port=lab.controller[1],
                                                       log=f"/tmp/egovlab-{plan.prefix}-controller.log")
            launcher.wait_programmed(plan.prefix, len(plan.switches), since=since, timeout_s=60)
        elif fault.kind == "ovs-restart":
            # the restarted daemon's switches reconnect with empty tables: each is read and reprogrammed
            k = int(fault.target[3:]) - 1
            wanted = self.installs_before + sum(1 for i in self.placed.values() if i == k)
            deadline = time.monotonic() + 60
            while (launcher.status(plan.prefix) or {}).get("installs", 0) < wanted:
                if time.monotonic() > deadline:
                    raise LabError(f"the switches of {fault.target} were not reprogrammed within 60 s")
                time.sleep(0.1)

    def dc_dark(self, i: int, fault: Fault) -> FaultReport:
        sc, plan = self.lab.scenario, self.lab.plan
        seconds = max(15.0, 3 * (self.hold_s + SETTLE_S))
        res = drill.run(sc, plan, self.pids, self.dep, fail=fault.target, seconds=seconds, warmup_s=seconds / 3,
                        rate=self.rate, progress=lambda *_: None)
        back = failback.run(sc, plan, self.pids, self.dep, seconds=seconds, warmup_s=seconds / 3, rate=self.rate,
                            progress=lambda *_: None)
        repair = time.monotonic()
        self.runner.converged()
        report = FaultReport(i, fault.kind, fault.target, res.fail_time,
                             None if res.rto_s is None else round(res.rto_s * 1000, 1), res.rto_s,
                             round(time.monotonic() - repair, 3))
        report.citizens = {"attempts": res.attempts + back.attempts, "acknowledged": res.acknowledged + back.acknowledged,
                           "lost": res.lost + back.lost, "failover_rto_s": res.rto_s, "failback_rto_s": back.rto_s,
                           "failback_resync_s": back.resync_s}
        if res.rto_s is None or back.rto_s is None:
            report.problems.append("the service did not recover" + (" after the failback" if res.rto_s else ""))
        if res.lost or back.lost:
            report.problems.append(f"acknowledged submissions lost: {res.lost} in the failover, {back.lost} in the "
                                   "failback")
        return report

    def citizens(self, report: FaultReport, attempts: dict[str, list], began: float) -> None:
        stats = drill.figures(self.lab.plan, self.pids, self.dep.primary.servers["csdl"], attempts, began)
        report.service_wait_s = service_wait(attempts, began)
        report.citizens = {k: stats[k] for k in ("attempts", "acknowledged", "lost")}
        if stats["lost"]:
            report.problems.append(f"{stats['lost']} acknowledged submissions lost")

    # -- after every fault ----------------------------------------------------------------------
    def check(self, report: FaultReport) -> None:
        plan = self.lab.plan
        if faults.active(plan.prefix):
            report.problems.append(f"faults still in force after the repair: {faults.active(plan.prefix)}")
        results = probes.run_matrix(self.matrix, self.pids, plan.by_label, plan.prefix)
        differ = [r for r in results if r.differs]
        report.matrix = {"probes": len(results), "differ": len(differ)}
        if differ:
            report.problems.append(f"{len(differ)} of {len(results)} probes differ from the intent, e.g. "
                                   + ", ".join(f"{r.probe.src_host}->{r.probe.dst_host} {r.probe.port}"
                                               for r in differ[:3]))
        audit = launcher.control(plan.prefix, "audit", {})
        drifting = sorted(n for n, a in audit["switches"].items()
                          if a["missing_rules"] or a["extra_rules"] or a["groups"] or a["meters"])
        other = sorted(n for n, a in audit["switches"].items() if a["fingerprint"] != self.intact[n])
        report.audit = {"switches": len(audit["switches"]), "drifting": len(drifting), "not_as_compiled": len(other),
                        "unanswered": len(audit["unanswered"]) + len(audit["not_connected"])}
        if drifting or other or audit["unanswered"] or audit["not_connected"]:
            report.problems.append(f"switches not holding the compiled program: {len(drifting)} drift "
                                   f"({', '.join(drifting[:3])}), {len(other)} on another program, "
                                   f"{report.audit['unanswered']} not read")


def report(reports: list[FaultReport], wall_s: float, seed: int) -> dict:
    return {"seed": seed, "faults": len(reports), "failed": sum(not r.passed for r in reports),
            "acknowledged": sum(r.citizens.get("acknowledged", 0) for r in reports),
            "lost": sum(r.citizens.get("lost", 0) for r in reports), "wall_s": round(wall_s, 1),
            "kinds": summarize(reports), "runs": [{**asdict(r), "passed": r.passed} for r in reports]}
