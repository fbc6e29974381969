"""Load a scenario file: YAML -> schema -> resolved Scenario -> checks -> address plan.

Stops with a `InputError` carrying every problem found at the stage that failed, each as
`FILE: field.path: message`; nothing is built from a scenario that does not load.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from . import addressing, safe_yaml, validate
from .errors import EgovlabError, InputError, Problem, join_path
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


EMPTY = "the file is empty, expected a scenario mapping"


def _mapping(data: object, source: str) -> dict:
    if not isinstance(data, dict):
        raise InputError(source, [Problem("", f"expected a mapping of scenario fields at the top level, "
                                              f"got {type(data).__name__}")])
    return data


def pydantic_problems(exc: ValidationError) -> list[Problem]:
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
        if isinstance(given, str) and len(given) > 60:  # an upload's whole text is no message
            given = given[:57] + "..."
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


def parse_yaml(text: str, source: str) -> dict:
    return _mapping(safe_yaml.parse(text, source, empty=EMPTY), source)


def load_text(text: str, source: str = "<scenario>", allocations: dict[str, str] | None = None) -> Scenario:
    return load_data(parse_yaml(text, source), source, allocations)


def load_data(data: dict, source: str, allocations: dict[str, str] | None = None) -> Scenario:
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        raise InputError(source, pydantic_problems(exc)) from None
    scenario = resolve(spec, source)
    if problems := validate.check(scenario):
        raise InputError(source, sorted(set(problems), key=problems.index))
    plan, problems = addressing.plan(scenario, allocations)
    if problems:
        raise InputError(source, problems)
    scenario.plan = plan
    return scenario


def load(file: str | Path, allocations: str | Path | None = None) -> Scenario:
    """Load and plan a scenario file, keeping the allocations recorded beside it (if any)."""
    path = resolve_path(file)
    alloc_path = Path(allocations) if allocations else addressing.allocation_path(path)
    source = str(file) if Path(file).exists() else str(path)
    data = _mapping(safe_yaml.read(path, source, empty=EMPTY), source)
    return load_data(data, source, addressing.read_allocations(alloc_path))
