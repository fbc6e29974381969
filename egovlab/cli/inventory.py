"""The scenario verbs (no lab): validate, show, plan, export."""
from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import click
from rich.table import Table
from rich.tree import Tree

from egovlab.inventory import addressing, export, loader
from egovlab.inventory.errors import EgovlabError
from egovlab.inventory.graph import site_tree
from egovlab.inventory.scenario import Scenario
from egovlab.inventory.units import format_bandwidth

from egovlab import params

from .common import ALLOCATIONS, HOSTS, SCENARIO, check_prefix, console, write_file

def _load(file: str, allocations: str | None = None) -> Scenario:
    return loader.load(file, allocations)


@click.command()
@SCENARIO
@ALLOCATIONS
def validate(file: str, allocations: str | None) -> None:
    """Check a scenario: schema, references, policy, address pools. Exit 2 on any problem."""
    sc = _load(file, allocations)
    plan = sc.plan
    console.print(f"[green]ok[/green] {sc.source}: scenario '{sc.name}': {len(sc.sites)} sites, "
                  f"{len(sc.links)} links, {sum(1 for _ in sc.servers())} servers, {len(sc.spec.services)} services, "
                  f"{len(sc.spec.policy.allow)} policy flows, {len(plan.hosts)} addressed hosts")
    if plan.new:
        console.print(f"[yellow]note[/yellow] {len(plan.new)} block(s) are not in the allocation file yet; "
                      f"`egovlab plan {file} --save` records them")


@click.command()
@SCENARIO
@click.option("--all", "expand", is_flag=True, help="List every commune instead of a count per district.")
def show(file: str, expand: bool) -> None:
    """Counts per site kind and link kind, and the tree of sites."""
    sc = _load(file)
    kinds = Counter(s.kind for s in sc.sites.values())
    table = Table(title=f"{sc.spec.title or sc.name}")
    table.add_column("site kind")
    table.add_column("sites", justify="right")
    table.add_column("hosts", justify="right")
    table.add_column("generated", justify="right")
    for kind, count in kinds.most_common():
        names = [n for n, s in sc.sites.items() if s.kind == kind]
        table.add_row(kind, str(count), str(sum(sc.host_count(n) for n in names)),
                      str(sum(1 for n in names if sc.sites[n].generated)))
    table.add_row("[bold]total", f"[bold]{len(sc.sites)}", f"[bold]{sum(sc.host_count(n) for n in sc.sites)}", "")
    console.print(table)

    links = Table(title="links")
    for col in ("link kind", "links", "primary", "backup", "bandwidth"):
        links.add_column(col, justify="left" if col == "link kind" else "right")
    for kind, count in Counter(l.kind for l in sc.links).most_common():
        of_kind = [l for l in sc.links if l.kind == kind]
        bws = sorted({l.bandwidth for l in of_kind})
        links.add_row(kind, str(count), str(sum(l.role == "primary" for l in of_kind)),
                      str(sum(l.role == "backup" for l in of_kind)), ", ".join(format_bandwidth(b) for b in bws))
    console.print(links)

    servers = list(sc.servers())
    dcs = Table(title="data centres")
    for col in ("site", "zone", "servers", "cores", "services"):
        dcs.add_column(col)
    for dc in sc.data_centres():
        for zone in sc.sites[dc].zones:
            here = [r for r in servers if r.site == dc and r.zone == zone]
            svcs = sorted({s for r in here for s in r.server.runs})
            dcs.add_row(dc, zone, str(len(here)), str(sum(r.cores for r in here)), ", ".join(svcs))
    console.print(dcs)

    children = site_tree(sc)
    tree = Tree(f"[bold]{sc.name}")

    def grow(node: Tree, parent: str | None) -> None:
        kids = children.get(parent, [])
        communes = [k for k in kids if sc.sites[k].kind == "commune"]
        for kid in kids:
            if sc.sites[kid].kind == "commune" and not expand:
                continue
            site = sc.sites[kid]
            label = f"{kid} [dim]{site.kind}, {sc.stages[kid]}[/dim]" + (f" — {site.title}" if site.title else "")
            grow(node.add(label), kid)
        if communes and not expand:
            node.add(f"[dim]{len(communes)} communes[/dim]")

    grow(tree, None)
    console.print(tree)


