"""/api/v1/labs/{prefix}/faults: inject, list and clear a running lab's faults (as `egovlab fault`)."""
from fastapi import APIRouter

from egovlab import operations
from egovlab.topology import faults

from ..bodies import FaultRequest
from ..context import BEARER, Ctx, Prefix

router = APIRouter(prefix="/api/v1/labs/{prefix}/faults", tags=["faults"], dependencies=BEARER)


@router.get("")
def list_faults(ctx: Ctx, prefix: Prefix) -> dict:
    ctx.lab_or_404(prefix)
    return {"active": [vars(r) for r in faults.active(prefix)], "history": [vars(r) for r in faults.history(prefix)]}


@router.post("", status_code=201, summary="Inject a fault (or repair one: link-up, switch-up, restore, dc-up)")
def inject(ctx: Ctx, prefix: Prefix, body: FaultRequest) -> dict:
    ctx.lab_or_404(prefix)
    rec = operations.inject_fault(prefix, body.action, body.target)
    ctx.statuses.forget(prefix)
    return {**vars(rec), "iso": rec.iso}


@router.delete("", summary="Repair everything the faults took down")
def clear(ctx: Ctx, prefix: Prefix) -> dict:
    ctx.lab_or_404(prefix)
    cleared = operations.clear_faults(prefix)
    ctx.statuses.forget(prefix)
    return {"cleared": cleared}
