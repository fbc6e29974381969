"""/api/v1/labs/{prefix}/policy: the policy in force, a candidate's diff, commit and rollback
(the same functions as `egovlab policy`)."""
from fastapi import APIRouter

from egovlab import policy_changes

from ..bodies import PolicyChange
from ..context import BEARER, Ctx, Prefix

router = APIRouter(prefix="/api/v1/labs/{prefix}/policy", tags=["policy"], dependencies=BEARER)


@router.get("", summary="The access policy in force and its version (0: the scenario's own)")
def get_policy(ctx: Ctx, prefix: Prefix) -> dict:
    ctx.lab_or_404(prefix)
    return policy_changes.current(prefix)


@router.post("/compare", summary="What a candidate policy would change: the policy's diff and each switch's rules")
def compare_policy(ctx: Ctx, prefix: Prefix, body: PolicyChange) -> dict:
    ctx.lab_or_404(prefix)
    return policy_changes.compare(prefix, body.policy, body.mode, body.device)


@router.put("", summary="Commit a policy change: the lab's controller applies it at once")
def commit_policy(ctx: Ctx, prefix: Prefix, body: PolicyChange) -> dict:
    ctx.lab_or_404(prefix)
    with ctx.policy_lock:
        result = policy_changes.commit(prefix, body.policy, body.mode)
    ctx.statuses.forget(prefix)
    return result


@router.post("/rollback", summary="Back to the previous policy version")
def rollback_policy(ctx: Ctx, prefix: Prefix) -> dict:
    ctx.lab_or_404(prefix)
    with ctx.policy_lock:
        result = policy_changes.rollback(prefix)
    ctx.statuses.forget(prefix)
    return result
