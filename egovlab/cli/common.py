"""What every verb module of the CLI shares: the console, the error boundary, the common options."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

from egovlab import operations, params
from egovlab.inventory.errors import EgovlabError
from egovlab.topology.model import DEFAULT_PREFIX

# Piped or in CI, rich would assume 80 columns and squeeze the address columns into "…".
console = Console(soft_wrap=False, emoji=False, width=None if sys.stdout.isatty() else 200)


class Group(click.Group):
    """Bad input ends with its message on stderr and exit code 2, never a traceback; a fault of
    egovlab itself or of a dependency with one line and exit code 1 (EGOVLAB_DEBUG=1 shows it)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EgovlabError as exc:
            click.echo(str(exc), err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("EGOVLAB_DEBUG"):
                raise
            click.echo(f"egovlab: internal error: {type(exc).__name__}: {exc} (EGOVLAB_DEBUG=1 shows where)",
                       err=True)
            ctx.exit(1)


def write_file(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise EgovlabError(f"{path}: cannot write: {exc.strerror}") from None


def check_prefix(ctx, param, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return operations.check_prefix(value)
    except EgovlabError as exc:
        raise click.BadParameter(str(exc)) from None


SCENARIO = click.argument("file", metavar="FILE")
ALLOCATIONS = click.option("--allocations", type=click.Path(dir_okay=False),
                           help="Allocation file to keep addresses stable (default: FILE's .allocations.yml).")
PREFIX = click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, callback=check_prefix,
                      help="Name prefix of the lab's nodes, so several labs can share a machine.")
HOSTS = click.option("--hosts-per-site", type=params.HOSTS_PER_SITE.click(integer=True), default=None,
                     help="Cap representative hosts per site (default: the scenario's).")
