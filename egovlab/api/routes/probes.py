"""/api/v1/labs/{prefix}/probes: the reachability matrix against intent (`egovlab probe matrix`)."""
from fastapi import APIRouter, HTTPException

from .. import views
from ..context import BEARER, Ctx, Prefix

router = APIRouter(prefix="/api/v1/labs/{prefix}/probes", tags=["probes"], dependencies=BEARER)


@router.post("/matrix", status_code=202,
             summary="Probe the reachability matrix against intent (a job: `egovlab probe matrix`)")
def probe(ctx: Ctx, prefix: Prefix) -> dict:
    ctx.lab_or_404(prefix)
    ctx.statuses.forget(prefix)
    return ctx.runner.submit("probe-matrix", ["probe", "matrix", "--prefix", prefix, "--json", "{dir}/matrix.json"],
                             prefix=prefix, result_name="matrix.json").view(with_result=False)


@router.get("/matrix", summary="The latest finished matrix of the lab, with its heat map")
def latest_matrix(ctx: Ctx, prefix: Prefix) -> dict:
    job = ctx.runner.latest("probe-matrix", prefix)
    if job is None:
        raise HTTPException(404, f"no probe matrix of lab '{prefix}' yet (POST to this path runs one)")
    summary = {k: v for k, v in job.result.items() if k != "results"}
    return {"job": job.id, "finished": job.finished, "summary": summary, "heatmap": views.heatmap(job.result)}
