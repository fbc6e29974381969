"""The lab's control plane: a REST API (FastAPI) over the operations the CLI runs.

Every route under /api/v1 and /metrics needs a bearer token: the read-only role reads, the
operator role also changes things (every POST, PUT and DELETE). Long operations are jobs that
run the CLI verb itself (`jobs.py`); faults and status call the same functions as the CLI
(`egovlab.operations`). Bad input is a 4xx with a `detail` message, never a 500.
"""

import asyncio
import ipaddress
import json
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from egovlab import __version__, operations, params
from egovlab.inventory.errors import EgovlabError, InputError
from egovlab.topology import faults
from egovlab.topology.state import LabError, read_state

from egovlab import policy_changes
from egovlab.sdn import launcher
from egovlab.topology import devices as topology_devices

from . import devices, views
from .errors import document_errors, redact
from .guard import Guard
from .jobs import Conflict, Job, JobRunner
from .metrics import ControlPlaneCollector
from .scenarios import NotFound, ScenarioStore
from .tokens import Tokens

WEB = Path(__file__).with_name("web")
PREFIX = f"^{params.PREFIX_PATTERN}$"
SCENARIO_NAME = f"^{params.SCENARIO_NAME_PATTERN}$"
Prefix = Annotated[str, PathParam(pattern=PREFIX, description="the lab's name prefix")]
ScenarioName = Annotated[str, Field(pattern=SCENARIO_NAME, description="a stored scenario's name")]
ScenarioPath = Annotated[str, PathParam(pattern=SCENARIO_NAME, description="a stored scenario's name")]
JobId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{12}$")]


# -- request bodies ------------------------------------------------------------------------

