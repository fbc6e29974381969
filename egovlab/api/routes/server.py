"""The server itself: the web page, liveness, Prometheus metrics and live updates."""
import asyncio
import json
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from egovlab import __version__, lifecycle
from egovlab.inventory.errors import EgovlabError

from ..bodies import PREFIX
from ..context import BEARER, Context, Ctx, context

WEB = Path(__file__).resolve().parent.parent / "web"
router = APIRouter(tags=["server"])


@router.get("/", include_in_schema=False)
def index():
    return FileResponse(WEB / "index.html")


@router.get("/healthz", summary="Liveness (no token needed)")
def healthz() -> dict:
    return {"status": "ok", "version": __version__}


@router.get("/metrics", dependencies=BEARER, summary="Prometheus metrics", response_class=Response)
def metrics(ctx: Ctx):
    return Response(generate_latest(ctx.registry), media_type=CONTENT_TYPE_LATEST)


def snapshot(ctx: Context, prefix: str | None) -> dict:
    labs = lifecycle.running_prefixes()
    lab = None
    if prefix and prefix in labs:
        try:
            lab = ctx.lab_status(prefix)
        except (HTTPException, EgovlabError):
            lab = None
    matrix = ctx.runner.latest("probe-matrix", prefix) if prefix else None
    return {"labs": labs, "lab": lab, "matrix_job": matrix.id if matrix else None,
            "jobs": [{k: j[k] for k in ("id", "kind", "prefix", "state")} for j in ctx.jobs_of(None)[:20]]}


@router.get("/api/v1/events", dependencies=BEARER,
            summary="Server-sent events: a `status` event whenever the labs, a lab's links or the jobs change")
async def events(request: Request, prefix: Annotated[str | None, Query(pattern=PREFIX)] = None):
    ctx = context(request)

    async def stream():
        last, last_sent = None, 0.0
        while not await request.is_disconnected():
            snap = await run_in_threadpool(snapshot, ctx, prefix)
            text = json.dumps(snap, sort_keys=True)
            if text != last:
                yield f"event: status\ndata: {text}\n\n"
                last, last_sent = text, time.monotonic()
            elif time.monotonic() - last_sent > 15:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(0.5)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
