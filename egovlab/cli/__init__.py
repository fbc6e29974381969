"""The `egovlab` command line: one module per verb group, registered here explicitly.

Each verb module defines its commands with `click.command`/`click.group` and lists them in
`COMMANDS`; it imports only `common` (and public names of other verb modules), never this
package, so there is no import cycle.
"""
from __future__ import annotations

import signal
import sys

import click

from egovlab import __version__

from . import analyze, inventory, lab, policy, serve, services, simulation, suites, verify, vm
from .common import Group


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="egovlab")
def cli() -> None:
    """egovlab: emulate, simulate and provision a province's e-government infrastructure.

    FILE is a scenario YAML file, or the name of a built-in scenario ('dongthap').
    """


for _module in (inventory, verify, analyze, lab, suites, policy, services, simulation, serve, vm):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C: every verb's cleanup runs


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    cli(prog_name="egovlab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
