"""Golden program dumps: the compiled OpenFlow program of each small test scenario, checked in, so
that any change to the compiler shows up as a reviewed diff of `tests/golden/*.program.txt`.

After an intended compiler change: `EGOVLAB_UPDATE_GOLDEN=1 make test PYTEST_ARGS=tests/test_golden_programs.py`,
then review and commit the diff (and `egovlab verify` still says the program equals the intent).
"""
from __future__ import annotations

import os

import pytest

from egovlab.inventory import loader
from egovlab.sdn import compiler, render
from egovlab.topology.model import emulation_plan

from .conftest import ROOT, SCENARIOS

GOLDEN = ROOT / "tests" / "golden"


def dump(name: str) -> str:
    sc = loader.load(SCENARIOS / name)
    plan = emulation_plan(sc)
    programs = compiler.compile_network(sc, plan)
    out = [f"# {name}: the compiled program of every switch (tests/test_golden_programs.py)"]
    for sw in sorted(plan.switches.values(), key=lambda s: s.dpid):
        out += [f"## {sw.name} {sw.label} dpid={sw.dpid}", *render.program_lines(programs[sw.dpid])]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("name", ["mini.yml", "small-dc.yml", "wan.yml"])
def test_the_compiled_program_equals_its_golden_dump(name):
    golden = GOLDEN / f"{name.removesuffix('.yml')}.program.txt"
    text = dump(name)
    if os.environ.get("EGOVLAB_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no golden dump {golden.name}: run with EGOVLAB_UPDATE_GOLDEN=1 and review it"
    assert text == golden.read_text(), f"the compiled program of {name} changed: review `git diff {golden}`"
