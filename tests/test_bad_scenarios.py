"""Every malformed scenario under scenarios/bad/ gives exactly the messages its header expects.

Each file starts with '# expect: FILE: field.path: message' lines: the full, exact output.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from egovlab.cli import cli
from egovlab.inventory import loader
from egovlab.inventory.errors import InputError

from .conftest import EGOVLAB, SCENARIOS

BAD = sorted((SCENARIOS / "bad").glob("*.yml"))


def expected(path: Path) -> list[str]:
    lines = [l.removeprefix("# expect: ") for l in path.read_text().splitlines() if l.startswith("# expect: ")]
    assert lines, f"{path.name} has no '# expect:' lines"
    return lines


def test_there_are_at_least_thirty_malformed_files():
    assert len(BAD) >= 30


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_loader_reports_exact_problems(path: Path):
    with pytest.raises(InputError) as info:
        loader.load_text(path.read_text(), path.name)
    assert [p.render(path.name) for p in info.value.problems] == expected(path)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_cli_validate_exits_2_with_the_messages(path: Path, monkeypatch):
    monkeypatch.chdir(path.parent)
    result = CliRunner().invoke(cli, ["validate", path.name])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # not an escaped exception
    assert result.stderr.splitlines() == expected(path)
    assert result.stdout == ""


@pytest.mark.parametrize("verb", [["validate"], ["show"], ["plan"], ["plan", "--format", "json"],
                                  ["export", "ansible-inventory"], ["export", "graph", "--no-png"]])
def test_every_verb_reports_bad_input_without_traceback(verb, tmp_path):
    """The installed console script, as a user runs it."""
    bad = SCENARIOS / "bad" / "several-problems.yml"
    proc = subprocess.run([str(EGOVLAB), *verb, str(bad)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("several-problems.yml: ") == 3
