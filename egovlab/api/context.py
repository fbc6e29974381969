"""What every router of the API shares: the scenario store, the job runner, the status cache,
and the lookups that turn a path's prefix, job or device into a 404 when it does not exist."""
from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Path as PathParam, Request
from fastapi.security import HTTPBearer
from prometheus_client import CollectorRegistry

from egovlab import lifecycle, operations, params
from egovlab.inventory.errors import EgovlabError
from egovlab.sdn import launcher
from egovlab.topology import faults

from . import devices
from .bodies import PREFIX, SCENARIO_NAME
from .jobs import Job, JobRunner
from .metrics import ControlPlaneCollector
from .scenarios import NotFound, ScenarioStore

Prefix = Annotated[str, PathParam(pattern=PREFIX, description="the lab's name prefix")]
ScenarioPath = Annotated[str, PathParam(pattern=SCENARIO_NAME, description="a stored scenario's name")]
JobId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{12}$")]
Device = Annotated[str, PathParam(pattern=params.DEVICE_PATTERN, description="a device of the lab")]

# The Guard middleware has checked the token (and the role) before any route runs; this
# declares the scheme in the OpenAPI document.
BEARER = [Depends(HTTPBearer(auto_error=False, description="a read-only token, or an operator token for every "
                                                           "change"))]


class StatusCache:
    """A lab's status, computed at most once per TTL however many clients ask (it reads a few
    hundred interfaces' state from sysfs); what this server changes forgets it at once."""

    TTL_S = 0.25

    def __init__(self):
        self.values: dict[str, tuple[float, dict]] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.generation = 0  # a value computed across a forget() is not kept

    def get(self, prefix: str, compute) -> dict:
        with self.locks.setdefault(prefix, threading.Lock()):
            hit = self.values.get(prefix)
            if hit and time.monotonic() - hit[0] < self.TTL_S:
                return hit[1]
            generation = self.generation
            value = compute()
            if generation == self.generation:
                self.values[prefix] = (time.monotonic(), value)
            return value

    def forget(self, prefix: str | None) -> None:
        self.generation += 1
        self.values.pop(prefix, None)


@dataclass
class Context:
    store: ScenarioStore
    runner: JobRunner
    statuses: StatusCache
    registry: CollectorRegistry
    policy_lock: threading.Lock = field(default_factory=threading.Lock)  # one policy change at a time

    @classmethod
    def create(cls, data_dir: Path) -> "Context":
        statuses = StatusCache()
        runner = JobRunner(data_dir / "jobs", on_finish=lambda job: statuses.forget(job.prefix))
        registry = CollectorRegistry()
        registry.register(ControlPlaneCollector(runner))
        return cls(ScenarioStore(data_dir / "scenarios"), runner, statuses, registry)

    # -- lookups ------------------------------------------------------------------------
    def lab_or_404(self, prefix: str) -> None:
        if not lifecycle.is_running(prefix):
            raise HTTPException(404, f"no lab with prefix '{prefix}' is up")

    def job_or_404(self, job_id: str, kind: str | None = None) -> Job:
        job = self.runner.get(job_id)
        if job is None or (kind and job.kind != kind):
            raise HTTPException(404, f"no {kind or 'job'} '{job_id}'")
        return job

    def jobs_of(self, kind: str | None) -> list[dict]:
        jobs = sorted(self.runner.jobs.values(), key=lambda j: j.created, reverse=True)
        return [j.view(with_result=False) for j in jobs if kind is None or j.kind == kind]

    def device_of(self, prefix: str, device: str) -> devices.Device:
        self.lab_or_404(prefix)
        try:
            return devices.Device(prefix, device)
        except EgovlabError as exc:
            raise NotFound(str(exc)) from None

    def address_of(self, prefix: str, destination: str) -> str:
        """An IP address, or a lab device's: probes never leave the lab."""
        try:
            return str(ipaddress.ip_address(destination))
        except ValueError:
            target = self.device_of(prefix, destination)
            host = target.plan.hosts.get(target.node)
            if host is None or host.ipv4 is None:
                raise EgovlabError(f"destination: '{destination}' has no address (a switch?)") from None
            return str(host.ipv4.ip)

    # -- a lab's status -------------------------------------------------------------------
    def lab_status(self, prefix: str) -> dict:
        return self.statuses.get(prefix, lambda: self._read_lab_status(prefix))

    def _read_lab_status(self, prefix: str) -> dict:
        self.lab_or_404(prefix)
        record, sc, plan = operations.running_lab(prefix)
        controller = launcher.status(prefix)
        busy = [j.view(with_result=False) for j in self.runner.jobs.values()
                if j.prefix == prefix and j.state == "running"]
        return {"prefix": prefix, "scenario": sc.name, "pid": record.pid, "spec": record.spec.model_dump(),
                "switches": len(plan.switches), "hosts": len(plan.hosts), "links": len(sc.links),
                "links_down": faults.links_down(plan), "faults_active": [vars(r) for r in faults.active(prefix)],
                "controller": None if controller is None else {
                    k: controller.get(k) for k in ("switches", "rules", "groups", "metrics")}
                | {"programmed": len(controller.get("installed", []))},
                "jobs_running": busy}


def context(request: Request) -> Context:
    return request.app.state.context


Ctx = Annotated[Context, Depends(context)]


def job_views(router, kind: str) -> None:
    """GET the router's collection (every job of this kind, newest first) and one of them."""

    @router.get("", summary=f"Every {kind} job, newest first")
    def list_of_kind(ctx: Ctx) -> list[dict]:
        return ctx.jobs_of(kind)

    @router.get("/{job_id}", summary=f"One {kind} job, with its result once finished")
    def one_of_kind(ctx: Ctx, job_id: JobId) -> dict:
        return ctx.job_or_404(job_id, kind).view()