def _plan_rows(sc: Scenario, view: str) -> tuple[list[str], list[list[str]]]:
    plan = sc.plan
    s = lambda v: "" if v is None else str(v)  # noqa: E731
    if view == "hosts":
        header = ["host", "site", "zone", "role", "ipv4", "ipv6", "mgmt_ipv4", "mgmt_ipv6"]
        rows = [[h.name, h.site, s(h.zone), h.role, s(h.ipv4), s(h.ipv6), s(h.mgmt_ipv4), s(h.mgmt_ipv6)]
                for h in plan.hosts.values()]
    elif view == "links":
        header = ["link", "a", "b", "ipv4", "ipv6"]
        rows = [[l.name, l.a, l.b, s(l.ipv4) if l.v4_active else "", s(l.ipv6) if l.v6_active else ""]
                for l in plan.links.values()]
    else:
        header = ["subnet", "site", "kind", "stage", "ipv4", "ipv6", "gateway4", "gateway6"]
        rows = [[n.key, n.site, sc.sites[n.site].kind, sc.stages[n.site],
                 s(n.ipv4) if n.v4_active else "", s(n.ipv6) if n.v6_active else "", s(n.gateway4), s(n.gateway6)]
                for n in plan.subnets.values()]
    return header, rows


def plan_json(sc: Scenario) -> dict:
    views = {}
    for view in ("subnets", "hosts", "links"):
        header, rows = _plan_rows(sc, view)
        views[view] = [dict(zip(header, r)) for r in rows]
    return {"scenario": sc.name, "ipv6_phase": sc.phase.name if sc.phase else None, **views,
            "allocations": sc.plan.allocations}


@click.command()
@SCENARIO
@ALLOCATIONS
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--view", type=click.Choice(["subnets", "hosts", "links"]), default="subnets", show_default=True,
              help="What to list (json always has all three).")
@click.option("--save", is_flag=True, help="Record the allocations so later plans keep these addresses.")
def plan(file: str, allocations: str | None, fmt: str, view: str, save: bool) -> None:
    """The dual-stack address plan: subnets, host addresses, link addresses."""
    sc = _load(file, allocations)
    if fmt == "json":
        click.echo(json.dumps(plan_json(sc), indent=2))
    else:
        header, rows = _plan_rows(sc, view)
        if fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
            click.echo(buf.getvalue(), nl=False)
        else:
            phase = f", IPv6 phase '{sc.phase.name}'" if sc.phase else ""
            table = Table(title=f"address plan of '{sc.name}' ({view}{phase})")
            for col in header:
                table.add_column(col, no_wrap=True)
            for row in rows:
                table.add_row(*row)
            console.print(table)
    if save:
        path = Path(allocations) if allocations else addressing.allocation_path(loader.resolve_path(file))
        write_file(path, addressing.allocation_text(sc.plan.allocations))
        click.echo(f"saved {len(sc.plan.allocations)} allocations to {path}", err=True)
    elif sc.plan.new and fmt == "table":
        click.echo(f"note: {len(sc.plan.new)} new block(s) not recorded; add --save to keep them stable", err=True)


@click.group("export")
def export_() -> None:
    """Export the scenario for other tools."""


