"""/api/v1/simulations: capacity runs (`egovlab simulate` as a job)."""
from fastapi import APIRouter

from egovlab.inventory.errors import EgovlabError

from ..bodies import SimulationRequest
from ..context import BEARER, Ctx, job_views

router = APIRouter(prefix="/api/v1/simulations", tags=["simulations"], dependencies=BEARER)


@router.post("", status_code=202, summary="Capacity run: peak hour and a year with failures (a job: `egovlab simulate`)")
def simulate(ctx: Ctx, body: SimulationRequest) -> dict:
    sc = ctx.store.load(body.scenario)
    if sc.spec.resilience is None:
        raise EgovlabError(f"scenario '{body.scenario}': resilience: needed for the yearly run")
    verb = ["simulate", ctx.store.path(body.scenario), "--replications", str(body.replications), "--horizon",
            body.horizon, "--peak-minutes", f"{body.peak_minutes:g}", "--seed", str(body.seed), "--out", "{dir}"]
    return ctx.runner.submit("simulation", verb, params=body.model_dump(),
                             result_name="simulation.json").view(with_result=False)


job_views(router, "simulation")
