"""Problems found in an input, reported all at once as `FILE: field.path: message`."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    path: str  # field path inside the scenario, e.g. "sites.cao-lanh.uplinks[1]"
    message: str

    def render(self, source: str) -> str:
        return f"{source}: {self.path}: {self.message}" if self.path else f"{source}: {self.message}"


class EgovlabError(Exception):
    """Bad input from a user (scenario, argument, request): shown as a message, exit code 2."""

    exit_code = 2


class InputError(EgovlabError):
    """One or more problems in an input file or upload (scenario, allocations, suite, policy)."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(p.render(source) for p in problems))


def join_path(*parts: str | int) -> str:
    """Join field-path parts: names with '.', list indices as '[i]'."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "":
            out += f".{part}" if out else str(part)
    return out
