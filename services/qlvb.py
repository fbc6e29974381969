"""QLVB: document management — records every document of an application (receipt, decision)."""
from __future__ import annotations

import uuid

import psycopg
from fastapi import HTTPException
from pydantic import BaseModel, Field

from .common import Service

service = Service("qlvb", "QLVB — document management and administration", database=True)
app = service.app


class Document(BaseModel):
    application_id: uuid.UUID
    kind: str = Field(pattern="^(receipt|decision|attachment)$")
    title: str = Field(min_length=1, max_length=500)


@app.post("/documents", status_code=201)
async def record(doc: Document) -> dict:
    try:
        async with service.pool.connection() as conn:
            row = await (await conn.execute(
                "INSERT INTO documents (application_id, kind, title) VALUES (%s, %s, %s) RETURNING id",
                (doc.application_id, doc.kind, doc.title))).fetchone()
    except (psycopg.Error, TimeoutError) as exc:
        raise await service.db_unavailable(exc)
    return {"id": row[0], **doc.model_dump(mode="json")}


@app.get("/documents")
async def documents(application_id: uuid.UUID) -> list[dict]:
    try:
        async with service.pool.connection() as conn:
            rows = await (await conn.execute(
                "SELECT id, kind, title, created_at FROM documents WHERE application_id = %s ORDER BY id",
                (application_id,))).fetchall()
    except (psycopg.Error, TimeoutError) as exc:
        raise await service.db_unavailable(exc)
    if not rows:
        raise HTTPException(404, f"no documents for application {application_id}")
    return [{"id": r[0], "kind": r[1], "title": r[2], "created_at": r[3].isoformat()} for r in rows]
