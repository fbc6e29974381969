"""Prometheus metrics of the control plane, gathered at scrape time from the labs themselves.

Lab state, link and switch status come from the kernel (interface state of the running labs);
zone-pair traffic and policy drops come from each lab's controller (its own /metrics,
re-exported with a `prefix` label); probe, simulation and drill figures from the latest
finished job of each kind. Alerting rules on these: `egovlab/api/alerts.yml`.
"""
from __future__ import annotations

from collections import Counter

import httpx
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from egovlab import lifecycle, operations
from egovlab.inventory.errors import EgovlabError
from egovlab.topology import devices, faults, netstate
from egovlab.sdn import launcher

from .jobs import KINDS, JobRunner


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class ControlPlaneCollector:
    def __init__(self, runner: JobRunner):
        self.runner = runner

    def collect(self):
        yield from self._labs()
        yield from self._jobs()
        yield from self._probes()
        yield from self._simulation()
        yield from self._drill()

    # -- labs ---------------------------------------------------------------------------
    def _labs(self):
        up = _gauge("egovlab_lab_up", "1 for each running lab", ["prefix", "scenario"])
        link = _gauge("egovlab_link_up", "Scenario link of a running lab: 1 up, 0 cut", ["prefix", "link", "kind", "role"])
        switch = _gauge("egovlab_switch_up", "Switch of a running lab: 0 when every port is down", ["prefix", "switch", "site", "role"])
        dc = _gauge("egovlab_dc_up", "Data centre of a running lab: 0 when all its switches are down", ["prefix", "dc"])
        active = _gauge("egovlab_faults_active", "Faults in force on a running lab", ["prefix"])
        programmed = _gauge("egovlab_controller_switches_programmed", "Switches the lab's controller has programmed", ["prefix"])
        switches = _gauge("egovlab_lab_switches", "Switches of a running lab", ["prefix"])
        passthrough: list[Metric] = []
        for prefix in lifecycle.running_prefixes():
            try:
                state, sc, plan = operations.running_lab(prefix)
            except EgovlabError:
                continue
            up.add_metric([prefix, sc.name], 1)
            switches.add_metric([prefix], len(plan.switches))
            down = faults.links_down(plan)
            for l in sc.links:
                link.add_metric([prefix, l.name, l.kind, l.role], 0 if l.name in down else 1)
            ports = {n: [p.interface for p in devices.ports(plan, n)] for n in plan.switches}
            dead_ports = netstate.interfaces_down({p for ps in ports.values() for p in ps}, prefix)
            dead = {n for n, ps in ports.items() if ps and all(p in dead_ports for p in ps)}
            for n, s in plan.switches.items():
                switch.add_metric([prefix, s.label, s.site, s.role], 0 if n in dead else 1)
            for d in sc.data_centres():
                own = [n for n, s in plan.switches.items() if s.site == d]
                dc.add_metric([prefix, d], 0 if own and all(n in dead for n in own) else 1)
            active.add_metric([prefix], len(faults.active(prefix)))
            controller = launcher.status(prefix)
            if controller is not None:
                programmed.add_metric([prefix], len(controller.get("installed", [])))
                passthrough += _controller_metrics(controller.get("metrics"), prefix)
        yield from (up, switches, link, switch, dc, active, programmed)
        yield from passthrough

    # -- jobs ---------------------------------------------------------------------------
    def _jobs(self):
        counts = Counter((j.kind, j.state) for j in list(self.runner.jobs.values()))
        g = _gauge("egovlab_api_jobs", "Jobs of this server by kind and state", ["kind", "state"])
        for kind in KINDS:
            for state in ("running", "succeeded", "failed", "cancelled"):
                g.add_metric([kind, state], counts[(kind, state)])
        yield g

    def _probes(self):
        results = _gauge("egovlab_probe_results", "Latest reachability matrix of a lab: probes by outcome",
                         ["prefix", "outcome"])
        when = _gauge("egovlab_probe_timestamp_seconds", "When the latest matrix of a lab finished", ["prefix"])
        prefixes = {j.prefix for j in list(self.runner.jobs.values()) if j.kind == "probe-matrix"}
        for prefix in sorted(p for p in prefixes if p):
            job = self.runner.latest("probe-matrix", prefix)
            if job is None or not job.result:
                continue
            r = job.result
            for outcome in ("probes", "reachable", "intended", "differ", "denied_but_reachable",
                            "allowed_but_unreachable"):
                results.add_metric([prefix, outcome], r.get(outcome, 0))
            when.add_metric([prefix], job.finished)
        yield results
        yield when

    def _simulation(self):
        job = self.runner.latest("simulation")
        util = _gauge("egovlab_simulation_peak_utilisation", "Mean utilisation of a resource at the simulated peak",
                      ["scenario", "resource"])
        p95 = _gauge("egovlab_simulation_peak_p95_seconds", "Mean p95 response time of a service at the peak",
                     ["scenario", "service"])
        target = _gauge("egovlab_simulation_response_target_seconds", "The scenario's p95 response-time target",
                        ["scenario"])
        year = _gauge("egovlab_simulation_year", "Yearly run with failures: availability and SLA (fractions)",
                      ["scenario", "figure"])
        if job is not None and job.result:
            r, name = job.result, job.result.get("scenario", "")
            for res, est in r["peak"]["utilisation"].items():
                util.add_metric([name, res], est["mean"])
            for svc, s in r["peak"]["services"].items():
                p95.add_metric([name, svc], s["p95"]["mean"])
            target.add_metric([name], r["peak"]["target_s"])
            for figure in ("availability", "sla"):
                year.add_metric([name, figure], r["year"][figure]["mean"])
        yield from (util, p95, target, year)

    def _drill(self):
        job = self.runner.latest("drill")
        labels = ["scenario", "failed_dc", "replication"]
        figures = {k: _gauge(f"egovlab_drill_{k}", doc, labels) for k, doc in (
            ("rto_seconds", "Measured RTO of the latest drill"),
            ("rpo_seconds", "Measured RPO of the latest drill"),
            ("lost_submissions", "Acknowledged submissions lost in the latest drill"),
            ("rto_target_seconds", "The scenario's RTO target"),
            ("rpo_target_seconds", "The scenario's RPO target"))}
        if job is not None and job.result:
            d = job.result["drill"]
            values = [job.params.get("scenario", ""), d["failed_dc"], d["replication"]]
            # An unrecovered service has no RTO: report it as the drill's whole length, so alerts fire.
            figures["rto_seconds"].add_metric(values, d["rto_s"] if d["rto_s"] is not None else job.params["seconds"])
            figures["rpo_seconds"].add_metric(values, d["rpo_s"])
            figures["lost_submissions"].add_metric(values, d["lost"])
            for key in ("rto_target_seconds", "rpo_target_seconds"):
                if job.result.get("targets", {}).get(key) is not None:
                    figures[key].add_metric(values, job.result["targets"][key])
        yield from figures.values()


def _controller_metrics(url: str | None, prefix: str) -> list[Metric]:
    """The lab controller's own families (egovlab_sdn_*), each sample labelled with the lab's prefix."""
    if not url or not url.startswith("http://127.0.0.1:"):
        return []
    try:
        text = httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return []
    out = []
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("egovlab_sdn_"):
            continue
        cls = CounterMetricFamily if family.type == "counter" else GaugeMetricFamily
        if family.type not in ("counter", "gauge"):
            continue
        labels = sorted({k for s in family.samples for k in s.labels})
        m = cls(family.name, family.documentation, labels=["prefix", *labels])
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            m.add_metric([prefix, *(s.labels.get(k, "") for k in labels)], s.value)
        out.append(m)
    return out