class Body(BaseModel):
    """Unknown fields, non-finite numbers (Python's JSON reader takes NaN) and values of another
    type (`false` for a count, `"10"` for a number) are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


def _horizon(text: str) -> str:
    try:
        params.parse_horizon(text, "horizon")
    except EgovlabError as exc:
        raise ValueError(str(exc).removeprefix("horizon: ")) from None
    return text


class ScenarioUpload(Body):
    name: ScenarioName
    yaml: str = Field(max_length=2_000_000, description="the scenario file's text (YAML)")


class LabUp(Body):
    scenario: ScenarioName
    hosts_per_site: int | None = Field(default=None, **params.HOSTS_PER_SITE.field())
    ovs_shards: int = Field(default=1, **params.OVS_SHARDS.field(),
                            description="Open vSwitch daemons to spread the switches over")
    sdn: bool = Field(default=True, description="egovlab's controller (zone policy) or standalone switches")


class FaultRequest(Body):
    action: Literal[faults.ACTIONS]  # type: ignore[valid-type]
    target: str = Field(min_length=1, max_length=120, description="a link, switch, site or data centre")


class SimulationRequest(Body):
    scenario: ScenarioName
    replications: int = Field(default=10, **params.REPLICATIONS.field())
    horizon: Annotated[str, Field(max_length=20), AfterValidator(_horizon)] = Field(
        default="365d", description="a duration like '365d', '24h' or '90m'")
    peak_minutes: float = Field(default=60, **params.PEAK_MINUTES.field())
    seed: int = Field(default=1, **params.SEED.field())


class DrillRequest(Body):
    scenario: ScenarioName
    fail: str = Field(min_length=1, max_length=80, description="the data centre to take dark")
    replication: Literal["sync", "async"] | None = None
    seconds: float = Field(default=40, **params.DRILL_SECONDS.field())
    rate: float = Field(default=10, **params.DRILL_RATE.field())
    prefix: str = Field(default="dr", pattern=PREFIX)
    hosts_per_site: int | None = Field(default=None, **params.HOSTS_PER_SITE.field())


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


class PingRequest(Body):
    destination: str = Field(min_length=1, max_length=80, description="an IP address or a device of the lab")
    source: str = Field(default="", max_length=45)
    ttl: int = Field(default=255, ge=1, le=255)
    timeout: float = Field(default=2, ge=0.1, le=10)
    size: int = Field(default=100, ge=0, le=9000)
    count: int = Field(default=5, ge=1, le=20)
    vrf: str = Field(default="", max_length=40, description="accepted for NAPALM's sake; the lab has no VRFs")


class TracerouteRequest(Body):
    destination: str = Field(min_length=1, max_length=80)
    source: str = Field(default="", max_length=45)
    ttl: int = Field(default=30, ge=1, le=64)
    timeout: float = Field(default=2, ge=0.1, le=10)
    vrf: str = Field(default="", max_length=40)


class PolicyChange(Body):
    policy: str = Field(min_length=1, max_length=1_000_000,
                        description="flows in the scenario's policy format (YAML): a list, {allow: [...]} "
                                    "or {policy: {allow: [...]}}")
    mode: Literal["merge", "replace"] = "merge"
    device: str | None = Field(default=None, max_length=80, description="compare: only this switch's rules")


# -- the app -------------------------------------------------------------------------------

def create_app(tokens: Tokens, data_dir: Path) -> FastAPI:
    store = ScenarioStore(data_dir / "scenarios")
    statuses = StatusCache()
    runner = JobRunner(data_dir / "jobs", on_finish=lambda job: statuses.forget(job.prefix))
    registry = CollectorRegistry()
    registry.register(ControlPlaneCollector(runner))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        # Leave nothing half-made: a lab whose bring-up was cut short is torn down.
        half_up = [j.prefix for j in runner.jobs.values() if j.kind == "lab-up" and j.state == "running"]
        await run_in_threadpool(runner.shutdown)
        for prefix in half_up:
            await run_in_threadpool(operations.stop_lab, prefix)

    app = FastAPI(title="egovlab control API", version=__version__, lifespan=lifespan,
                  description="Run the emulated province: scenarios, labs, faults, probes, simulations and "
                              "failover drills. Bearer tokens: read-only, or operator for every change.")
    app.state.runner, app.state.store = runner, store
    policy_lock = threading.Lock()  # one policy change at a time
    app.add_middleware(Guard, tokens=tokens)
    # Guard has checked the token (and the role) before any route runs; this declares the scheme.
    bearer = HTTPBearer(auto_error=False, description="a read-only token, or an operator token for every change")
    reader = writer = [Depends(bearer)]

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = [{"path": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(f"{p['path']}: {p['message']}" for p in problems),
                             "problems": problems}, status_code=422)

    @app.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound):
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(LabError)
    async def lab_failed(request: Request, exc: LabError):
        return JSONResponse({"detail": redact(str(exc))}, status_code=503)

    @app.exception_handler(EgovlabError)
    async def bad_input(request: Request, exc: EgovlabError):
        body = {"detail": redact(str(exc))}
        if isinstance(exc, InputError):
            body["problems"] = [{"path": p.path, "message": p.message} for p in exc.problems]
        return JSONResponse(body, status_code=422)

    def lab_or_404(prefix: str) -> dict:
        if not operations.is_running(prefix):
            raise HTTPException(404, f"no lab with prefix '{prefix}' is up")
        return read_state(prefix)

    def job_or_404(job_id: str, kind: str | None = None) -> Job:
        job = runner.get(job_id)
        if job is None or (kind and job.kind != kind):
            raise HTTPException(404, f"no {kind or 'job'} '{job_id}'")
        return job

    def lab_status(prefix: str) -> dict:
        return statuses.get(prefix, lambda: read_lab_status(prefix))

    def read_lab_status(prefix: str) -> dict:
        state = lab_or_404(prefix)
        _, sc, plan = operations.running_lab(prefix)
        controller = launcher.status(prefix)
        busy = [j.view(with_result=False) for j in runner.jobs.values() if j.prefix == prefix and j.state == "running"]
        return {"prefix": prefix, "scenario": sc.name, "pid": state.get("pid"), "switches": len(plan.switches),
                "hosts": len(plan.hosts), "links": len(sc.links), "links_down": faults.links_down(plan),
                "faults_active": [vars(r) for r in faults.active(prefix)],
                "controller": None if controller is None else {
                    k: controller.get(k) for k in ("switches", "rules", "groups", "metrics")}
                | {"programmed": len(controller.get("installed", []))},
                "jobs_running": busy}

    # -- open routes ------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(WEB / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/healthz", tags=["server"], summary="Liveness (no token needed)")
    def healthz() -> dict:
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["server"], dependencies=reader, summary="Prometheus metrics",
             response_class=Response)
    def metrics():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # -- scenarios --------------------------------------------------------------------------
    @app.get("/api/v1/scenarios", tags=["scenarios"], dependencies=reader)
    def list_scenarios() -> list[dict]:
        return [store.summary(n) for n in store.names()]

    @app.post("/api/v1/scenarios", tags=["scenarios"], dependencies=writer, status_code=201,
              summary="Upload a scenario; it is validated with the CLI's messages")
    def upload_scenario(body: ScenarioUpload) -> dict:
        return store.save(body.name, body.yaml)

    @app.get("/api/v1/scenarios/{name}", tags=["scenarios"], dependencies=reader)
    def get_scenario(name: ScenarioPath) -> dict:
        return store.summary(name)

    @app.get("/api/v1/scenarios/{name}/topology", tags=["scenarios"], dependencies=reader)
    def scenario_topology(name: ScenarioPath) -> dict:
        return views.topology(store.load(name))

    @app.delete("/api/v1/scenarios/{name}", tags=["scenarios"], dependencies=writer, status_code=204)
    def delete_scenario(name: ScenarioPath) -> Response:
        store.delete(name)
        return Response(status_code=204)

    # -- labs -------------------------------------------------------------------------------
    @app.get("/api/v1/labs", tags=["labs"], dependencies=reader)
    def list_labs() -> list[dict]:
        return [lab_status(p) for p in operations.running_prefixes()]

    @app.get("/api/v1/labs/{prefix}", tags=["labs"], dependencies=reader)
    def get_lab(prefix: Prefix) -> dict:
        return lab_status(prefix)

    @app.put("/api/v1/labs/{prefix}", tags=["labs"], dependencies=writer, status_code=202,
             summary="Bring a lab up (a job: `egovlab up --detach`)")
    def lab_up(prefix: Prefix, body: LabUp) -> dict:
        if read_state(prefix) is not None:
            raise Conflict(f"a lab with prefix '{prefix}' is already up (or its remains: DELETE it first)")
        source = store.path(body.scenario)
        store.load(body.scenario)  # bad scenarios fail here, before a job starts
        verb = ["up", source, "--detach", "--prefix", prefix, "--sdn" if body.sdn else "--standalone",
                "--ovs-shards", str(body.ovs_shards)]
        if body.hosts_per_site is not None:
            verb += ["--hosts-per-site", str(body.hosts_per_site)]
        statuses.forget(prefix)
        return runner.submit("lab-up", verb, prefix=prefix, params=body.model_dump(),
                             after=lambda job: {"prefix": prefix, "state": read_state(prefix)}).view()

    @app.delete("/api/v1/labs/{prefix}", tags=["labs"], dependencies=writer, status_code=202,
                summary="Stop a lab and remove everything it made (a job: `egovlab down`)")
    def lab_down(prefix: Prefix) -> dict:
        if read_state(prefix) is None:  # a lab whose process died leaves its state: down removes it
            raise HTTPException(404, f"no lab with prefix '{prefix}' is up")
        job = runner.submit("lab-down", ["down", "--prefix", prefix], prefix=prefix)
        statuses.forget(prefix)
        return job.view()

    @app.get("/api/v1/labs/{prefix}/topology", tags=["labs"], dependencies=reader)
    def lab_topology(prefix: Prefix) -> dict:
        lab_or_404(prefix)
        _, sc, plan = operations.running_lab(prefix)
        return views.topology(sc, set(faults.links_down(plan)), lab_up=True)

    @app.get("/api/v1/labs/{prefix}/faults", tags=["faults"], dependencies=reader)
    def list_faults(prefix: Prefix) -> dict:
        lab_or_404(prefix)
        return {"active": [vars(r) for r in faults.active(prefix)],
                "history": [vars(r) for r in faults.history(prefix)]}

    @app.post("/api/v1/labs/{prefix}/faults", tags=["faults"], dependencies=writer, status_code=201,
              summary="Inject a fault (or repair one: link-up, switch-up, restore, dc-up)")
    def inject(prefix: Prefix, body: FaultRequest) -> dict:
        lab_or_404(prefix)
        rec = operations.inject_fault(prefix, body.action, body.target)
        statuses.forget(prefix)
        return {**vars(rec), "iso": rec.iso}

    @app.delete("/api/v1/labs/{prefix}/faults", tags=["faults"], dependencies=writer,
                summary="Repair everything the faults took down")
    def clear(prefix: Prefix) -> dict:
        lab_or_404(prefix)
        cleared = operations.clear_faults(prefix)
        statuses.forget(prefix)
        return {"cleared": cleared}

    @app.post("/api/v1/labs/{prefix}/probes/matrix", tags=["probes"], dependencies=writer, status_code=202,
              summary="Probe the reachability matrix against intent (a job: `egovlab probe matrix`)")
    def probe(prefix: Prefix) -> dict:
        lab_or_404(prefix)
        statuses.forget(prefix)
        return runner.submit("probe-matrix", ["probe", "matrix", "--prefix", prefix, "--json", "{dir}/matrix.json"],
                             prefix=prefix, result_name="matrix.json").view(with_result=False)

    @app.get("/api/v1/labs/{prefix}/probes/matrix", tags=["probes"], dependencies=reader,
             summary="The latest finished matrix of the lab, with its heat map")
    def latest_matrix(prefix: Prefix) -> dict:
        job = runner.latest("probe-matrix", prefix)
        if job is None:
            raise HTTPException(404, f"no probe matrix of lab '{prefix}' yet (POST to this path runs one)")
        summary = {k: v for k, v in job.result.items() if k != "results"}
        return {"job": job.id, "finished": job.finished, "summary": summary, "heatmap": views.heatmap(job.result)}

    # -- devices (what the NAPALM driver talks to) and policy changes ------------------------
    Device = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9._:-]{1,80}$", description="a device of the lab")]

    def device_of(prefix: str, device: str) -> devices.Device:
        lab_or_404(prefix)
        try:
            return devices.Device(prefix, device)
        except EgovlabError as exc:
            raise NotFound(str(exc)) from None

    def address_of(prefix: str, destination: str) -> str:
        """An IP address, or a lab device's: probes never leave the lab."""
        try:
            return str(ipaddress.ip_address(destination))
        except ValueError:
            target = device_of(prefix, destination)
            host = target.plan.hosts.get(target.node)
            if host is None or host.ipv4 is None:
                raise EgovlabError(f"destination: '{destination}' has no address (a switch?)") from None
            return str(host.ipv4.ip)

    @app.get("/api/v1/labs/{prefix}/devices", tags=["devices"], dependencies=reader)
    def list_devices(prefix: Prefix) -> list[dict]:
        lab_or_404(prefix)
        _, _, plan = operations.running_lab(prefix)
        return topology_devices.inventory(plan)

    @app.get("/api/v1/labs/{prefix}/devices/{device}/{getter}", tags=["devices"], dependencies=reader,
             summary="One of NAPALM's getters for a device (facts, interfaces, lldp_neighbors, config, ...)")
    def device_getter(prefix: Prefix, device: Device, getter: Literal[devices.GETTERS]):  # type: ignore[valid-type]
        return device_of(prefix, device).get(getter)

    @app.post("/api/v1/labs/{prefix}/devices/{device}/ping", tags=["devices"], dependencies=writer,
              summary="Ping from the device's namespace (NAPALM's result shape)")
    def device_ping(prefix: Prefix, device: Device, body: PingRequest) -> dict:
        d = device_of(prefix, device)
        return d.ping(address_of(prefix, body.destination), source=body.source, ttl=body.ttl,
                      timeout=body.timeout, size=body.size, count=body.count)

    @app.post("/api/v1/labs/{prefix}/devices/{device}/traceroute", tags=["devices"], dependencies=writer,
              summary="Traceroute from the device's namespace (NAPALM's result shape)")
    def device_traceroute(prefix: Prefix, device: Device, body: TracerouteRequest) -> dict:
        d = device_of(prefix, device)
        return d.traceroute(address_of(prefix, body.destination), source=body.source, ttl=body.ttl,
                            timeout=body.timeout)

    @app.get("/api/v1/labs/{prefix}/policy", tags=["policy"], dependencies=reader,
             summary="The access policy in force and its version (0: the scenario's own)")
    def get_policy(prefix: Prefix) -> dict:
        lab_or_404(prefix)
        return policy_changes.current(prefix)

    @app.post("/api/v1/labs/{prefix}/policy/compare", tags=["policy"], dependencies=writer,
              summary="What a candidate policy would change: the policy's diff and each switch's rules")
    def compare_policy(prefix: Prefix, body: PolicyChange) -> dict:
        lab_or_404(prefix)
        return policy_changes.compare(prefix, body.policy, body.mode, body.device)

    @app.put("/api/v1/labs/{prefix}/policy", tags=["policy"], dependencies=writer,
             summary="Commit a policy change: the lab's controller applies it at once")
    def commit_policy(prefix: Prefix, body: PolicyChange) -> dict:
        lab_or_404(prefix)
        with policy_lock:
            result = policy_changes.commit(prefix, body.policy, body.mode)
        statuses.forget(prefix)
        return result

    @app.post("/api/v1/labs/{prefix}/policy/rollback", tags=["policy"], dependencies=writer,
              summary="Back to the previous policy version")
    def rollback_policy(prefix: Prefix) -> dict:
        lab_or_404(prefix)
        with policy_lock:
            result = policy_changes.rollback(prefix)
        statuses.forget(prefix)
        return result

    # -- simulations and drills -------------------------------------------------------------
    @app.post("/api/v1/simulations", tags=["simulations"], dependencies=writer, status_code=202,
              summary="Capacity run: peak hour and a year with failures (a job: `egovlab simulate`)")
    def simulate(body: SimulationRequest) -> dict:
        sc = store.load(body.scenario)
        if sc.spec.resilience is None:
            raise EgovlabError(f"scenario '{body.scenario}': resilience: needed for the yearly run")
        verb = ["simulate", store.path(body.scenario), "--replications", str(body.replications), "--horizon",
                body.horizon, "--peak-minutes", f"{body.peak_minutes:g}", "--seed", str(body.seed), "--out", "{dir}"]
        return runner.submit("simulation", verb, params=body.model_dump(),
                             result_name="simulation.json").view(with_result=False)

    @app.post("/api/v1/drills", tags=["drills"], dependencies=writer, status_code=202,
              summary="Failover drill on the real services (a job: `egovlab drill`)")
    def drill(body: DrillRequest) -> dict:
        from egovlab.services.placement import plan_deployment
        from egovlab.topology.model import emulation_plan

        sc = store.load(body.scenario)
        params.data_centre(sc, body.fail, "fail")
        plan_deployment(sc, emulation_plan(sc, prefix=body.prefix, hosts_per_site=body.hosts_per_site),
                        body.replication)
        if read_state(body.prefix) is not None:
            raise Conflict(f"a lab with prefix '{body.prefix}' is up: the drill brings up its own")
        verb = ["drill", store.path(body.scenario), "--fail", body.fail, "--seconds", f"{body.seconds:g}",
                "--rate", f"{body.rate:g}", "--prefix", body.prefix, "--json", "{dir}/drill.json"]
        verb += ["--replication", body.replication] if body.replication else []
        verb += ["--hosts-per-site", str(body.hosts_per_site)] if body.hosts_per_site is not None else []
        r = sc.spec.resilience
        targets = {"targets": {"rto_target_seconds": r.rto_target_s.value if r else None,
                               "rpo_target_seconds": r.rpo_target_s.value if r else None}}
        return runner.submit("drill", verb, prefix=body.prefix, params=body.model_dump(), result_name="drill.json",
                             after=lambda job: targets).view(with_result=False)

    def jobs_of(kind: str | None) -> list[dict]:
        jobs = sorted(runner.jobs.values(), key=lambda j: j.created, reverse=True)
        return [j.view(with_result=False) for j in jobs if kind is None or j.kind == kind]

    @app.get("/api/v1/simulations", tags=["simulations"], dependencies=reader)
    def list_simulations() -> list[dict]:
        return jobs_of("simulation")

    @app.get("/api/v1/simulations/{job_id}", tags=["simulations"], dependencies=reader)
    def get_simulation(job_id: JobId) -> dict:
        return job_or_404(job_id, "simulation").view()

    @app.get("/api/v1/drills", tags=["drills"], dependencies=reader)
    def list_drills() -> list[dict]:
        return jobs_of("drill")

    @app.get("/api/v1/drills/{job_id}", tags=["drills"], dependencies=reader)
    def get_drill(job_id: JobId) -> dict:
        return job_or_404(job_id, "drill").view()

    @app.get("/api/v1/jobs", tags=["jobs"], dependencies=reader)
    def list_jobs() -> list[dict]:
        return jobs_of(None)

    @app.get("/api/v1/jobs/{job_id}", tags=["jobs"], dependencies=reader)
    def get_job(job_id: JobId) -> dict:
        return job_or_404(job_id).view()

    @app.delete("/api/v1/jobs/{job_id}", tags=["jobs"], dependencies=writer,
                summary="Cancel a running job (its verb cleans up what it made)")
    def cancel_job(job_id: JobId) -> dict:
        job = job_or_404(job_id)
        if job.state != "running":
            raise Conflict(f"job {job_id} is {job.state}, not running")
        runner.cancel(job)
        if job.kind == "lab-up" and job.prefix:
            operations.stop_lab(job.prefix)
        return job.view(with_result=False)

    # -- live updates -----------------------------------------------------------------------
    def snapshot(prefix: str | None) -> dict:
        labs = operations.running_prefixes()
        lab = None
        if prefix and prefix in labs:
            try:
                lab = lab_status(prefix)
            except (HTTPException, EgovlabError):
                lab = None
        matrix = runner.latest("probe-matrix", prefix) if prefix else None
        return {"labs": labs, "lab": lab, "matrix_job": matrix.id if matrix else None,
                "jobs": [{k: j[k] for k in ("id", "kind", "prefix", "state")} for j in jobs_of(None)[:20]]}

    @app.get("/api/v1/events", tags=["server"], dependencies=reader,
             summary="Server-sent events: a `status` event whenever the labs, a lab's links or the jobs change")
    async def events(request: Request, prefix: Annotated[str | None, Query(pattern=PREFIX)] = None):
        async def stream():
            last, last_sent = None, 0.0
            while not await request.is_disconnected():
                snap = await run_in_threadpool(snapshot, prefix)
                text = json.dumps(snap, sort_keys=True)
                if text != last:
                    yield f"event: status\ndata: {text}\n\n"
                    last, last_sent = text, time.monotonic()
                elif time.monotonic() - last_sent > 15:
                    yield ": keep-alive\n\n"
                    last_sent = time.monotonic()
                await asyncio.sleep(0.5)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    document_errors(app)
    return app
