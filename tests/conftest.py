"""Shared fixtures. Paths are absolute so tests run from any working directory."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
DONGTHAP = ROOT / "inventory" / "dongthap.yml"
EGOVLAB = ROOT / ".venv" / "bin" / "egovlab"


@pytest.fixture(scope="session")
def dongthap():
    from egovlab.inventory import loader
    return loader.load(DONGTHAP)


@pytest.fixture
def mini_text() -> str:
    return (SCENARIOS / "mini.yml").read_text()
