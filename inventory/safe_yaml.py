"""The one YAML reader of egovlab: every file and upload (scenarios, allocations, policy
candidates, test suites) goes through `parse` or `read`.

PyYAML's safe loader is safe against code execution but not against small hostile files:
deep nesting overflows the C stack of libyaml's composer (a segfault, exit 139) or Python's
recursion limit, and a few hundred bytes of nested aliases expand to billions of nodes for
whatever walks the result. So before anything is composed, one pass over the parser's event
stream (iterative, no recursion) enforces limits on size, nesting depth and the node count
after alias expansion, and refuses recursive aliases. Every refusal is an `InputError` with
the field path and line of the offending node; nothing else escapes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import EgovlabError, InputError, Problem, join_path

# libyaml's loader when PyYAML was built with it: several times faster on large provinces.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 8 * 2**20  # the province's file is ~60 KB; a 4x synthetic one ~250 KB
    max_depth: int = 64  # the scenario schema nests 7 levels deep
    max_nodes: int = 500_000  # after alias expansion; the province has ~8,000


LIMITS = Limits()


class _Level:
    """One open mapping or sequence in the event stream, and where the parser is inside it."""

    __slots__ = ("is_map", "expect_key", "key", "index", "size", "anchor")

    def __init__(self, is_map: bool, anchor: str | None):
        self.is_map, self.anchor = is_map, anchor
        self.expect_key, self.key, self.index, self.size = True, "?", -1, 1


def _where(levels: list[_Level]) -> str:
    return join_path(*(lv.key if lv.is_map else lv.index for lv in levels[1:]))


def _line(event: yaml.Event) -> str:
    return f"line {event.start_mark.line + 1}" if event.start_mark else ""


def _check_events(loader: yaml.SafeLoader, limits: Limits) -> list[Problem]:
    """Depth, expanded size and recursive aliases, from the events alone."""
    root = _Level(False, None)
    root.size = 0
    levels = [root]
    anchors: dict[str, int] = {}  # anchor -> expanded node count of its node
    open_anchors: set[str] = set()
    total = 0
    while loader.check_event():
        event = loader.get_event()
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            done = levels.pop()
            if done.anchor:
                anchors[done.anchor] = done.size
                open_anchors.discard(done.anchor)
            levels[-1].size += done.size
            continue
        if not isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)):
            continue  # stream and document markers
        parent = levels[-1]
        is_key = parent.is_map and parent.expect_key
        if parent.is_map:
            parent.expect_key = not parent.expect_key
            if is_key:
                parent.key = str(event.value) if isinstance(event, yaml.ScalarEvent) else "?"
        else:
            parent.index += 1
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors:
                return [Problem(_where(levels), f"{_line(event)}: alias *{event.anchor} refers to the node that "
                                                "contains it (a recursive structure)")]
            size = anchors.get(event.anchor, 1)  # an unknown alias is the composer's error, below
        else:
            size = 1
        total += size
        if total > limits.max_nodes:
            return [Problem(_where(levels), f"{_line(event)}: more than {limits.max_nodes:,} values "
                                            "(counting what aliases repeat)")]
        if isinstance(event, yaml.CollectionStartEvent):
            if len(levels) > limits.max_depth:
                return [Problem(_where(levels), f"{_line(event)}: nested deeper than {limits.max_depth} levels")]
            levels.append(_Level(isinstance(event, yaml.MappingStartEvent), event.anchor))
            if event.anchor:
                open_anchors.add(event.anchor)
        else:
            parent.size += size
            if isinstance(event, yaml.ScalarEvent) and event.anchor:
                anchors[event.anchor] = 1
    return []


def _duplicate_keys(node: yaml.Node, path: str = "") -> list[Problem]:
    """Duplicate mapping keys, which PyYAML would silently let the last one win."""
    out: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else "?"
            if k in seen:
                out.append(Problem(path or "(top level)", f"duplicate name '{k}' (lines {seen[k]} and "
                                                          f"{key.start_mark.line + 1})"))
            else:
                seen[k] = key.start_mark.line + 1
            out.extend(_duplicate_keys(value, join_path(path, k)))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.extend(_duplicate_keys(item, join_path(path, i)))
    return out


def parse(text: str, source: str, limits: Limits = LIMITS, empty: str | None = "the file is empty") -> Any:
    """YAML text -> plain data (one document), or an `InputError` naming `source`.

    An empty document is refused with the message `empty`, or read as None when it is None.
    """
    if len(text) > limits.max_bytes:
        raise InputError(source, [Problem("", f"larger than {limits.max_bytes // 2**20} MiB "
                                              f"({len(text):,} characters)")])
    try:
        events = _Loader(text)
        try:
            if problems := _check_events(events, limits):
                raise InputError(source, problems)
        finally:
            events.dispose()
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                if empty is None:
                    return None
                raise InputError(source, [Problem("", empty)])
            if problems := _duplicate_keys(node):
                raise InputError(source, problems)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = ", ".join(filter(None, (exc.context, exc.problem))) or str(exc)
        raise InputError(source, [Problem(where, f"YAML syntax error: {what}")]) from None
    except yaml.reader.ReaderError as exc:
        raise InputError(source, [Problem(f"character {exc.position + 1}", f"YAML error: {exc.reason}")]) from None
    except yaml.YAMLError as exc:
        raise InputError(source, [Problem("", f"YAML error: {exc}")]) from None
    except (ValueError, TypeError, OverflowError) as exc:  # a value PyYAML resolves but cannot build
        reason = "a number of more than 4300 digits" if "integer string conversion" in str(exc) else exc
        raise InputError(source, [Problem("", f"cannot read a value: {reason}")]) from None


def read_text(path: str | Path, source: str | None = None, limits: Limits = LIMITS) -> str:
    """A file's text, refusing what is too large before reading it, or not UTF-8."""
    p, source = Path(path), source or str(path)
    try:
        if p.stat().st_size > limits.max_bytes * 4:  # UTF-8: at most 4 bytes a character
            raise InputError(source, [Problem("", f"larger than {limits.max_bytes // 2**20} MiB")])
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(source, [Problem("", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    except OSError as exc:
        raise EgovlabError(f"{source}: cannot read: {exc.strerror or exc}") from None


def read(path: str | Path, source: str | None = None, limits: Limits = LIMITS, **kw) -> Any:
    """A YAML file -> plain data, refusing what is too large before reading it."""
    source = source or str(path)
    return parse(read_text(path, source, limits), source, limits, **kw)
