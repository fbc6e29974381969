"""The API's scenarios: the built-in ones and those uploaded, validated like the CLI validates."""
from __future__ import annotations

import os
import re
from pathlib import Path

from egovlab import params
from egovlab.inventory import loader
from egovlab.inventory.errors import EgovlabError
from egovlab.inventory.scenario import Scenario

from .jobs import Conflict

NAME = re.compile(params.SCENARIO_NAME_PATTERN)


class NotFound(EgovlabError):
    """A named thing does not exist (HTTP 404)."""


class ScenarioStore:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, tuple[float, Scenario]] = {}

    def names(self) -> list[str]:
        return [*loader.BUILTIN, *sorted(p.stem for p in self.root.glob("*.yml") if NAME.fullmatch(p.stem))]

    def path(self, name: str) -> str:
        """What the CLI takes as FILE for this scenario."""
        if name in loader.BUILTIN:
            return name
        p = self.root / f"{name}.yml"
        if not NAME.fullmatch(name) or not p.exists():
            raise NotFound(f"no scenario '{name}' (scenarios: {', '.join(self.names())})")
        return str(p)

    def load(self, name: str) -> Scenario:
        source = self.path(name)
        mtime = Path(source).stat().st_mtime if name not in loader.BUILTIN else 0.0
        hit = self._cache.get(name)
        if hit and hit[0] == mtime:
            return hit[1]
        sc = loader.load(source)
        self._cache[name] = (mtime, sc)
        return sc

    def save(self, name: str, text: str) -> dict:
        if name in loader.BUILTIN:
            raise Conflict(f"'{name}' is a built-in scenario; upload under another name")
        sc = loader.load_text(text, source=f"{name}.yml")  # the CLI's messages, naming the file
        tmp = self.root / f".{name}.yml.tmp"
        tmp.write_text(text)
        os.replace(tmp, self.root / f"{name}.yml")
        self._cache.pop(name, None)
        return self._summary(name, sc)

    def delete(self, name: str) -> None:
        if name in loader.BUILTIN:
            raise Conflict(f"'{name}' is built in and cannot be deleted")
        Path(self.path(name)).unlink()
        self._cache.pop(name, None)

    def summary(self, name: str) -> dict:
        return self._summary(name, self.load(name))

    @staticmethod
    def _summary(name: str, sc: Scenario) -> dict:
        return {"name": name, "scenario": sc.name, "title": sc.spec.title, "builtin": name in loader.BUILTIN,
                "sites": len(sc.sites), "links": len(sc.links), "servers": sum(1 for _ in sc.servers()),
                "services": sorted(sc.spec.services), "data_centres": sc.data_centres(),
                "hosts": len(sc.plan.hosts)}
