"""What every e-gov service shares: settings from the environment, /health, /metrics, the
PostgreSQL pool, and calls to the next service with their latency measured.

Settings come from environment variables (EGOV_*), which the Ansible role writes into the
supervisor program of each host.
"""
from __future__ import annotations

import os
import time
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, HTTPException, Request
from prometheus_client import CollectorRegistry, Counter, Histogram, make_asgi_app


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(f"EGOV_{name}", default)
    if value is None:
        raise RuntimeError(f"EGOV_{name} is not set")
    return value


class Service:
    """A FastAPI app with the conventions of the lab's services."""

    def __init__(self, name: str, title: str, *, database: bool = False):
        self.name = name
        self.registry = CollectorRegistry()
        self.requests = Counter("egov_requests", "HTTP requests served", ["service", "method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("egov_request_seconds", "Time to serve a request", ["service", "route"],
                                 registry=self.registry)
        self.upstream = Histogram("egov_upstream_seconds", "Time of calls to other services", ["service", "target"],
                                  registry=self.registry)
        self.dsn = setting("DB") if database else None
        self.pool = None
        self.http: httpx.AsyncClient | None = None
        self.app = FastAPI(title=title, lifespan=self._lifespan)
        self.app.mount("/metrics", make_asgi_app(self.registry))
        self.app.middleware("http")(self._measure)
        self.app.get("/health")(self.health)

    @asynccontextmanager
    async def _lifespan(self, app: FastAPI):
        verify = os.environ.get("EGOV_CA_FILE") or True
        self.http = httpx.AsyncClient(timeout=float(setting("UPSTREAM_TIMEOUT_S", "5")), verify=verify)
        if self.dsn:
            from psycopg_pool import AsyncConnectionPool

            # open=False + wait=False: the service starts (and reports unhealthy) while its
            # database is unreachable, e.g. a standby DC before promotion.
            # check: a connection is tried before it is lent, so one left dead by a database
            # restart (a failback fences and re-synchronises it) fails no request.
            self.pool = AsyncConnectionPool(self.dsn, min_size=1, max_size=8, open=False, timeout=5,
                                            kwargs={"autocommit": False}, check=AsyncConnectionPool.check_connection)
            await self.pool.open(wait=False)
        yield
        await self.http.aclose()
        if self.pool is not None:
            await self.pool.close()

    async def _measure(self, request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        if not path.startswith("/metrics"):
            self.requests.labels(self.name, request.method, path, response.status_code).inc()
            self.latency.labels(self.name, path).observe(time.perf_counter() - t0)
        return response

    async def health(self) -> dict:
        status = {"service": self.name, "status": "ok"}
        if self.pool is not None:
            try:
                async with self.pool.connection(timeout=2) as conn:
                    row = await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone()
                status["database"] = "standby (read-only)" if row[0] else "primary"
            except Exception as exc:  # the health endpoint reports, never fails
                status.update(status="degraded", database=f"unreachable: {type(exc).__name__}")
        return status

    async def call(self, target: str, method: str, url: str, **kwargs) -> dict:
        """Call the next service; its failure becomes a 502/504 naming it, not a 500."""
        t0 = time.perf_counter()
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise HTTPException(504, f"{target} did not answer in time")
        except httpx.HTTPError as exc:
            raise HTTPException(502, f"{target} unreachable: {type(exc).__name__}")
        finally:
            self.upstream.labels(self.name, target).observe(time.perf_counter() - t0)
        if response.status_code >= 400:
            raise HTTPException(502 if response.status_code >= 500 else response.status_code,
                                f"{target}: {response.text[:200]}")
        return response.json()

    async def db_unavailable(self, exc: Exception) -> HTTPException:
        return HTTPException(503, f"database unavailable: {type(exc).__name__}")
