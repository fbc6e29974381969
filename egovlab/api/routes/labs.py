"""/api/v1/labs: the labs up on this machine, bringing one up (`egovlab up --detach`) and down."""
from fastapi import APIRouter, HTTPException

from egovlab import lifecycle, operations
from egovlab.topology import faults
from egovlab.topology.state import read_state

from .. import views
from ..bodies import LabUp
from ..context import BEARER, Ctx, Prefix
from ..jobs import Conflict

router = APIRouter(prefix="/api/v1/labs", tags=["labs"], dependencies=BEARER)


def _dump(record) -> dict | None:
    return None if record is None else record.model_dump(exclude={"pids"})


@router.get("")
def list_labs(ctx: Ctx) -> list[dict]:
    return [ctx.lab_status(p) for p in lifecycle.running_prefixes()]


@router.get("/{prefix}")
def get_lab(ctx: Ctx, prefix: Prefix) -> dict:
    return ctx.lab_status(prefix)


@router.put("/{prefix}", status_code=202, summary="Bring a lab up (a job: `egovlab up --detach`)")
def lab_up(ctx: Ctx, prefix: Prefix, body: LabUp) -> dict:
    if read_state(prefix) is not None:
        raise Conflict(f"a lab with prefix '{prefix}' is already up (or its remains: DELETE it first)")
    source = ctx.store.path(body.scenario)
    ctx.store.load(body.scenario)  # bad scenarios fail here, before a job starts
    verb = ["up", source, "--detach", "--prefix", prefix, "--sdn" if body.sdn else "--standalone",
            "--ovs-shards", str(body.ovs_shards)]
    if body.hosts_per_site is not None:
        verb += ["--hosts-per-site", str(body.hosts_per_site)]
    ctx.statuses.forget(prefix)
    return ctx.runner.submit("lab-up", verb, prefix=prefix, params=body.model_dump(),
                             after=lambda job: {"prefix": prefix, "record": _dump(read_state(prefix))}).view()


@router.delete("/{prefix}", status_code=202,
               summary="Stop a lab and remove everything it made (a job: `egovlab down`)")
def lab_down(ctx: Ctx, prefix: Prefix) -> dict:
    if read_state(prefix) is None:  # a lab whose process died leaves its state: down removes it
        raise HTTPException(404, f"no lab with prefix '{prefix}' is up")
    job = ctx.runner.submit("lab-down", ["down", "--prefix", prefix], prefix=prefix)
    ctx.statuses.forget(prefix)
    return job.view()


@router.get("/{prefix}/topology")
def lab_topology(ctx: Ctx, prefix: Prefix) -> dict:
    ctx.lab_or_404(prefix)
    _, sc, plan = operations.running_lab(prefix)
    return views.topology(sc, set(faults.links_down(plan)), lab_up=True)
