"""`egovlab test`: scenario test suites on the emulated province, with JUnit and JSON reports."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from egovlab import lifecycle, operations
from egovlab.inventory import loader
from egovlab.inventory.errors import EgovlabError
from egovlab.topology.model import emulation_plan
from egovlab.topology.state import LabError

from .common import HOSTS, SCENARIO, check_prefix, console, write_file
from .lab import OVS_SHARDS, ConsoleReporter

EXIT = {"passed": 0, "failed": 1, "lab": 3}
DEFAULT_PREFIX = "et"  # its own lab, beside one a user may have up under the default prefix


@click.command("test")
@SCENARIO
@click.argument("suites", metavar="SUITE...", nargs=-1, required=True)  # files, or a built-in scenario's name
@click.option("--junit", "junit_out", type=click.Path(dir_okay=False), help="Write the results as JUnit XML.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the results as JSON.")
@click.option("--only", "only", multiple=True, metavar="NAME", help="Run only this test (repeat for several).")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, callback=check_prefix,
              help="Run on the lab up under this prefix; when none is, bring one up under it (and down after).")
@HOSTS
@OVS_SHARDS
def test(file: str, suites: tuple[str, ...], junit_out: str | None, json_out: str | None, only: tuple[str, ...],
         prefix: str | None, hosts_per_site: int | None, ovs_shards: int) -> None:
    """Run test suites (cut this, expect that) on the scenario's lab: each test from a clean
    baseline, every expectation predicted from the model beside what the lab measured.
    Exit 0 all passed, 1 a test failed, 2 bad input, 3 the lab itself failed."""
    from egovlab.suites import runner, schema

    running = lifecycle.is_running(prefix)
    if running:
        record, sc, plan = operations.running_lab(prefix)
        if hosts_per_site is not None:
            raise click.UsageError(f"--hosts-per-site: lab '{prefix}' is up already, with its own")
        console.print(f"on lab '{prefix}', up since its record's snapshot of '{sc.name}'")
    else:
        sc = loader.load(file)
        plan = emulation_plan(sc, prefix=prefix, hosts_per_site=hosts_per_site)
    loaded = [schema.read(path, sc, plan) for path in suites]  # every suite checked before any lab
    names = {t.name for s in loaded for t in s.tests}
    if unknown := [n for n in only if n not in names]:
        raise EgovlabError(f"--only: no test named {', '.join(map(repr, unknown))} (tests: {', '.join(sorted(names))})")
    results = []
    try:
        if running:
            handle = runner.LabHandle(sc, plan, record.pids, record.spec.own_controller)
            results = _run(loaded, only, handle)
        else:
            with lifecycle.session(file, lifecycle.spec(prefix, hosts_per_site, ovs_shards=ovs_shards),
                                   ConsoleReporter()) as lab:
                pids = lab.pids
                results = _run(loaded, only, runner.LabHandle(lab.scenario, lab.plan, pids, True))
    except LabError as exc:
        click.echo(f"the lab failed: {exc}", err=True)
        _write(loaded, sc.name, results, junit_out, json_out)
        sys.exit(3)
    _show(results)
    outcome = _write(loaded, sc.name, results, junit_out, json_out)
    sys.exit(EXIT[outcome])


def _run(loaded, only, handle) -> list:
    from egovlab.suites import runner

    run = runner.Runner(handle, progress=lambda line: console.print(f"  {line}"))
    results = []
    for suite in loaded:
        for t in suite.tests:
            if only and t.name not in only:
                continue
            console.print(f"[bold]{suite.suite}: {t.name}[/bold]")
            result = run.run(t)
            results.append(result)
            if suite.stop_on_error and not result.passed and t.level == "error":
                console.print(f"stop_on_error: '{t.name}' failed, the rest of '{suite.suite}' is not run")
                break
    return results


def _show(results) -> None:
    table = Table(title="test results")
    for col in ("test", "step", "expected", "predicted", "measured", "result"):
        table.add_column(col)
    for r in results:
        for s in r.steps:
            if s.passed is None:
                continue
            mark = "[green]pass[/green]" if s.passed else ("[yellow]warn[/yellow]" if r.level == "warning"
                                                           else "[red]FAIL[/red]")
            if s.model_agrees is False:
                mark += " [magenta](model differs)[/magenta]"
            table.add_row(r.name, s.step, s.expected, s.predicted, s.measured, mark)
        if r.error:
            table.add_row(r.name, "", "", "", r.error, "[red]LAB ERROR[/red]")
    console.print(table)


def _write(loaded, scenario: str, results, junit_out: str | None, json_out: str | None) -> str:
    from egovlab.suites import report

    name = "+".join(s.suite for s in loaded)
    if junit_out:
        write_file(Path(junit_out), report.junit(name, scenario, results))
    doc = report.as_json(name, scenario, results)
    if json_out:
        write_file(Path(json_out), json.dumps(doc, indent=1))
    console.print(f"{doc['passed']} passed, {doc['failed']} failed in {doc['seconds']} s"
                  + (f"; the model and the lab disagree on {len(doc['model_disagrees'])} step(s)"
                     if doc["model_disagrees"] else ""))
    return doc["outcome"]


COMMANDS = [test]
