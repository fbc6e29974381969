"""`egovlab policy`: a running lab's access policy — show it, diff a candidate against it, commit
one (the lab's controller applies it at once, hitlessly), roll back. The same operations as the
API's /policy routes and NAPALM's config methods (`egovlab.policy_changes`)."""
from __future__ import annotations

import json

import click
from rich.syntax import Syntax

from egovlab import policy_changes
from egovlab.inventory import safe_yaml

from .common import PREFIX, console

CANDIDATE = click.argument("candidate", metavar="CANDIDATE", type=click.Path(dir_okay=False))
MODE = click.option("--mode", type=click.Choice(["merge", "replace"]), default="merge", show_default=True,
                    help="merge: add the candidate's flows; replace: they become the whole policy.")


@click.group()
def policy() -> None:
    """A running lab's access policy: show, diff, commit, rollback.

    CANDIDATE is YAML in the scenario's policy format: a list of flows, {allow: [...]} or
    {policy: {allow: [...]}}."""


@policy.command("show")
@PREFIX
def policy_show(prefix: str) -> None:
    """The policy in force and its version (0: the scenario's own)."""
    now = policy_changes.current(prefix)
    console.print(f"lab '{prefix}': policy version {now['version']} ({now['source']})")
    console.print(Syntax(now["policy"], "yaml", theme="ansi_light"))


@policy.command("diff")
@CANDIDATE
@MODE
@click.option("--device", default=None, help="Only this switch's rules (a node name, label or site:role).")
@PREFIX
def policy_diff(candidate: str, mode: str, device: str | None, prefix: str) -> None:
    """What committing CANDIDATE would change: the policy's diff and each switch's rules."""
    result = policy_changes.compare(prefix, safe_yaml.read_text(candidate), mode, device)
    console.print(Syntax(result["policy_diff"] or "(the policy does not change)\n", "diff", theme="ansi_light"))
    for switch, diff in result["rules"].items():
        console.print(f"[bold]{switch}[/bold]")
        console.print(Syntax(diff, "diff", theme="ansi_light"))
    console.print(f"{result['changed_rules']} rules change on {result['changed_switches']} switches")


@policy.command("commit")
@CANDIDATE
@MODE
@PREFIX
def policy_commit(candidate: str, mode: str, prefix: str) -> None:
    """Commit CANDIDATE: the lab's controller moves every switch to it now."""
    result = policy_changes.commit(prefix, safe_yaml.read_text(candidate), mode)
    console.print(f"policy version {result['version']} in force: {result['changed_rules']} rule changes sent in "
                  f"{result['seconds']} s")
    click.echo(json.dumps(result))


@policy.command("rollback")
@PREFIX
def policy_rollback(prefix: str) -> None:
    """Back to the previous policy version."""
    result = policy_changes.rollback(prefix)
    console.print(f"policy version {result['version']} in force again: {result['changed_rules']} rule changes")
    click.echo(json.dumps(result))


COMMANDS = [policy]
