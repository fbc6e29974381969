"""CLI verbs of the real services: deploy (Ansible onto a running lab), drill (failover),
failback (back to the provincial DC) and soak (many faults under the citizens' load)."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import click
from rich.table import Table

from egovlab import lifecycle, operations, params
from egovlab.inventory import loader
from egovlab.inventory.errors import EgovlabError
from egovlab.topology.model import emulation_plan

from .common import HOSTS, PREFIX, SCENARIO, console, write_file
from .lab import ConsoleReporter

REPLICATION = click.option("--replication", type=click.Choice(["sync", "async"]), default=None,
                           help="PostgreSQL replication to the backup DC (default: the scenario's resilience).")


def _deploy(sc, plan, pids, replication):
    from egovlab.services import deploy

    with console.status("provisioning with ansible-playbook over SSH (management network)"):
        dep, recap = deploy.deploy(sc, plan, pids, replication=replication, progress=console.print)
    table = Table(title=f"ansible-playbook: {recap.seconds:.1f} s, {recap.changed} changes "
                        f"({dep.replication} replication)")
    for col in ("host", "ok", "changed", "unreachable", "failed"):
        table.add_column(col, justify="left" if col == "host" else "right")
    for host, counts in sorted(recap.hosts.items()):
        table.add_row(host, *(str(counts[k]) for k in ("ok", "changed", "unreachable", "failed")))
    console.print(table)
    console.print(f"portal: https://{dep.service_address}/ (lab CA: {deploy.workdir(plan.prefix) / 'ca.crt'})")
    return dep, recap


@click.command()
@PREFIX
@REPLICATION
def deploy(prefix: str, replication: str | None) -> None:
    """Deploy the e-gov services onto the running lab with Ansible (idempotent: run it again)."""
    record, sc, plan = operations.running_lab(prefix)
    _deploy(sc, plan, record.pids, replication)


@click.command()
@SCENARIO
@click.option("--fail", "fail_dc", required=True, metavar="DC", help="The data centre to take dark (the primary).")
@REPLICATION
@click.option("--seconds", type=params.DRILL_SECONDS.click(), default=40, show_default=True,
              help="How long citizens keep submitting (the failure comes after a third of it).")
@click.option("--rate", type=params.DRILL_RATE.click(), default=10, show_default=True,
              help="Submissions per second.")
@click.option("--failback", "then_failback", is_flag=True,
              help="Then fail back to the provincial DC, under the same load, and report it too.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default="out/drill.json", show_default=True)
@PREFIX
@HOSTS
def drill(file: str, fail_dc: str, replication: str | None, seconds: float, rate: float, then_failback: bool,
          json_out: str, prefix: str, hosts_per_site: int | None) -> None:
    """Failover drill on real services: up, deploy, submit, fail the DC, promote, report RTO/RPO, down."""
    from egovlab.services import drill as drillmod
    from egovlab.services.placement import plan_deployment
    from egovlab.simulation import dr

    # A drill that cannot run fails here, before anything (the controller first) is started.
    sc = loader.load(file)
    params.data_centre(sc, fail_dc)
    plan_deployment(sc, emulation_plan(sc, prefix=prefix, hosts_per_site=hosts_per_site), replication)
    with lifecycle.session(file, lifecycle.spec(prefix, hosts_per_site), ConsoleReporter()) as lab:
        pids = lab.pids
        dep, recap = _deploy(sc, lab.plan, pids, replication)
        result = drillmod.run(sc, lab.plan, pids, dep, fail=fail_dc, seconds=seconds, warmup_s=seconds / 3,
                              rate=rate, progress=console.print)
        back = _failback(sc, lab.plan, pids, dep, seconds, rate) if then_failback else None
    if sc.spec.resilience is not None:
        result.prediction = dr.predict(sc, replication=result.replication, detection_s=result.detected_s,
                                       redirection_s=result.redirected_s - result.detected_s, submit_rate=rate)
    _report(result, sc)
    report = {"drill": asdict(result), "deploy_s": round(recap.seconds, 1),
              "service_addresses": {f"ipv{v}": a for v, a in dep.service_addresses().items()}}
    if back is not None:
        _report_failback(back, sc)
        report["failback"] = asdict(back)
    write_file(Path(json_out), json.dumps(report, indent=1))
    console.print(f"wrote {json_out}")


def _failback(sc, plan, pids, dep, seconds: float, rate: float):
    from egovlab.services import failback as failbackmod

    with console.status("failing back to the provincial DC"):
        return failbackmod.run(sc, plan, pids, dep, seconds=seconds, warmup_s=seconds / 3, rate=rate,
                               progress=console.print)


@click.command()
@click.option("--seconds", type=params.DRILL_SECONDS.click(), default=30, show_default=True,
              help="How long citizens keep submitting (the switch comes after a third of it).")
@click.option("--rate", type=params.DRILL_RATE.click(), default=10, show_default=True,
              help="Submissions per second, per IP version.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default="out/failback.json", show_default=True)
@PREFIX
def failback(seconds: float, rate: float, json_out: str, prefix: str) -> None:
    """After a failover drill on the running lab, return service to the provincial DC: its database
    re-synchronised as a standby, then switched back under load; RTO/RPO as the drill reports them."""
    from egovlab.services import deploy as deploymod
    from egovlab.services import failback as failbackmod
    from egovlab.services.placement import plan_deployment

    record, sc, plan = operations.running_lab(prefix)
    if not (deploymod.workdir(prefix) / "deployment.yml").exists():
        raise EgovlabError(f"no services are deployed on lab '{prefix}' (egovlab deploy)")
    dep = plan_deployment(sc, plan, failbackmod.replication_mode(prefix))
    result = _failback(sc, plan, record.pids, dep, seconds, rate)
    _report_failback(result, sc)
    write_file(Path(json_out), json.dumps({"failback": asdict(result)}, indent=1))
    console.print(f"wrote {json_out}")


def _report_failback(result, sc) -> None:
    table = Table(title=f"failback to the provincial DC ({result.replication} replication)")
    table.add_column("")
    table.add_column("measured", justify="right")
    rto = f"{result.rto_s:.2f} s" if result.rto_s is not None else "not recovered"
    table.add_row("re-synchronised first (fence, DC up, base backup)", f"{result.resync_s:.1f} s")
    table.add_row("RTO (every IP version's first acknowledgement after writes stopped)", rto)
    for family, f in result.families.items():
        rto_f = f"{f['rto_s']:.2f} s" if f["rto_s"] is not None else "not recovered"
        table.add_row(f"  {family}: RTO, lost / acknowledged", f"{rto_f}, {f['lost']} / {f['acknowledged']}")
    table.add_row("RPO (acknowledged, then lost: time window)", f"{result.rpo_s:.2f} s")
    table.add_row("acknowledged / attempted", f"{result.acknowledged} / {result.attempts}")
    table.add_row("stopped / caught up / promoted / redirected / rejoined after",
                  " / ".join(f"{getattr(result, k):.2f}" for k in ("stopped_s", "caught_up_s", "promoted_s",
                                                                    "redirected_s", "rejoined_s")) + " s")
    r = sc.spec.resilience
    if r is not None:
        table.caption = (f"scenario targets: RTO {r.rto_target_s.value:g} s, RPO {r.rpo_target_s.value:g} s — "
                         + ("met" if result.rto_s is not None and result.rto_s <= r.rto_target_s.value
                            and result.rpo_s <= r.rpo_target_s.value else "NOT met"))
    console.print(table)


def _report(result, sc) -> None:
    r = sc.spec.resilience
    table = Table(title=f"failover drill: {result.failed_dc} dark, {result.replication} replication")
    table.add_column("")
    table.add_column("measured", justify="right")
    table.add_column("simulation predicts (mean / p95)", justify="right")
    p = result.prediction or {}
    pred = lambda k: f"{p[k]['mean']:g} / {p[k]['p95']:g}" if k in p else "—"  # noqa: E731
    rto = f"{result.rto_s:.2f} s" if result.rto_s is not None else "not recovered"
    table.add_row("RTO (every IP version's first acknowledgement after the failure)", rto, pred("rto") + " s")
    for family, f in result.families.items():
        rto_f = f"{f['rto_s']:.2f} s" if f["rto_s"] is not None else "not recovered"
        table.add_row(f"  {family}: RTO, lost / acknowledged", f"{rto_f}, {f['lost']} / {f['acknowledged']}", "")
    table.add_row("RPO (acknowledged, then lost: time window)", f"{result.rpo_s:.2f} s", pred("rpo") + " s")
    table.add_row("acknowledged submissions lost", str(result.lost), pred("lost"))
    table.add_row("submissions failed during the outage", str(result.failed_during_outage), "")
    table.add_row("acknowledged / attempted", f"{result.acknowledged} / {result.attempts}", "")
    table.add_row("detected / promoted / redirected after", f"{result.detected_s:.1f} / {result.promoted_s:.1f} / "
                  f"{result.redirected_s:.1f} s", "")
    if r is not None:
        table.caption = (f"scenario targets: RTO {r.rto_target_s.value:g} s, RPO {r.rpo_target_s.value:g} s — "
                         + ("met" if result.rto_s is not None and result.rto_s <= r.rto_target_s.value
                            and result.rpo_s <= r.rpo_target_s.value else "NOT met"))
    console.print(table)


@click.command()
@SCENARIO
@click.option("--faults", "count", type=params.SOAK_FAULTS.click(integer=True), default=20, show_default=True,
              help="How many faults, every kind in turn (link cut and flap, switch down, site isolated, controller "
                   "and Open vSwitch daemon restarted, Internet line cut, the provincial DC dark and failed back).")
@click.option("--seed", type=params.SEED.click(integer=True), default=1, show_default=True,
              help="Which faults, on which targets, and which flows the probe trains take.")
@click.option("--hold", "hold_s", type=params.SOAK_HOLD_S.click(), default=2.0, show_default=True,
              help="Seconds each fault lasts before its repair.")
@click.option("--rate", type=params.DRILL_RATE.click(), default=5, show_default=True,
              help="Submissions per second, per IP version, all the while.")
@click.option("--ovs-shards", type=params.OVS_SHARDS.click(integer=True), default=24, show_default=True,
              help="Open vSwitch daemons the switches are spread over (one of them is restarted as a fault).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default="out/soak.json", show_default=True)
@PREFIX
@HOSTS
def soak(file: str, count: int, seed: int, hold_s: float, rate: float, ovs_shards: int, json_out: str, prefix: str,
         hosts_per_site: int | None) -> None:
    """Fault soak: up, deploy (synchronous replication), then faults of every kind under the citizens'
    load, each repaired and checked (flows outside its cut set never lost, the intent matrix back,
    the switches holding the compiled program, no acknowledged submission lost); the outage per
    fault kind; down. Exit 1 when a fault failed a check."""
    from egovlab import soak as soakmod
    from egovlab.services.placement import plan_deployment

    sc = loader.load(file)  # refused before anything starts: a scenario the soak cannot deploy on
    plan_deployment(sc, emulation_plan(sc, prefix=prefix, hosts_per_site=hosts_per_site), "sync")
    t0 = time.monotonic()
    with lifecycle.session(file, lifecycle.spec(prefix, hosts_per_site, ovs_shards=ovs_shards),
                           ConsoleReporter()) as lab:
        pids = lab.pids
        dep, _ = _deploy(lab.scenario, lab.plan, pids, "sync")
        run = soakmod.Soak(lab, dep, hold_s=hold_s, rate=rate, seed=seed, progress=console.print)
        faults = soakmod.draw(run.targets(), count, seed)
        reports = run.run(faults)
    result = soakmod.report(reports, time.monotonic() - t0, seed)
    _report_soak(result)
    write_file(Path(json_out), json.dumps(result, indent=1))
    console.print(f"wrote {json_out}")
    if result["failed"]:
        sys.exit(1)


def _report_soak(result: dict) -> None:
    table = Table(title=f"soak: {result['faults']} faults, {result['failed']} failed a check, "
                        f"{result['lost']} of {result['acknowledged']} acknowledged submissions lost, "
                        f"{result['wall_s']:.0f} s")
    for col in ("kind", "faults", "failed", "outage p50 / p95 / max", "citizens' longest wait p50 / max"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for kind, k in result["kinds"].items():
        o, w = k["outage_ms"], k["service_wait_s"]
        unit = " s" if kind == "dc-dark" else " ms"
        scale = 1000 if kind == "dc-dark" else 1
        outage = " / ".join("—" if o[q] is None else f"{o[q] / scale:.{1 if scale > 1 else 0}f}"
                            for q in ("p50", "p95", "max")) + unit
        wait = " / ".join("—" if w[q] is None else f"{w[q]:.1f}" for q in ("p50", "max")) + " s"
        table.add_row(kind, str(k["faults"]), str(k["failed"]), outage, wait)
    table.caption = ("outage: the longest stall of a flow the fault moved (probe trains every 10 ms); for the DC "
                     "dark, the failover's RTO")
    console.print(table)


COMMANDS = [deploy, drill, failback, soak]
