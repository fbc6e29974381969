"""Cổng Dịch vụ công: the public-service portal in the DMZ, behind nginx (TLS). Citizens submit
applications and follow them here; the portal holds no data, the one-stop office does."""
from __future__ import annotations

import uuid

from fastapi.responses import HTMLResponse

from .common import Service, setting
from .models import Application

service = Service("cong-dvc", "Cổng Dịch vụ công — public-service portal")
app = service.app
MOTCUA = setting("MOTCUA_URL", "http://mot-cua.invalid")


@app.get("/", response_class=HTMLResponse)
async def home() -> str:
    return ("<!doctype html><title>Cổng Dịch vụ công</title><h1>Cổng Dịch vụ công tỉnh</h1>"
            "<p>POST /api/applications to submit; GET /api/applications/ID to follow it.</p>")


@app.post("/api/applications", status_code=201)
async def submit(application: Application) -> dict:
    return await service.call("mot-cua", "POST", f"{MOTCUA}/applications", json=application.model_dump())


@app.get("/api/applications/{app_id}")
async def follow(app_id: uuid.UUID) -> dict:
    return await service.call("mot-cua", "GET", f"{MOTCUA}/applications/{app_id}")
