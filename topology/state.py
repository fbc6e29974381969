"""Where a running lab records itself, so that other processes (fault, probe, down) find it."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from egovlab.inventory.errors import EgovlabError

STATE_ROOT = Path(os.environ.get("EGOVLAB_STATE_DIR", "/run/egovlab"))


class LabError(EgovlabError):
    """The lab cannot run here or failed to come up (not bad input: exit code 1)."""

    exit_code = 1


DATA_ROOT = Path(os.environ.get("EGOVLAB_DATA_DIR", "/srv/egovlab"))


def state_dir(prefix: str) -> Path:
    return STATE_ROOT / prefix


def data_dir(prefix: str) -> Path:
    """What services deployed on the lab's hosts keep (databases, configuration, logs)."""
    return DATA_ROOT / prefix


def read_state(prefix: str) -> dict | None:
    try:
        return json.loads((state_dir(prefix) / "lab.json").read_text())
    except (OSError, ValueError):
        return None


def write_state(prefix: str, state: dict) -> None:
    d = state_dir(prefix)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "lab.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(d / "lab.json")


def remove_state(prefix: str) -> None:
    """The lab's state directory and all in it (faults, controller status, deploy keys)."""
    shutil.rmtree(state_dir(prefix), ignore_errors=True)