@export_.command("ansible-inventory")
@SCENARIO
@ALLOCATIONS
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
def export_ansible(file: str, allocations: str | None, output: str | None) -> None:
    """An Ansible YAML inventory: hosts grouped by zone, site kind, DC and service."""
    text = export.ansible_inventory_yaml(_load(file, allocations))
    if output:
        write_file(Path(output), text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


@export_.command("nuts")
@SCENARIO
@click.option("--prefix", default="eg", show_default=True, callback=check_prefix,
              help="The lab the bundle is for (interface names carry its prefix).")
@click.option("--hosts-per-site", type=params.HOSTS_PER_SITE.click(integer=True), default=None,
              help="As the lab was brought up with (default: the scenario's).")
@click.option("-o", "--output", default="out/nuts", show_default=True, type=click.Path(file_okay=False),
              help="Directory for nr-config.yaml and test-egovlab.yaml.")
def export_nuts(file: str, prefix: str, hosts_per_site: int | None, output: str) -> None:
    """A NUTS test bundle of the lab (LLDP neighbours, interfaces, allowed and denied pings),
    from its plan; NUTS runs it through egovlab's NAPALM driver against the running lab."""
    from egovlab import nuts_bundle
    from egovlab.topology.model import emulation_plan

    sc = _load(file)
    plan = emulation_plan(sc, prefix=prefix, hosts_per_site=hosts_per_site)
    for name, text in nuts_bundle.texts(sc, plan).items():
        write_file(Path(output) / name, text)
        click.echo(f"wrote {Path(output) / name}")
    click.echo(f"run: EGOVLAB_TOKEN=... pytest {Path(output) / 'test-egovlab.yaml'} --nornir-config "
               f"{Path(output) / 'nr-config.yaml'}", err=True)


@export_.command("clab")
@SCENARIO
@click.option("--prefix", default="cl", show_default=True, callback=check_prefix,
              help="Prefix of the Open vSwitch bridges' names (distinct from any egovlab lab's on the host).")
@HOSTS
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="The topology file  [default: out/clab/SCENARIO.clab.yml]; bridges.sh and netem.sh beside it.")
def export_clab(file: str, prefix: str, hosts_per_site: int | None, output: str | None) -> None:
    """A containerlab topology of the lab (linux nodes, ovs-bridge switches, veth links with
    their interfaces and addresses), validated against containerlab's own schema, with the
    scripts that make its bridges (before deploy) and impair its links (after)."""
    import yaml

    from egovlab.topology import clab
    from egovlab.topology.model import emulation_plan

    sc = _load(file)
    plan = emulation_plan(sc, prefix=prefix, hosts_per_site=hosts_per_site)
    doc = clab.topology(sc, plan)
    if problems := clab.problems(doc):  # egovlab's fault, not the user's: say where
        raise RuntimeError("the containerlab export breaks containerlab's schema: "
                           + "; ".join(p.render("topology") for p in problems[:5]))
    path = Path(output or f"out/clab/{sc.name}.clab.yml")
    write_file(path, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    click.echo(f"wrote {path}: {len(doc['topology']['nodes'])} nodes, {len(doc['topology']['links'])} links "
               "(valid against containerlab's schema)")
    for name, text in clab.scripts(sc, plan).items():
        write_file(path.parent / name, text)
        (path.parent / name).chmod(0o755)
        click.echo(f"wrote {path.parent / name}")


@export_.command("netlab")
@SCENARIO
@click.option("--prefix", default="nl", show_default=True, callback=check_prefix,
              help="Prefix of the node names (netlab's are identifiers of at most 16 characters).")
@HOSTS
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="The topology file  [default: out/netlab/SCENARIO/topology.yml]; run `netlab create` beside it.")
def export_netlab(file: str, prefix: str, hosts_per_site: int | None, output: str | None) -> None:
    """A netlab topology of the lab (linux hosts, FRR bridges with STP, the links with their
    interfaces and addresses, a group per site kind), for `netlab create` / `netlab up`."""
    import yaml

    from egovlab.topology import netlab
    from egovlab.topology.model import emulation_plan

    sc = _load(file)
    plan = emulation_plan(sc, prefix=prefix, hosts_per_site=hosts_per_site)
    doc = netlab.topology(sc, plan)
    path = Path(output or f"out/netlab/{sc.name}/topology.yml")
    write_file(path, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    click.echo(f"wrote {path}: {len(doc['nodes'])} nodes, {len(doc['links'])} links; next: cd {path.parent} && "
               "netlab create")


@export_.command("netbox")
@SCENARIO
@click.option("--prefix", default="eg", show_default=True, callback=check_prefix,
              help="The lab whose interface names the interfaces carry.")
@HOSTS
@click.option("-o", "--output", default=None, type=click.Path(file_okay=False),
              help="Directory for the import files  [default: out/netbox/SCENARIO].")
@click.option("--push", "url", default=None, help="Also make the NetBox at this URL hold everything (pynetbox): created, or updated where it "
                   "differs; a second push changes nothing.")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A file holding the NetBox API token (with --push).")
def export_netbox(file: str, prefix: str, hosts_per_site: int | None, output: str | None, url: str | None,
                  token_file: str | None) -> None:
    """NetBox bulk-import files (regions, sites, device roles and types, devices, interfaces,
    cables, prefixes, IP addresses, services), numbered in import order; --push puts them in a NetBox."""
    from egovlab.topology import netbox
    from egovlab.topology.model import emulation_plan

    if url and not token_file:
        raise click.UsageError("--push needs --token-file", ctx=click.get_current_context())
    sc = _load(file)
    plan = emulation_plan(sc, prefix=prefix, hosts_per_site=hosts_per_site)
    data = netbox.rows(sc, plan)
    directory = Path(output or f"out/netbox/{sc.name}")
    for name, text in netbox.texts(data).items():
        write_file(directory / name, text)
        click.echo(f"wrote {directory / name}: {len(data[name])} rows")
    if url:
        import pynetbox

        api = pynetbox.api(url, token=Path(token_file).read_text().strip())
        try:
            netbox.push(api, data, progress=click.echo)
        except (pynetbox.RequestError, OSError) as exc:
            raise EgovlabError(f"NetBox at {url}: {exc}") from None


@export_.command("graph")
@SCENARIO
@click.option("-o", "--output", default="out/topology", show_default=True,
              help="Output path without extension: writes OUTPUT.dot and OUTPUT.png.")
@click.option("--png/--no-png", default=True, show_default=True, help="Also render a PNG with Graphviz.")
@click.option("--layout", type=click.Choice(["twopi", "neato", "sfdp", "dot", "circo"]), default="twopi",
              show_default=True)
def export_graph(file: str, output: str, png: bool, layout: str) -> None:
    """The topology as Graphviz DOT and a PNG picture."""
    sc = _load(file)
    try:
        written = export.write_graph(sc, Path(output), png=png, layout=layout)
    except OSError as exc:
        raise EgovlabError(f"{output}: cannot write: {exc.strerror}") from None
    for path in written:
        click.echo(f"wrote {path}")


@click.group("import")
def import_() -> None:
    """Read a lab another tool keeps back into a scenario."""


@import_.command("clab")
@click.argument("topology", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The scenario file to write.")
def import_clab(topology: str, output: str) -> None:
    """A scenario skeleton (sites, links, address pools) from a containerlab topology that
    `egovlab export clab` wrote; it validates (services and policy are yours to add)."""
    import yaml

    from egovlab.inventory import loader, safe_yaml
    from egovlab.inventory.errors import InputError, Problem
    from egovlab.topology import clab

    doc = safe_yaml.read(topology)
    if not isinstance(doc, dict):
        raise InputError(topology, [Problem("", f"expected a containerlab topology (a mapping), got "
                                                f"{type(doc).__name__}")])
    if problems := clab.problems(doc):
        raise InputError(topology, problems[:20])
    skeleton = clab.scenario_skeleton(doc, topology)
    sc = loader.load_data(skeleton, output)  # what is written validates
    head = f"# imported by `egovlab import clab {Path(topology).name}`: add services and policy to use it as a lab\n"
    write_file(Path(output), head + yaml.safe_dump(skeleton, sort_keys=False, allow_unicode=True))
    click.echo(f"wrote {output}: scenario '{sc.name}', {len(sc.sites)} sites, {len(sc.links)} links (valid)")


COMMANDS = [validate, show, plan, export_, import_]
