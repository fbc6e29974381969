"""The `egovlab` group and every verb module's `COMMANDS`, registered explicitly."""
from __future__ import annotations

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

