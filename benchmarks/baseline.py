"""A baseline from an earlier commit, measured in the same run: that commit's tree is taken out of
git (git archive, under /tmp) and a snippet runs in a fresh interpreter whose `egovlab` imports
come from it (the editable install's package map pointed there), printing its figures as JSON.
(Imported by the benchmark scripts, which run from this folder.)"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """
import sys
finder = next(m for n, m in sys.modules.items() if n.startswith("__editable___egovlab") and n.endswith("_finder"))
finder.MAPPING.update({{k: v.replace({root!r}, {tree!r}, 1) for k, v in finder.MAPPING.items()}})
"""


def tree(commit: str) -> Path:
    out = Path(f"/tmp/egovlab-baseline-{commit}")
    if not out.exists():
        out.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def run(commit: str | None, snippet: str) -> dict:
    """Run `snippet` (which prints one JSON object last) against `commit`'s code (None: the
    working tree's), from ROOT, in a fresh interpreter either way."""
    code = (PRELUDE.format(root=str(ROOT), tree=str(tree(commit))) if commit else "") + snippet
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])
