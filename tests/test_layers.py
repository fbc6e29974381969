"""The import layers, enforced: inventory below topology, topology below sdn / services /
simulation / vm, the CLI and the API (egovlab/) on top, the NAPALM driver beside them. A new
import that breaks a layer fails here; the sideways imports between engines that exist for a
reason are listed, each with it."""
from __future__ import annotations

import ast

from .conftest import ROOT

PACKAGES = {"inventory": 0, "topology": 1, "sdn": 2, "services": 2, "simulation": 2, "vm": 2, "egovlab": 3,
            "napalm_egovlab": 3}
SIDEWAYS: dict[tuple[str, str], str] = {}  # (importer, imported) -> why; none today


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "egovlab":
        return parts[1] if len(parts) > 1 and parts[1] in PACKAGES else "egovlab"
    return parts[0] if parts[0] in PACKAGES else None


def imports() -> list[tuple[str, str, str]]:
    """(file, importing package, imported package) for every import of one of ours."""
    out = []
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level:
                    continue  # relative: inside the same package
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
                for name in names:
                    target = _package_of(name)
                    if target and target != pkg:
                        out.append((str(path.relative_to(ROOT)), pkg, target))
    return out


def test_every_import_goes_down_the_layers_or_is_a_listed_sideways_one():
    wrong = [f"{f}: {a} imports {b}" for f, a, b in imports()
             if PACKAGES[b] > PACKAGES[a] or (PACKAGES[b] == PACKAGES[a] and (a, b) not in SIDEWAYS)]
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_the_listed_sideways_imports_still_exist():
    used = {(a, b) for _, a, b in imports()}
    assert set(SIDEWAYS) <= used, set(SIDEWAYS) - used
