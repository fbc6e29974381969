"""`egovlab analyze`: what failures would do, from the model alone (no lab, no root)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.table import Table

from egovlab import params
from egovlab.inventory import loader

from .common import ALLOCATIONS, SCENARIO, console, write_file


@click.group()
def analyze() -> None:
    """Analyses of a scenario that need no lab."""


@analyze.command("resilience")
@SCENARIO
@ALLOCATIONS
@click.option("--depth", type=click.IntRange(1, 2), default=1, show_default=True,
              help="1: every single link, switch, site and data centre failure; 2: also every pair of links.")
@click.option("--hosts-per-site", type=params.HOSTS_PER_SITE.click(integer=True), default=None,
              help="Representative hosts per LAN (default: the scenario's).")
@click.option("--top", type=click.IntRange(1, 1000), default=15, show_default=True, help="Rows of each table.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the whole report as JSON.")
def resilience(file: str, allocations: str | None, depth: int, hosts_per_site: int | None, top: int,
               json_out: str | None) -> None:
    """For every failure: the intended flows lost, moved to another path, untouched; the single
    points of failure ranked by the sites and LAN users they cut off."""
    from egovlab.sdn import resilience as model
    from egovlab.topology.model import emulation_plan

    sc = loader.load(file, allocations)
    plan = emulation_plan(sc, hosts_per_site=hosts_per_site)
    t0 = time.perf_counter()
    with console.status("trying every failure" + (" and every pair of links" if depth == 2 else "")):
        report = model.analyze(sc, plan, depth)
    report["seconds"] = round(time.perf_counter() - t0, 2)
    failures = report["failures"]
    console.print(f"'{sc.name}': {report['intended_flows']:,} intended host-to-host flows between "
                  f"{report['hosts']} hosts; {len(failures)} single failures tried in {report['seconds']} s")
    spof = report["single_points_of_failure"]
    table = Table(title=f"single points of failure: {len(spof)} (a link or switch whose loss loses intended flows)")
    for col in ("failure", "flows lost", "moved", "sites cut off", "LAN users cut off"):
        table.add_column(col, justify="left" if col in ("failure", "sites cut off") else "right")
    for r in spof[:top]:
        sites = ", ".join(r["sites_cut_off"][:4]) + (f" +{len(r['sites_cut_off']) - 4}" if len(r["sites_cut_off"]) > 4
                                                     else "")
        table.add_row(f"{r['kind']} {r['target']}", f"{r['lost']:,}", f"{r['moved']:,}", sites,
                      f"{r['lan_users_cut_off']:,}")
    console.print(table)
    redundant = [r for r in failures if r["kind"] == "link" and not r["lost"]]
    console.print(f"{len(redundant)} of {sum(r['kind'] == 'link' for r in failures)} links are redundant: their loss "
                  f"moves {sum(r['moved'] for r in redundant):,} flows onto other paths and loses none")
    if depth == 2:
        pairs = report["link_pairs"]
        console.print(f"pairs of links: {pairs['pairs']:,} tried; {pairs['losing_more_together']:,} lose flows that "
                      f"neither link loses alone")
        worst = Table(title="the worst pairs")
        for col in ("links", "lost only together", "sites cut off"):
            worst.add_column(col)
        for r in pairs["worst"][:top]:
            worst.add_row(r["target"], f"{r['lost_only_together']:,}", ", ".join(r["sites_cut_off"][:6]))
        console.print(worst)
    if json_out:
        write_file(Path(json_out), json.dumps(report, indent=1))
        console.print(f"wrote {json_out}")


COMMANDS = [analyze]
