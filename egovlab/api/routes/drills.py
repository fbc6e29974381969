"""/api/v1/drills: failover drills on the real services (`egovlab drill` as a job)."""
from fastapi import APIRouter

from egovlab import params
from egovlab.topology.state import read_state

from ..bodies import DrillRequest
from ..context import BEARER, Ctx, job_views
from ..jobs import Conflict

router = APIRouter(prefix="/api/v1/drills", tags=["drills"], dependencies=BEARER)


@router.post("", status_code=202, summary="Failover drill on the real services (a job: `egovlab drill`)")
def drill(ctx: Ctx, body: DrillRequest) -> dict:
    from egovlab.services.placement import plan_deployment
    from egovlab.topology.model import emulation_plan

    sc = ctx.store.load(body.scenario)
    params.data_centre(sc, body.fail, "fail")
    plan_deployment(sc, emulation_plan(sc, prefix=body.prefix, hosts_per_site=body.hosts_per_site), body.replication)
    if read_state(body.prefix) is not None:
        raise Conflict(f"a lab with prefix '{body.prefix}' is up: the drill brings up its own")
    verb = ["drill", ctx.store.path(body.scenario), "--fail", body.fail, "--seconds", f"{body.seconds:g}",
            "--rate", f"{body.rate:g}", "--prefix", body.prefix, "--json", "{dir}/drill.json"]
    verb += ["--replication", body.replication] if body.replication else []
    verb += ["--failback"] if body.failback else []
    verb += ["--hosts-per-site", str(body.hosts_per_site)] if body.hosts_per_site is not None else []
    r = sc.spec.resilience
    targets = {"targets": {"rto_target_seconds": r.rto_target_s.value if r else None,
                           "rpo_target_seconds": r.rpo_target_s.value if r else None}}
    return ctx.runner.submit("drill", verb, prefix=body.prefix, params=body.model_dump(), result_name="drill.json",
                             after=lambda job: targets).view(with_result=False)


job_views(router, "drill")
