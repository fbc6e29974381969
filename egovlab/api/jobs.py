"""Long operations of the API as jobs: each runs the `egovlab` CLI verb itself in a child process.

The API returns at once (202 + the job); clients poll the job. One lab job per prefix at a
time (bringing a lab up while it is being probed or torn down makes no sense). A job's output
goes to its log; on success its result (the JSON the verb wrote) is attached to it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from egovlab.inventory.errors import EgovlabError

from .errors import redact_data

KINDS = ("lab-up", "lab-down", "probe-matrix", "simulation", "drill")
LAB_KINDS = ("lab-up", "lab-down", "probe-matrix", "drill", "tests")  # hold their prefix while they run
LOG_TAIL_LINES = 40


class Conflict(EgovlabError):
    """The request is valid but clashes with what is running (HTTP 409)."""


@dataclass
class Job:
    id: str
    kind: str
    prefix: str | None
    params: dict
    argv: list[str]
    dir: Path
    result_file: Path | None = None
    state: str = "running"  # running | succeeded | failed | cancelled
    created: float = field(default_factory=time.time)
    finished: float | None = None
    exit_code: int | None = None
    result: dict | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.dir / "log.txt"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []

    def view(self, with_result: bool = True) -> dict:
        """What a client sees: no server paths (its log and result say where files went)."""
        out = {"id": self.id, "kind": self.kind, "prefix": self.prefix, "params": self.params, "state": self.state,
               "created": self.created, "finished": self.finished, "exit_code": self.exit_code,
               "seconds": round((self.finished or time.time()) - self.created, 2), "log_tail": self.log_tail()}
        if with_result:
            out["result"] = self.result
        return redact_data(out)


class JobRunner:
    def __init__(self, root: Path, on_finish: Callable[[Job], None] | None = None):
        self.root = root
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.on_finish = on_finish

    def submit(self, kind: str, verb: list[str], *, prefix: str | None = None, params: dict | None = None,
               result_name: str | None = None, after: Callable[[Job], dict | None] | None = None,
               files: dict[str, str] | None = None, ok_codes: tuple[int, ...] = (0,)) -> Job:
        """Start `egovlab VERB...` (`{dir}` in VERB is the job's directory, where `files` are
        written first); an exit code in `ok_codes` has a result (a test run whose tests failed
        has its report)."""
        with self.lock:
            if prefix and kind in LAB_KINDS:
                busy = [j for j in self.jobs.values() if j.state == "running" and j.prefix == prefix
                        and j.kind in LAB_KINDS]
                if busy:
                    raise Conflict(f"lab '{prefix}' is busy with job {busy[0].id} ({busy[0].kind}); wait for it")
            job_id = uuid.uuid4().hex[:12]
            d = self.root / job_id
            d.mkdir(parents=True)
            for name, text in (files or {}).items():
                (d / name).write_text(text, encoding="utf-8")
            argv = [sys.executable, "-m", "egovlab", *(a.replace("{dir}", str(d)) for a in verb)]
            job = Job(job_id, kind, prefix, params or {}, argv, d, d / result_name if result_name else None)
            with job.log.open("w") as log:
                job.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               start_new_session=True, cwd=d,
                                               env={**os.environ, "COLUMNS": "160", "NO_COLOR": "1"})
            self.jobs[job_id] = job
        threading.Thread(target=self._wait, args=(job, after, ok_codes), name=f"job-{job_id}", daemon=True).start()
        return job

    def _wait(self, job: Job, after: Callable[[Job], dict | None] | None, ok_codes: tuple[int, ...]) -> None:
        code = job.process.wait()
        result = None
        if code in ok_codes:
            try:
                if job.result_file is not None:
                    result = json.loads(job.result_file.read_text())
                if after is not None:
                    result = after(job) if result is None else {**result, **(after(job) or {})}
            except (OSError, ValueError, EgovlabError) as exc:
                code = 1 if code == 0 else code
                with job.log.open("a") as log:
                    log.write(f"egovlab serve: cannot read the job's result: {exc}\n")
        with self.lock:
            job.exit_code = code
            job.result = result
            if job.state == "running":
                job.state = "succeeded" if code in ok_codes and (code == 0 or result is not None) else "failed"
            job.finished = time.time()
        if self.on_finish:
            self.on_finish(job)

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def latest(self, kind: str, prefix: str | None = None, state: str = "succeeded") -> Job | None:
        done = [j for j in self.jobs.values() if j.kind == kind and j.state == state
                and (prefix is None or j.prefix == prefix)]
        return max(done, key=lambda j: j.finished or 0, default=None)

    def cancel(self, job: Job, grace_s: float = 30) -> None:
        """Stop a running job: SIGTERM to its process group (the verbs clean up what they made)."""
        if job.state != "running" or job.process is None:
            return
        job.state = "cancelled"
        try:
            os.killpg(job.process.pid, signal.SIGTERM)
            job.process.wait(timeout=grace_s)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(job.process.pid, signal.SIGKILL)
            job.process.wait()

    def shutdown(self) -> None:
        for job in list(self.jobs.values()):
            self.cancel(job)
