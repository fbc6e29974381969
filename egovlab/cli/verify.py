"""`egovlab verify`: the compiled program against the intended policy, exhaustively, no lab needed."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.table import Table

from egovlab import operations, params
from egovlab.inventory import loader

from .common import ALLOCATIONS, check_prefix, console, write_file


@click.command()
@click.argument("file", metavar="[FILE]", required=False)
@ALLOCATIONS
@click.option("--prefix", default=None, callback=check_prefix,
              help="Verify the running lab with this prefix instead of FILE: the scenario (and policy version) "
                   "it runs from its record, with the links cut on it now.")
@click.option("--fault", "faults", multiple=True, metavar="LINK|SWITCH",
              help="Verify with this link (or switch) down; repeat for several.")
@click.option("--reconverged", is_flag=True,
              help="With --fault: the program the controller installs once it knows of the faults, "
                   "instead of the installed one repairing them with its fast-failover groups.")
@click.option("--hosts-per-site", type=params.HOSTS_PER_SITE.click(integer=True), default=None,
              help="Representative hosts per LAN (default: the scenario's).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the whole report as JSON.")
def verify(file: str | None, allocations: str | None, prefix: str | None, faults: tuple[str, ...],
           reconverged: bool, hosts_per_site: int | None, json_out: str | None) -> None:
    """Prove the controller's program equals the policy: every host pair, port class and IP
    version, walked through the compiled tables (exit 0 equal, 1 different, 2 bad input)."""
    from egovlab.inventory.policy import Intent
    from egovlab.sdn import verify as verifier
    from egovlab.topology import faults as lab_faults
    from egovlab.topology.model import emulation_plan

    if (file is None) == (prefix is None):
        raise click.UsageError("give a scenario FILE or the --prefix of a running lab (one of them)")
    known_down: frozenset[str] = frozenset()
    if prefix is not None:
        if allocations or hosts_per_site is not None:
            raise click.UsageError("--allocations and --hosts-per-site come from the lab's record with --prefix")
        _, sc, plan = operations.running_lab(prefix)
        known_down = frozenset(lab_faults.cut_interfaces(plan))
        console.print(f"lab '{prefix}': scenario '{sc.name}' from its record, {len(known_down)} interfaces cut")
    else:
        sc = loader.load(file, allocations)
        plan = emulation_plan(sc, hosts_per_site=hosts_per_site)
    t0 = time.perf_counter()
    programs, down = verifier.program(sc, plan, list(faults), reconverged, known_down)
    t1 = time.perf_counter()
    with console.status(f"walking {sum(len(p.rules) for p in programs.values()):,} rules from {len(plan.hosts)} hosts"):
        report = verifier.verify(Intent(sc), plan, programs, down, list(faults))
    t2 = time.perf_counter()
    s = report.summary()
    table = Table(title=f"verify '{sc.name}'" + (f" on lab '{prefix}'" if prefix else "")
                  + (f" with {', '.join(faults)} down" if faults else "")
                  + (" (re-converged)" if reconverged else ""))
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in ("sources", "pairs", "classes", "rules", "rule_evaluations", "permitted_classes", "intended_classes",
                "differences", "black_holes", "loops", "shadowed_rules"):
        table.add_row(key.replace("_", " "), f"{s[key]:,}")
    table.add_row("meters (DDoS, per switch)", ", ".join(f"{k}: {v}" for k, v in s["meters"].items()) or "none")
    console.print(table)
    if report.differences:
        diff = Table(title=f"{len(report.differences)} differences from intent (first 20)")
        for col in ("source", "destination", "IPv", "class", "intended", "program", "outcome", "deciding rule"):
            diff.add_column(col)
        for d in report.differences[:20]:
            diff.add_row(d["source"], d["destination"], str(d["family"]), d["class"], str(d["intended"]),
                         str(d["verified"]), d["outcome"], d["rule"])
        console.print(diff)
    verdict = "[green]the program equals the intent[/green]" if report.equal else "[red]the program differs[/red]"
    console.print(f"{verdict}: {s['classes']:,} classes in {t2 - t1:.1f} s (compiled in {t1 - t0:.1f} s)")
    if json_out:
        lab = {"lab": {"prefix": prefix, "cut_interfaces": sorted(known_down)}} if prefix else {}
        write_file(Path(json_out), json.dumps({**report.as_json(), **lab, "wall_s": {"compile": round(t1 - t0, 3),
                                                                              "verify": round(t2 - t1, 3)}},
                                              indent=1))
        console.print(f"wrote {json_out}")
    if not report.equal:
        sys.exit(1)


COMMANDS = [verify]
