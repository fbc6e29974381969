"""The `egovlab` command line: one module per verb group, registered in `commands.py`.

Each verb module defines its commands with `click.command`/`click.group` and lists them in
`COMMANDS`; it imports only `common` (and public names of other verb modules), never this
package, so there is no import cycle. `main` installs the signal handling before the verbs
(and the engines they import) are loaded, so an interrupt while starting ends quietly.
"""
from __future__ import annotations

import signal
import sys


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C: every verb's cleanup runs


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from .commands import cli
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM while loading: nothing was made yet
        sys.exit(130)
    cli(prog_name="egovlab")


def __getattr__(name: str):
    if name == "cli":  # `from egovlab.cli import cli`: the group, loaded when asked for
        from .commands import cli

        return cli
    raise AttributeError(f"module 'egovlab.cli' has no attribute {name!r}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
