"""/api/v1/jobs: every long operation the server runs, and cancelling one."""
from fastapi import APIRouter

from egovlab import lifecycle

from ..context import BEARER, Ctx, JobId
from ..jobs import Conflict

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], dependencies=BEARER)


@router.get("")
def list_jobs(ctx: Ctx) -> list[dict]:
    return ctx.jobs_of(None)


@router.get("/{job_id}")
def get_job(ctx: Ctx, job_id: JobId) -> dict:
    return ctx.job_or_404(job_id).view()


@router.delete("/{job_id}", summary="Cancel a running job (its verb cleans up what it made)")
def cancel_job(ctx: Ctx, job_id: JobId) -> dict:
    job = ctx.job_or_404(job_id)
    if job.state != "running":
        raise Conflict(f"job {job_id} is {job.state}, not running")
    ctx.runner.cancel(job)
    if job.kind == "lab-up" and job.prefix:
        lifecycle.stop(job.prefix)
    return job.view(with_result=False)
