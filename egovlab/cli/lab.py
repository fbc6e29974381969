"""The lab verbs (the emulation): up, down, status, controller, check, fault, probe."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from egovlab import lifecycle, operations, params
from egovlab.inventory import loader
from egovlab.inventory.errors import EgovlabError
from egovlab.topology import faults, probes
from egovlab.topology.model import emulation_plan
from egovlab.topology.state import origin_changed, read_state, state_dir

from .common import HOSTS, PREFIX, SCENARIO, check_prefix, console, write_file

CONTROLLER = click.option("--controller", metavar="HOST:PORT", default=None,
                          help="Run the switches fail-secure under this OpenFlow controller (default: standalone).")
SDN = click.option("--sdn/--standalone", default=True, show_default=True,
                   help="Run the switches under egovlab's SDN controller (os-ken), which enforces the zone "
                        "policy, or standalone (MAC learning + RSTP, no policy). --controller overrides both.")
OVS_SHARDS = click.option("--ovs-shards", type=params.OVS_SHARDS.click(integer=True), default=1, show_default=True,
                          help="Spread the switches over this many Open vSwitch daemons, each in its own network "
                               "namespace. Every link event makes a daemon reconfigure all its bridges: with the "
                               "province in one, a cut waits ~50 ms for that (24 shards: about 9 bridges each).")


def lab_options(command):
    """The scenario and the options of every verb that brings a lab up (up, check)."""
    for option in reversed((SCENARIO, PREFIX, HOSTS, CONTROLLER, SDN, OVS_SHARDS)):
        command = option(command)
    return command


class ConsoleReporter(lifecycle.Reporter):
    """A bring-up as the CLI shows it: a progress bar per phase, then the timings."""

    def controller_started(self, prefix: str, pid: int, port: int, log: str) -> None:
        console.print(f"controller (os-ken) listening on 127.0.0.1:{port} (pid {pid}, log {log}); metrics URL "
                      f"in {state_dir(prefix) / 'controller.json'}")

    @contextlib.contextmanager
    def bringing_up(self, lab):
        with Progress(TextColumn("{task.description:<18}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, transient=not console.is_terminal) as bar:
            tasks: dict[str, int] = {}

            def progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.update(tasks[phase], completed=done)

            lab.progress = progress
            console.print(f"bringing up '{lab.scenario.name}': {len(lab.plan.switches)} switches, "
                          f"{len(lab.plan.hosts)} hosts, {len(lab.plan.links)} links ({lab.env.datapath} datapath, "
                          + (f"controller {':'.join(map(str, lab.controller))}" if lab.controller
                             else "standalone + RSTP") + ")")
            yield

    def up(self, lab) -> None:
        for warning in lab.warnings:
            click.echo(f"warning: {warning}", err=True)
        t = lab.timings
        console.print(f"[green]up[/green] in {t['up_s']:.1f} s (build {t['build_s']:.1f} s, switches "
                      f"{t['switches_s']:.1f} s, addresses {t['addresses_s']:.1f} s"
                      + (f", RSTP {t['rstp_s']:.1f} s" if "rstp_s" in t else "") + ")")

    def programmed(self, status: dict) -> None:
        console.print(f"controller programmed {len(status['installed'])} switches ({status['rules']} rules, "
                      f"{status['groups']} fast-failover groups) {status['seconds']:.1f} s after bring-up")

    def down(self, lab, removed) -> None:
        console.print(f"[green]down[/green] in {lab.timings['down_s']:.1f} s: removed {len(removed.bridges)} "
                      f"bridges, {len(removed.links)} links, {len(removed.processes)} processes")


@click.command()
@lab_options
@click.option("--cli", "with_cli", is_flag=True, help="Drop into Mininet's CLI; the lab goes down when it exits.")
@click.option("--detach", is_flag=True, help="Keep the lab up in the background; `egovlab down` stops it.")
def up(file: str, prefix: str, hosts_per_site: int | None, controller: str | None, sdn: bool, ovs_shards: int,
       with_cli: bool, detach: bool) -> None:
    """Bring the province up (namespaces + Open vSwitch) and keep it up until Ctrl-C or `egovlab down`."""
    lab_spec = lifecycle.spec(prefix, hosts_per_site, controller, sdn, ovs_shards)
    if detach:
        pid, log = lifecycle.start_detached(file, lab_spec)
        console.print(f"lab '{prefix}' is up in the background (pid {pid}, log {log})")
        return
    try:
        with lifecycle.session(file, lab_spec, ConsoleReporter()) as lab:
            if with_cli:
                from egovlab.topology import mininet_cli
                mininet_cli.run(lab.plan, lab.pids)
            else:
                console.print(f"lab '{prefix}' is up (pid {os.getpid()}): `egovlab fault ...`, `egovlab probe "
                              f"matrix`, `egovlab down` from another shell; Ctrl-C stops it")
                while True:
                    time.sleep(3600)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM or `egovlab down`: the session removed the lab
        pass


@click.command()
@SCENARIO
@PREFIX
@HOSTS
@click.option("--port", type=params.PORT.click(integer=True), default=6653, show_default=True,
              help="OpenFlow port on 127.0.0.1.")
@click.option("--metrics-port", type=params.PORT.click(integer=True), default=9101, show_default=True,
              help="Prometheus metrics on http://127.0.0.1:PORT/metrics.")
def controller(file: str, prefix: str, hosts_per_site: int | None, port: int, metrics_port: int) -> None:
    """Run egovlab's SDN controller (os-ken) in the foreground, for `up --controller 127.0.0.1:PORT`.

    It compiles the scenario for the lab with the same --prefix and --hosts-per-site.
    """
    from egovlab.sdn import launcher

    sc = loader.load(file)  # a bad scenario fails here, with its messages, not in the controller
    emulation_plan(sc, prefix=prefix, hosts_per_site=hosts_per_site)
    source = str(Path(sc.source).resolve()) if Path(sc.source).exists() else sc.source
    console.print(f"controller (os-ken) on 127.0.0.1:{port}, metrics on http://127.0.0.1:{metrics_port}/metrics")
    sys.stdout.flush()
    argv = launcher.command(source, port=port, prefix=prefix, hosts_per_site=hosts_per_site, metrics_port=metrics_port)
    os.execv(argv[0], argv)  # a fresh interpreter: eventlet must patch the standard library first


@click.command()
@click.option("--prefix", default=None, callback=check_prefix, help="Only this lab (default: every lab on this machine).")
@click.option("--json", "as_json", is_flag=True, help="The records as JSON.")
def status(prefix: str | None, as_json: bool) -> None:
    """The labs up (or coming up) on this machine: scenario, age, faults, controller, and whether
    the scenario file has changed since the lab took its snapshot (the lab runs from that)."""
    from egovlab.sdn import launcher

    rows = []
    for p in [prefix] if prefix else lifecycle.running_prefixes():
        record = read_state(p)
        if record is None or not lifecycle.is_running(p):
            raise EgovlabError(f"no lab with prefix '{p}' is up (egovlab up FILE)")
        ctl = launcher.status(p)
        rows.append({"prefix": p, "phase": record.phase, "scenario": record.scenario, "pid": record.pid,
                     "age_s": round(time.time() - record.started, 1), "switches": record.switches or None,
                     "datapath": record.datapath, "spec": record.spec.model_dump(),
                     "faults_active": len(faults.active(p)),
                     "programmed": None if ctl is None else len(ctl.get("installed", [])),
                     "policy_version": max(len(record.policy_versions) - 1, 0),
                     "origin": record.origin, "origin_now": origin_changed(record)})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        console.print("no lab is up")
        return
    table = Table(title="labs on this machine")
    for col in ("prefix", "phase", "scenario", "pid", "age", "switches", "programmed", "faults", "source file"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["prefix"], r["phase"], str(r["scenario"] or ""), str(r["pid"]), f"{r['age_s']:.0f} s",
                      str(r["switches"] or ""), "" if r["programmed"] is None else str(r["programmed"]),
                      str(r["faults_active"]), f"{r['origin_now']}" + (" since the lab started (it runs from its "
                                                                        "snapshot)" if r["origin_now"] != "unchanged"
                                                                        else ""))
    console.print(table)


@click.command()
@PREFIX
def down(prefix: str) -> None:
    """Stop the lab and remove everything it made (idempotent; safe when nothing runs)."""
    was_up, removed = lifecycle.stop(prefix)
    what = "lab removed" if was_up else "nothing was running"
    console.print(f"{what} (prefix '{prefix}'): {len(removed.bridges)} bridges, {len(removed.links)} links, "
                  f"{len(removed.processes)} processes cleaned up here")


@click.group(invoke_without_command=False)
def fault() -> None:
    """Inject and clear faults on the running lab; every fault is timestamped."""


def _fault_command(action: str, help_text: str, metavar: str):
    @fault.command(action, help=help_text)
    @click.argument("target", metavar=metavar)
    @PREFIX
    def command(target: str, prefix: str) -> None:
        rec = operations.inject_fault(prefix, action, target)
        console.print(f"{rec.iso} {action} {target}: {len(rec.interfaces)} interface(s)")

    return command


for _action, _help, _metavar in (
        ("link-down", "Cut a scenario link (both ends down).", "LINK"),
        ("link-up", "Repair a scenario link.", "LINK"),
        ("switch-down", "Fail a switch: every port down.", "SWITCH"),
        ("switch-up", "Repair a switch.", "SWITCH"),
        ("isolate", "Cut every link between a site and the rest of the province.", "SITE"),
        ("restore", "Undo `isolate`.", "SITE"),
        ("dc-down", "Take a whole data centre dark.", "DC"),
        ("dc-up", "Bring a data centre back.", "DC")):
    _fault_command(_action, _help, _metavar)


@fault.command("list")
@PREFIX
def fault_list(prefix: str) -> None:
    """Every fault injected on the running lab, with its time."""
    if read_state(prefix) is None:
        raise EgovlabError(f"no lab with prefix '{prefix}' is up")
    table = Table(title=f"faults of lab '{prefix}'")
    for col in ("time (UTC)", "action", "target", "interfaces"):
        table.add_column(col)
    for rec in faults.history(prefix):
        table.add_row(rec.iso, rec.action, rec.target, str(len(rec.interfaces)))
    console.print(table)


@fault.command("clear")
@PREFIX
def fault_clear(prefix: str) -> None:
    """Repair everything the faults took down."""
    console.print(f"cleared: {len(operations.clear_faults(prefix))} interface(s) back up")


@click.group()
def probe() -> None:
    """Probe the running lab: the reachability matrix, the failover outage."""


def render_matrix(results: list[probes.ProbeResult], title: str) -> Table:
    """Targets down, sources across: a province has more targets than source kinds."""
    sources = list(dict.fromkeys(r.probe.source for r in results))
    targets = list(dict.fromkeys(r.probe.target for r in results))
    table = Table(title=title, caption="4/6: IPv4/IPv6; ✓ reached, ✗ not, ~ some ports; red ! differs from intent")
    table.add_column("to \\ from", no_wrap=True)
    for s in sources:
        table.add_column(s.replace("kind:", "").replace("zone:", "zone "), justify="center", max_width=12)
    cells: dict[tuple[str, str], list] = {}
    for r in results:
        cells.setdefault((r.probe.target, r.probe.source), []).append(r)
    for target in targets:
        row = []
        for source in sources:
            mine = cells.get((target, source), [])
            colour = "red" if any(r.differs for r in mine) else "green" if any(r.reachable for r in mine) else "dim"
            row.append(f"[{colour}]{probes.cell(mine)}[/{colour}]" if mine else "")
        ports = sorted({r.probe.port for r in results if r.probe.target == target})
        table.add_row(f"{target} [dim]{' '.join(ports)}[/dim]", *row)
    return table


def run_matrix(sc, plan, pids: dict[str, int], out: Path | None) -> dict:
    planned = probes.matrix_plan(sc, plan)
    t0 = time.perf_counter()
    results = probes.run_matrix(planned, pids, plan.by_label, plan.prefix)
    summary = probes.summarize(results)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    from egovlab.sdn import launcher

    if launcher.status(plan.prefix) is not None:  # egovlab's own controller: its program is known
        three_way(sc, plan, results, summary)
    console.print(render_matrix(results, f"reachability of '{sc.name}' (cells: reached/probed per IP version; "
                                         f"! differs from intent)"))
    diff = summary["differences"]
    console.print(f"{summary['probes']} probes in {summary['seconds']} s: {summary['reachable']} reachable, "
                  f"{summary['intended']} intended; [bold]{summary['differ']} differ from intent[/bold] "
                  f"({summary['denied_but_reachable']} denied but reachable, "
                  f"{summary['allowed_but_unreachable']} allowed but unreachable)")
    for d in diff[:10]:
        console.print(f"  {'ALLOWED, unreachable' if d['intended'] else 'DENIED, reachable'}: {d['src_host']} -> "
                      f"{d['dst_host']} {d['port']} IPv{d['version']}")
    if len(diff) > 10:
        console.print(f"  … and {len(diff) - 10} more (see the JSON)")
    if out:
        write_file(out, json.dumps(summary, indent=1))
        console.print(f"wrote {out}")
    return summary


def three_way(sc, plan, results: list, summary: dict) -> None:
    """Intent, the verified program and the measurement side by side: where the measurement
    differs from the program, the switches or the datapath are at fault, not the compiler."""
    from egovlab.sdn import compiler, verify

    down = faults.cut_interfaces(plan)
    programs = compiler.compile_network(sc, plan, down=down)
    verified = verify.verdicts(plan, programs, [r.probe for r in results], down)
    for row, program in zip(summary["results"], verified):
        row["verified"] = program
    program_vs_intent = [r for r in summary["results"] if r["verified"] != r["intended"]]
    measured_vs_program = [r for r in summary["results"] if r["verified"] != r["reachable"]]
    summary["three_way"] = {"program_differs_from_intent": len(program_vs_intent),
                            "measured_differs_from_program": len(measured_vs_program),
                            "switch_or_datapath_problems": [{k: r[k] for k in ("src_host", "dst_host", "port",
                                                                               "version", "verified", "reachable",
                                                                               "detail")}
                                                            for r in measured_vs_program]}
    console.print(f"three-way: the verified program differs from intent on {len(program_vs_intent)} probes; the "
                  f"measurement differs from the program on [bold]{len(measured_vs_program)}[/bold]"
                  + (" (a switch or datapath problem, not the compiler's)" if measured_vs_program else ""))
    for r in measured_vs_program[:10]:
        console.print(f"  {r['src_host']} -> {r['dst_host']} {r['port']} IPv{r['version']}: intent "
                      f"{r['intended']}, program {r['verified']}, measured {r['reachable']} ({r['detail']})")


@probe.command("matrix")
@PREFIX
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the full results as JSON.")
def probe_matrix(prefix: str, json_out: str | None) -> None:
    """Reachability from every site kind and zone to every service, zone and kind, against intent."""
    record, sc, plan = operations.running_lab(prefix)
    run_matrix(sc, plan, record.pids, Path(json_out) if json_out else None)


@probe.command("failover")
@click.argument("link")
@click.option("--from", "src", required=True, help="Source host (scenario name, e.g. h-cao-lanh-h1).")
@click.option("--to", "dst", required=True, help="Destination host (e.g. web-dvc-1).")
@click.option("--ipv6", is_flag=True, help="Probe over IPv6 instead of IPv4.")
@click.option("--interval-ms", type=params.PROBE_INTERVAL_MS.click(), default=1.0, show_default=True)
@click.option("--seconds", type=params.PROBE_SECONDS.click(), default=4.0, show_default=True)
@click.option("--port", type=params.PORT.click(integer=True), default=40404, show_default=True,
              help="UDP port of the probe (under --sdn, one the policy allows, e.g. 10000 to the MCU).")
@PREFIX
def probe_failover(link: str, src: str, dst: str, ipv6: bool, interval_ms: float, seconds: float, port: int,
                   prefix: str) -> None:
    """Send timestamped packets across a path while LINK is cut; report the outage and losses."""
    record, sc, plan = operations.running_lab(prefix)
    for host in (src, dst):
        if host not in plan.by_label and host not in plan.hosts:
            raise EgovlabError(f"unknown host '{host}' (see `egovlab plan FILE --view hosts`)")
    try:
        res = probes.failover_probe(plan, record.pids, link, src, dst, version=6 if ipv6 else 4,
                                    interval_ms=interval_ms, seconds=seconds, port=port)
    except ValueError as exc:
        raise EgovlabError(str(exc)) from None
    console.print(f"cut {res.link}: {src} -> {dst}: outage {res.outage_ms:.0f} ms, lost {res.lost} of "
                  f"{res.sent} packets at {res.interval_ms:g} ms spacing")
    click.echo(json.dumps(asdict(res)))


@click.command()
@lab_options
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default="out/check.json", show_default=True)
@click.option("--failover", "failover_link", metavar="LINK", default=None,
              help="Also cut this link under a 1 ms probe (e.g. h-cao-lanh--core-1).")
@click.option("--strict", is_flag=True, help="Exit 1 when the network differs from the intended policy.")
def check(file: str, prefix: str, hosts_per_site: int | None, controller: str | None, sdn: bool, ovs_shards: int,
          json_out: str, failover_link: str | None, strict: bool) -> None:
    """Bring the province up, probe it against the intended policy, report, and tear it down."""
    with lifecycle.session(file, lifecycle.spec(prefix, hosts_per_site, controller, sdn, ovs_shards),
                           ConsoleReporter()) as lab:
        pids = lab.pids
        if lab.controller is None:
            console.print("note: no controller: the switches learn and flood (RSTP), so zone policy is not "
                          "enforced and denied flows show up as reachable")
        summary = run_matrix(lab.scenario, lab.plan, pids, Path(json_out))
        if lab.rules:
            summary["controller"] = lab.rules
        if failover_link:
            src, dst, port = probes.failover_pair(lab.scenario, lab.plan, failover_link)
            res = probes.failover_probe(lab.plan, pids, failover_link, src, dst, port=port)
            console.print(f"failover: cut {failover_link} under {src} -> {dst} udp/{port}: outage "
                          f"{res.outage_ms:.0f} ms, lost {res.lost} of {res.sent} packets")
            summary["failover"] = asdict(res)
            write_file(Path(json_out), json.dumps(summary, indent=1))
    if strict and summary["differ"]:
        sys.exit(1)


COMMANDS = [up, down, status, controller, check, fault, probe]
