"""Load a scenario file: YAML -> schema -> resolved Scenario -> checks -> address plan.

Stops with a `ScenarioError` carrying every problem found at the stage that failed, each as
`FILE: field.path: message`; nothing is built from a scenario that does not load.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from . import addressing, validate
from .errors import EgovlabError, Problem, ScenarioError, join_path
from .scenario import Scenario, resolve
from .schema import ScenarioSpec

BUILTIN = {"dongthap": "dongthap.yml"}


def builtin_path(name: str = "dongthap") -> Path:
    return Path(str(resources.files("egovlab.inventory") / BUILTIN[name]))


def resolve_path(file: str | Path) -> Path:
    """A path, or the name of a built-in scenario ('dongthap')."""
    p = Path(file)
    if not p.exists() and str(file) in BUILTIN:
        return builtin_path(str(file))
    if not p.exists():
        raise EgovlabError(f"{file}: no such scenario file (built-in scenarios: {', '.join(BUILTIN)})")
    if p.is_dir():
        raise EgovlabError(f"{file}: is a directory, expected a scenario YAML file")
    return p


def _yaml_problems(node: yaml.Node, path: str = "") -> list[Problem]:
    """Duplicate mapping keys, which PyYAML would silently let the last one win."""
    out: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
            if k in seen:
                out.append(Problem(path or "(top level)", f"duplicate name '{k}' (lines {seen[k]} and "
                                                          f"{key.start_mark.line + 1})"))
            else:
                seen[k] = key.start_mark.line + 1
            out.extend(_yaml_problems(value, join_path(path, k)))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.extend(_yaml_problems(item, join_path(path, i)))
    return out


# libyaml's loader when PyYAML was built with it: several times faster on large provinces.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, source: str) -> dict:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError(source, [Problem("", "the file is empty, expected a scenario mapping")])
        if problems := _yaml_problems(node):
            raise ScenarioError(source, problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(source, [Problem(where, f"YAML syntax error: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [Problem("", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ScenarioError(source, [Problem("", f"expected a mapping of scenario fields at the top level, "
                                                 f"got {type(data).__name__}")])
    return data


def _pydantic_problems(exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        is_key = "[key]" in loc
        loc = [p for p in loc if p != "[key]"]
        # pydantic adds the validator's type to the path of a union/annotated member; drop it.
        loc = [p for p in loc if not (isinstance(p, str) and (p.startswith("function-") or p in
                                                              ("int", "float", "str", "bool")))]
        path = join_path(*loc)
        kind, msg = err["type"], err["msg"]
        given = err.get("input")
        if kind == "extra_forbidden":
            msg = "unknown field"
        elif kind == "missing":
            msg = "missing required field"
        elif kind == "literal_error":
            msg = f"expected one of {err['ctx']['expected']}, got {given!r}"
        elif kind == "value_error":
            msg = msg.removeprefix("Value error, ")
        elif kind in ("too_short", "too_long"):
            bound = err["ctx"].get("min_length" if kind == "too_short" else "max_length")
            msg = f"expected {'at least' if kind == 'too_short' else 'at most'} {bound} item(s), " \
                  f"got {err['ctx'].get('actual_length')}"
        elif kind == "string_pattern_mismatch":
            msg = f"invalid name {given!r}: use lower-case letters, digits and '-'"
        else:
            msg = f"{msg[0].lower()}{msg[1:]}" + (f", got {given!r}" if not isinstance(given, (dict, list)) else "")
        if is_key:
            msg = f"invalid key: {msg}"
        out.append(Problem(path, msg))
    return out


def load_text(text: str, source: str = "<scenario>", allocations: dict[str, str] | None = None) -> Scenario:
    data = parse_yaml(text, source)
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, _pydantic_problems(exc)) from None
    scenario = resolve(spec, source)
    if problems := validate.check(scenario):
        raise ScenarioError(source, sorted(set(problems), key=problems.index))
    plan, problems = addressing.plan(scenario, allocations)
    if problems:
        raise ScenarioError(source, problems)
    scenario.plan = plan
    return scenario


def load(file: str | Path, allocations: str | Path | None = None) -> Scenario:
    """Load and plan a scenario file, keeping the allocations recorded beside it (if any)."""
    path = resolve_path(file)
    alloc_path = Path(allocations) if allocations else addressing.allocation_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EgovlabError(f"{file}: cannot read: {exc}") from None
    source = str(file) if Path(file).exists() else str(path)
    return load_text(text, source, addressing.read_allocations(alloc_path))
