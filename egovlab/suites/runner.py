"""Run a suite's tests on a lab that is up: each from a clean baseline (faults cleared, the
controller converged), its steps in order, every expectation measured on the lab and
predicted from the model (`sdn.resilience`) beside it."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from egovlab.inventory.policy import Intent, allowed, endpoint_of
from egovlab.inventory.scenario import Scenario
from egovlab.sdn.resilience import Failure, Model, single
from egovlab.topology import faults, netstate, probes
from egovlab.topology.model import EmulationPlan
from egovlab.topology.state import LabError

from . import schema

CONVERGE_TIMEOUT_S = 60.0
PROBE_S, CUT_AFTER_S = 4.0, 1.5  # the failover probe: 1 ms datagrams for 4 s, the cut after 1.5 s


@dataclass
class StepResult:
    step: str  # what the step does, in words
    expected: str = ""
    predicted: str = ""
    measured: str = ""
    passed: bool | None = None  # None: an action, not an expectation
    model_agrees: bool | None = None  # the prediction equals the measurement
    seconds: float = 0.0
    figures: dict = field(default_factory=dict)  # what was measured, in numbers (a drill's)


@dataclass
class TestResult:
    name: str
    level: str
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None  # the lab failed under the test (not an expectation)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(s.passed is not False for s in self.steps)

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if s.passed is False), None)

    def as_json(self) -> dict:
        return {**asdict(self), "passed": self.passed}


@dataclass
class LabHandle:
    """What the runner needs of a lab that is up, however it came up."""

    scenario: Scenario
    plan: EmulationPlan
    pids: dict[str, int]
    controlled: bool  # under egovlab's own controller (converged = its report), else RSTP


class Runner:
    def __init__(self, lab: LabHandle, progress: Callable[[str], None] = lambda _: None, deployment=None):
        self.lab, self.progress = lab, progress
        self.intent = Intent(lab.scenario)
        self.model = Model(lab.scenario, lab.plan, self.intent)
        self.switch_ports = sorted({l.intf(n) for l in lab.plan.links for n in (l.a, l.b) if n in lab.plan.switches})
        self.deployment = deployment  # the services (deployed at the first step that needs them)

    # -- the baseline ---------------------------------------------------------------------
    def baseline(self) -> None:
        """No fault in force, the services at home: a drill's failover failed back (the old primary
        fenced before its DC comes back), every address on the host the plan puts it on."""
        if self.deployment is not None:
            from egovlab.services import drill, failback

            if failback.failed_over(self.lab.plan, self.lab.pids, self.deployment):
                failback.restore(self.lab.plan, self.lab.pids, self.deployment, progress=self.progress)
            if drill.give_back(self.lab.plan, self.lab.pids, self.deployment):
                self.progress("the standby portal gave the service addresses back to the primary")
        faults.clear(self.lab.plan)
        self.converged()

    def converged(self) -> float:
        """Until the controller's program is for the network as it is now: the ports it knows
        down are the switch ports down in the kernel (or, standalone, RSTP has settled)."""
        from egovlab.sdn import launcher
        from egovlab.topology.network import rstp_islands, wait_rstp_converged

        prefix = self.lab.plan.prefix
        if not self.lab.controlled:
            return wait_rstp_converged(prefix, rstp_islands(self.lab.plan))
        t0 = time.monotonic()
        while time.monotonic() - t0 < CONVERGE_TIMEOUT_S:
            status = launcher.status(prefix) or {}
            down_now = netstate.interfaces_down(set(self.switch_ports), prefix)
            if set(status.get("down", ())) == down_now and len(status.get("installed", ())) >= len(
                    self.lab.plan.switches):
                time.sleep(0.2)  # the last rule changes were sent with the status: let them land
                return time.monotonic() - t0
            time.sleep(0.1)
        raise LabError(f"the controller did not converge within {CONVERGE_TIMEOUT_S:.0f} s")

    # -- a test -----------------------------------------------------------------------------
    def run(self, test: schema.Test) -> TestResult:
        result = TestResult(test.name, test.level)
        t0 = time.monotonic()
        try:
            self.baseline()
            for step in test.steps:
                s0 = time.monotonic()
                out = self.step(step)
                out.seconds = round(time.monotonic() - s0, 2)
                result.steps.append(out)
                self.progress(f"{test.name}: {out.step}: {_verdict(out)}")
        except LabError as exc:
            result.error = str(exc)
        finally:
            result.seconds = round(time.monotonic() - t0, 2)
        return result

    def step(self, step) -> StepResult:
        plan = self.lab.plan
        if isinstance(step, schema.FaultStep):
            f = step.fault
            rec = faults.inject(plan, f.action, f.target)
            return StepResult(f"fault {f.action} {f.target}", measured=f"{len(rec.interfaces)} interface(s)")
        if isinstance(step, schema.RestoreStep):
            if step.restore == "all":
                n = len(faults.clear(plan))
                return StepResult("restore all", measured=f"{n} interface(s) back up")
            rec = faults.inject(plan, step.restore.action, step.restore.target)
            return StepResult(f"restore {step.restore.action} {step.restore.target}",
                              measured=f"{len(rec.interfaces)} interface(s)")
        if isinstance(step, schema.FlapStep):
            f = step.flap
            for _ in range(f.count):
                faults.inject(plan, "link-down", f.link)
                time.sleep(f.interval)
                faults.inject(plan, "link-up", f.link)
                time.sleep(f.interval)
            return StepResult(f"flap {f.link} {f.count}x every {f.interval:g} s", measured="done")
        if isinstance(step, schema.WaitStep):
            if step.wait == "converged":
                return StepResult("wait until converged", measured=f"{self.converged():.2f} s")
            time.sleep(step.wait)
            return StepResult(f"wait {step.wait:g} s", measured="done")
        if isinstance(step, schema.FailoverStep):
            return self.failover(step.failover)
        if isinstance(step, schema.ServiceStep):
            return self.service(step.service)
        if isinstance(step, schema.DrillStep):
            return self.drill(step.drill)
        if isinstance(step, schema.FailbackStep):
            return self.failback(step.failback)
        expect_reach = isinstance(step, schema.ReachStep)
        return self.reach(step.reach if expect_reach else step.deny, expect_reach)

    # -- expectations ---------------------------------------------------------------------
    def pairs(self, r: schema.Reach) -> list[probes.Probe]:
        """The probes of a reach/deny step: its hosts, ports and IP versions (pure)."""
        sc, plan = self.lab.scenario, self.lab.plan
        sources = [h for h in plan.hosts.values() if h.label in self.intent.selected(r.source)]
        targets = [h for h in plan.hosts.values() if h.label in self.intent.selected(r.to)]
        versions = (4, 6) if r.ip == "both" else (r.ip,)
        out = []
        for src in sources:
            for dst in targets:
                if src.name == dst.name:
                    continue
                ports = list(r.ports) if r.ports else _default_ports(sc, r.to)
                src_ep, dst_ep = endpoint_of(sc, src.label), endpoint_of(sc, dst.label)
                for v, s_addr, d_addr in ((4, src.ipv4, dst.ipv4), (6, src.ipv6, dst.ipv6)):
                    if v in versions and s_addr is not None and d_addr is not None:
                        for port in ports:
                            out.append(probes.Probe(r.source, r.to, src.label, dst.label, port, v, str(d_addr.ip),
                                                    allowed(sc, src_ep, dst_ep, port, v)))
        return out

    def lost_now(self) -> set[tuple[str, str]]:
        """The model's host pairs cut apart by what is down in the lab now."""
        plan = self.lab.plan
        down = frozenset(faults.cut_interfaces(plan)) | frozenset(
            netstate.interfaces_down(set(self.switch_ports), plan.prefix))
        return set(self.model.effect(Failure("now", "the lab now", down)).lost)

    def predict(self, probe: probes.Probe, lost: set[tuple[str, str]]) -> bool:
        """The model: intended by the policy, and the pair not cut apart by what is down now."""
        return probe.intended and (probe.src_host, probe.dst_host) not in lost

    def reach(self, r: schema.Reach, expect_reach: bool) -> StepResult:
        plan = self.lab.plan
        words = f"{'reach' if expect_reach else 'deny'} {r.source} -> {r.to}" + \
            (f" {','.join(r.ports)}" if r.ports else "") + f" (IPv{'4+6' if r.ip == 'both' else r.ip}, {r.hosts})"
        planned = self.pairs(r)
        if not planned:  # no pair has addresses in those IP versions: nothing can get through
            return StepResult(words, expected="some pair to probe" if expect_reach else "nothing through",
                              predicted="no address to reach", measured="no pair has addresses in those IP versions",
                              passed=not expect_reach, model_agrees=True)
        lost = self.lost_now()
        results = probes.run_matrix(planned, self.lab.pids, plan.by_label, plan.prefix)
        reached = [res.reachable for res in results]
        predicted = [self.predict(res.probe, lost) for res in results]

        def holds(values: list[bool]) -> bool:
            wanted = [v if expect_reach else not v for v in values]
            return all(wanted) if r.hosts == "all" else any(wanted)

        n = len(results)
        return StepResult(words, expected=f"{r.hosts} of {n} probes {'through' if expect_reach else 'blocked'}",
                          predicted=f"{sum(predicted)}/{n} through", measured=f"{sum(reached)}/{n} through",
                          passed=holds(reached), model_agrees=reached == predicted)

    def failover(self, f: schema.Failover) -> StepResult:
        sc, plan = self.lab.scenario, self.lab.plan
        if f.source is not None:
            src, dst, port = f.source, f.to, probes.FAILOVER_PORT
        else:
            src, dst, port = probes.failover_pair(sc, plan, f.link)
        if f.port is not None:
            port = f.port.number
        effect = self.model.effect(single(plan, "link", f.link))
        intended = allowed(sc, endpoint_of(sc, src), endpoint_of(sc, dst), f"udp/{port}", f.ip)
        survives = intended and (src, dst) not in set(effect.lost)
        res = probes.failover_probe(plan, self.lab.pids, f.link, src, dst, version=f.ip, port=port,
                                    seconds=PROBE_S, cut_after=CUT_AFTER_S)
        self.converged()
        # the flow came back before the probe ended: some path carried it after the cut
        came_back = res.outage_ms < (PROBE_S - CUT_AFTER_S) * 1000 * 0.8
        words = f"failover: cut {f.link} under {src} -> {dst} udp/{port} (1 ms probe)"
        return StepResult(words, expected=f"outage <= {f.max_outage_ms:g} ms",
                          predicted="a backup path carries it" if survives else
                          "no path survives" if intended else f"the policy denies udp/{port}",
                          measured=f"outage {res.outage_ms:.0f} ms, lost {res.lost}/{res.sent}",
                          passed=came_back and res.outage_ms <= f.max_outage_ms, model_agrees=survives == came_back)

    # -- the deployed services ---------------------------------------------------------------
    def deployed(self, replication: str | None = None):
        """The services on the lab (Ansible, once per run); deploy errors are the lab's."""
        from egovlab.services import deploy

        if self.deployment is None:
            self.progress("deploying the services with ansible-playbook")
            self.deployment, recap = deploy.deploy(self.lab.scenario, self.lab.plan, self.lab.pids,
                                                   replication=replication, progress=self.progress)
            self.progress(f"deployed in {recap.seconds:.0f} s ({recap.changed} changes)")
        return self.deployment

    def citizen(self) -> str:
        sc, plan = self.lab.scenario, self.lab.plan
        return next(h.label for h in plan.hosts.values() if sc.sites[h.site].kind == "internet" and h.ipv4)

    def service(self, s: schema.Service) -> StepResult:
        """The portal answers a citizen through its service address, its status ok."""
        from egovlab.services import deploy, drill

        sc, plan = self.lab.scenario, self.lab.plan
        dep = self.deployed()
        citizen, web = self.citizen(), dep.primary.servers[s.name]
        port = next(p for p in sc.spec.services[s.name].ports if p.startswith("tcp/"))
        survives = allowed(sc, endpoint_of(sc, citizen), endpoint_of(sc, web), port, 4) \
            and (citizen, web) not in self.lost_now()
        ca = str(deploy.workdir(plan.prefix) / "ca.crt")
        waited = drill.healthy_after(self.lab.pids[plan.by_label[citizen]], f"{dep.url(4)}/health", ca,
                                     within_s=s.within, prefix=plan.prefix)
        return StepResult(f"service {s.name} answers {citizen} through the portal", expected=f"within {s.within:g} s",
                          predicted="the path is open" if survives else "no path to the portal",
                          measured=f"healthy after {waited:.1f} s" if waited is not None else "no healthy answer",
                          passed=waited is not None, model_agrees=survives == (waited is not None))

    def drill(self, d: schema.Drill) -> StepResult:
        from egovlab.services import drill
        from egovlab.simulation import dr

        sc = self.lab.scenario
        dep = self.deployed(d.replication)
        r = sc.spec.resilience
        max_rto = d.max_rto if d.max_rto is not None else r.rto_target_s.value
        max_rpo = d.max_rpo if d.max_rpo is not None else r.rpo_target_s.value
        res = drill.run(sc, self.lab.plan, self.lab.pids, dep, fail=d.fail, seconds=d.seconds, warmup_s=d.seconds / 3,
                        rate=d.rate, progress=self.progress)
        predicted, agrees = "no resilience model in the scenario", None
        if r is not None:
            p = dr.predict(sc, replication=res.replication, detection_s=res.detected_s,
                           redirection_s=res.redirected_s - res.detected_s, submit_rate=d.rate)
            predicted = f"RTO {p['rto']['mean']:.1f} s (p95 {p['rto']['p95']:.1f}), RPO {p['rpo']['mean']:.2f} s"
            agrees = res.rto_s is not None and res.rto_s <= p["rto"]["p95"] and res.rpo_s <= max(p["rpo"]["p95"], 0.5)
        rto = f"RTO {res.rto_s:.1f} s" if res.rto_s is not None else "not recovered"
        return StepResult(f"drill: {d.fail} dark, {res.replication} replication, {d.rate:g}/s for {d.seconds:g} s",
                          expected=f"RTO <= {max_rto:g} s, RPO <= {max_rpo:g} s", predicted=predicted,
                          measured=f"{rto}, RPO {res.rpo_s:.2f} s, lost {res.lost}/{res.acknowledged}",
                          passed=res.rto_s is not None and res.rto_s <= max_rto and res.rpo_s <= max_rpo,
                          model_agrees=agrees, figures=asdict(res))


    def failback(self, f: schema.Failback) -> StepResult:
        from egovlab.services import failback

        sc = self.lab.scenario
        dep = self.deployed()
        r = sc.spec.resilience
        max_rto = f.max_rto if f.max_rto is not None else r.rto_target_s.value
        max_rpo = f.max_rpo if f.max_rpo is not None else r.rpo_target_s.value
        res = failback.run(sc, self.lab.plan, self.lab.pids, dep, seconds=f.seconds, warmup_s=f.seconds / 3,
                           rate=f.rate, progress=self.progress)
        rto = f"RTO {res.rto_s:.1f} s" if res.rto_s is not None else "not recovered"
        return StepResult(f"failback: back to {dep.primary.dc} ({res.replication}), {f.rate:g}/s for {f.seconds:g} s",
                          expected=f"RTO <= {max_rto:g} s, RPO <= {max_rpo:g} s",
                          predicted="a planned switchover: nothing acknowledged lost",
                          measured=f"{rto}, RPO {res.rpo_s:.2f} s, lost {res.lost}/{res.acknowledged} "
                                   f"(re-synchronised in {res.resync_s:.1f} s first)",
                          passed=res.rto_s is not None and res.rto_s <= max_rto and res.rpo_s <= max_rpo,
                          model_agrees=res.lost == 0, figures=asdict(res))


def _default_ports(sc: Scenario, target) -> list[str]:
    """A service's TCP ports (its handshake proves the path), else an ICMP echo."""
    if target.kind == "service":
        tcp = [p for p in sc.spec.services[target.ref].ports if p.startswith("tcp/")]
        if tcp:
            return tcp
    return ["icmp"]


def _verdict(step: StepResult) -> str:
    if step.passed is None:
        return step.measured
    return ("passed" if step.passed else "FAILED") + f" ({step.measured})"
