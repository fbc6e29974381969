"""The lab's control plane: a REST API (FastAPI) over the operations the CLI runs.

Every route under /api/v1 and /metrics needs a bearer token: the read-only role reads, the
operator role also changes things (every POST, PUT and DELETE). Long operations are jobs that
run the CLI verb itself (`jobs.py`); faults and status call the same functions as the CLI
(`egovlab.operations`, `egovlab.lifecycle`). One router per resource (`routes/`); what they
share is the `Context` (`context.py`). Bad input is a 4xx with a `detail` message, never a 500.
"""
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from egovlab import __version__, lifecycle
from egovlab.inventory.errors import EgovlabError, InputError
from egovlab.topology.state import LabError

from .context import Context
from .errors import document_errors, redact
from .guard import Guard
from .jobs import Conflict
from .routes import devices, drills, faults, jobs, labs, policy, probes, scenarios, server, simulations, tests
from .scenarios import NotFound
from .tokens import Tokens

ROUTERS = (server, scenarios, labs, faults, probes, devices, policy, tests, simulations, drills, jobs)


def create_app(tokens: Tokens, data_dir: Path) -> FastAPI:
    ctx = Context.create(data_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        # Leave nothing half-made: a lab whose bring-up was cut short is torn down.
        half_up = [j.prefix for j in ctx.runner.jobs.values() if j.kind == "lab-up" and j.state == "running"]
        await run_in_threadpool(ctx.runner.shutdown)
        for prefix in half_up:
            await run_in_threadpool(lifecycle.stop, prefix)

    app = FastAPI(title="egovlab control API", version=__version__, lifespan=lifespan,
                  description="Run the emulated province: scenarios, labs, faults, probes, simulations and "
                              "failover drills. Bearer tokens: read-only, or operator for every change.")
    app.state.context = ctx
    app.add_middleware(Guard, tokens=tokens)

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

    for module in ROUTERS:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=server.WEB), name="static")
    document_errors(app)
    return app
