"""A change of a scenario's access policy, in the scenario's own policy format (pure).

A candidate is YAML: `{policy: {allow: [...]}}`, `{allow: [...]}` or a bare list of flows, each
flow written as in a scenario file (`{from: kind:commune, to: service:portal, ports: [tcp/443]}`).
`merge` adds the flows the policy does not have yet; `replace` makes them the whole policy.
The changed scenario is validated like any scenario file, so a flow naming an unknown zone
or service is refused with the loader's messages.
"""
from __future__ import annotations

import difflib

import yaml

from . import loader, safe_yaml
from .errors import EgovlabError
from .scenario import Scenario

MODES = ("merge", "replace")


class CandidateError(EgovlabError):
    """The candidate policy is malformed or makes the scenario invalid."""


def parse_candidate(text: str) -> list[dict]:
    data = safe_yaml.parse(text, "candidate", empty="the candidate policy is empty")
    if isinstance(data, dict) and "policy" in data:
        data = data["policy"]
    if isinstance(data, dict) and set(data) <= {"allow", "default"}:
        data = data.get("allow", [])
    if not isinstance(data, list) or not all(isinstance(f, dict) for f in data):
        raise CandidateError("candidate: expected a list of flows, {allow: [...]} or {policy: {allow: [...]}}")
    return data


def changed(raw: dict, candidate: list[dict], mode: str) -> dict:
    """The scenario's raw data with its policy merged with or replaced by the candidate."""
    if mode not in MODES:
        raise CandidateError(f"mode: expected merge or replace, got '{mode}'")
    out = dict(raw)
    policy = dict(raw.get("policy") or {})
    flows = list(policy.get("allow") or [])
    if mode == "replace":
        flows = list(candidate)
    else:
        flows += [f for f in candidate if f not in flows]
    policy["allow"] = flows
    out["policy"] = policy
    return out


def apply(raw: dict, text: str, mode: str, source: str, allocations: dict[str, str]) -> tuple[dict, Scenario]:
    """(new raw data, its validated Scenario); addresses are kept by the same allocations."""
    new = changed(raw, parse_candidate(text), mode)
    dumped = yaml.safe_dump(new, sort_keys=False, allow_unicode=True)
    try:
        sc = loader.load_text(dumped, source=source, allocations=allocations)
    except EgovlabError as exc:
        raise CandidateError(f"the candidate makes the scenario invalid:\n{exc}") from None
    return new, sc


def policy_text(raw: dict) -> str:
    return yaml.safe_dump({"policy": raw.get("policy") or {}}, sort_keys=False, allow_unicode=True)


def unified(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), old_name, new_name))
