"""/api/v1/scenarios: the built-in scenarios and those uploaded, validated like the CLI validates."""
from fastapi import APIRouter, Response

from .. import views
from ..bodies import ScenarioUpload
from ..context import BEARER, Ctx, ScenarioPath

router = APIRouter(prefix="/api/v1/scenarios", tags=["scenarios"], dependencies=BEARER)


@router.get("")
def list_scenarios(ctx: Ctx) -> list[dict]:
    return [ctx.store.summary(n) for n in ctx.store.names()]


@router.post("", status_code=201, summary="Upload a scenario; it is validated with the CLI's messages")
def upload_scenario(ctx: Ctx, body: ScenarioUpload) -> dict:
    return ctx.store.save(body.name, body.yaml)


@router.get("/{name}")
def get_scenario(ctx: Ctx, name: ScenarioPath) -> dict:
    return ctx.store.summary(name)


@router.get("/{name}/topology")
def scenario_topology(ctx: Ctx, name: ScenarioPath) -> dict:
    return views.topology(ctx.store.load(name))


@router.delete("/{name}", status_code=204)
def delete_scenario(ctx: Ctx, name: ScenarioPath) -> Response:
    ctx.store.delete(name)
    return Response(status_code=204)
