"""The import layers, enforced: inventory below topology, topology below sdn / services /
simulation / vm, the CLI and the API (egovlab/) above them, the NAPALM driver (a client of the
API that checks names with egovlab's own rules) on top. A new
import that breaks a layer fails here; the sideways imports between engines that exist for a
reason are listed, each with it."""
from __future__ import annotations

import ast

from .conftest import ROOT

PACKAGES = {"inventory": 0, "topology": 1, "sdn": 2, "services": 2, "simulation": 2, "vm": 2, "egovlab": 3,
            "napalm_egovlab": 4}
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


def _module_imports(path) -> list[tuple[str, list[str]]]:
    """(module imported, names) for every `from X import names` in a file, relative ones resolved."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    package = ["egovlab", *parts] if parts[0] in PACKAGES and parts[0] not in ("egovlab", "napalm_egovlab") else parts
    if package[-1] == "__init__":
        package = package[:-1]
    else:
        package = package[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            out.append((module, [a.name for a in node.names]))
    return out


def test_no_private_name_is_imported_from_another_module():
    """A helper another module needs is public (no leading underscore), or it stays where it is."""
    wrong = [f"{path.relative_to(ROOT)}: {name} from {module}"
             for folder in [*PACKAGES, "tests", "benchmarks"] for path in (ROOT / folder).rglob("*.py")
             for module, names in _module_imports(path) for name in names
             if name.startswith("_") and not name.startswith("__") and module.split(".")[0] in
             ("egovlab", "napalm_egovlab")]
    assert not wrong, "\n".join(wrong)


def test_the_cli_verb_modules_import_no_cycle_and_not_their_package():
    """egovlab.cli registers its verb modules; they import `common` and each other's public
    names, never `egovlab.cli` itself, and not in a circle."""
    cli = ROOT / "egovlab" / "cli"
    graph: dict[str, set[str]] = {}
    for path in cli.glob("*.py"):
        if path.name in ("__init__.py", "commands.py"):  # the package and its registry
            continue
        deps = set()
        for module, names in _module_imports(path):
            assert module != "egovlab.cli", f"{path.name} imports its package: {names}"
            if module.startswith("egovlab.cli."):
                deps.add(module.rsplit(".", 1)[1])
        graph[path.stem] = deps
    assert "inventory" in graph and "lab" in graph  # the walk found the verb modules

    def visit(node: str, trail: tuple[str, ...]) -> None:
        assert node not in trail, f"import cycle: {' -> '.join((*trail, node))}"
        for dep in graph.get(node, ()):
            visit(dep, (*trail, node))

    for module in graph:
        visit(module, ())


def test_every_package_in_the_tree_is_in_the_distribution():
    """A package left out of pyproject's list works in the editable install and is missing from
    a wheel (egovlab.suites and egovlab.api.routes were)."""
    import tomllib

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = {**{name: name.replace(".", "/") for name in tool["packages"]}, **tool["package-dir"]}
    listed = set(tool["packages"])
    found = set()
    for top in PACKAGES:
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).as_posix()
            name = next((n for n, d in dirs.items() if d == rel), None)
            if name is None:  # a sub-package: its parent's installed name and the rest of the path
                parent, rest = next((n, rel[len(d) + 1:]) for n, d in sorted(dirs.items(), key=lambda i: -len(i[1]))
                                    if rel.startswith(d + "/"))
                name = f"{parent}.{rest.replace('/', '.')}"
            found.add(name)
    assert found - listed == set(), f"not in pyproject's packages: {sorted(found - listed)}"
