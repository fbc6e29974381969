"""The code base's own hygiene, checked like everything else."""
from __future__ import annotations

import subprocess

from .conftest import ROOT


def test_ruff_check_is_clean():
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "ruff"), "check", "--no-cache", str(ROOT)], capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
