"""Một cửa điện tử: the one-stop office. It receives an application, checks the citizen with
the national registry through LGSP, routes it to the department that handles the procedure,
records its documents in QLVB, and returns the department's decision to the citizen.

An application is acknowledged (201) only once its row is committed, so with synchronous
replication an acknowledged application is on the standby too.
"""
from __future__ import annotations

import uuid

import psycopg
from fastapi import HTTPException

from .common import Service, setting
from .models import Application, Decision

service = Service("mot-cua", "Một cửa điện tử — one-stop office", database=True)
app = service.app
LGSP = setting("LGSP_URL", "http://lgsp.invalid")
QLVB = setting("QLVB_URL", "http://qlvb.invalid")

# Which department handles a procedure (the catalogue of administrative procedures is far
# longer; these are the most frequent kinds, by the departments of the Đồng Tháp scenario).
ROUTES = {
    "birth-registration": "so-tu-phap",
    "criminal-record": "so-tu-phap",
    "business-registration": "so-khdt",
    "construction-permit": "so-xay-dung",
    "land-use-certificate": "so-tnmt",
    "driving-licence": "so-gtvt",
}


def _row(r) -> dict:
    return {"id": str(r[0]), "citizen_id": r[1], "procedure": r[2], "department": r[3], "status": r[4],
            "result": r[5], "received_at": r[6].isoformat(), "decided_at": r[7].isoformat() if r[7] else None}


COLUMNS = "id, citizen_id, procedure, department, status, result, received_at, decided_at"


@app.post("/applications", status_code=201)
async def receive(application: Application) -> dict:
    department = ROUTES.get(application.procedure)
    if department is None:
        raise HTTPException(422, f"unknown procedure '{application.procedure}'; known: {', '.join(sorted(ROUTES))}")
    check = await service.call("lgsp", "POST", f"{LGSP}/relay/ngsp/citizens/verify",
                               json={"citizen_id": application.citizen_id})
    if not check.get("verified"):
        raise HTTPException(422, "the national registry does not know this citizen")
    app_id = uuid.uuid4()
    try:
        async with service.pool.connection() as conn:
            row = await (await conn.execute(
                f"INSERT INTO applications (id, citizen_id, procedure, department, form) VALUES (%s, %s, %s, %s, %s) "
                f"RETURNING {COLUMNS}",
                (app_id, application.citizen_id, application.procedure, department,
                 psycopg.types.json.Jsonb(application.form)))).fetchone()
    except (psycopg.Error, TimeoutError) as exc:
        raise await service.db_unavailable(exc)
    await service.call("qlvb", "POST", f"{QLVB}/documents",
                       json={"application_id": str(app_id), "kind": "receipt", "title": f"receipt: {application.procedure}"})
    return _row(row)


async def _fetch(sql: str, args: tuple) -> list:
    try:
        async with service.pool.connection() as conn:
            return await (await conn.execute(sql, args)).fetchall()
    except (psycopg.Error, TimeoutError) as exc:
        raise await service.db_unavailable(exc)


@app.get("/applications/{app_id}")
async def status(app_id: uuid.UUID) -> dict:
    rows = await _fetch(f"SELECT {COLUMNS} FROM applications WHERE id = %s", (app_id,))
    if not rows:
        raise HTTPException(404, f"no application {app_id}")
    return _row(rows[0])


@app.get("/departments/{department}/queue")
async def queue(department: str, limit: int = 50) -> list[dict]:
    rows = await _fetch(f"SELECT {COLUMNS} FROM applications WHERE department = %s AND status = 'received' "
                        "ORDER BY received_at LIMIT %s", (department, min(max(limit, 1), 500)))
    return [_row(r) for r in rows]


@app.post("/applications/{app_id}/decision")
async def decide(app_id: uuid.UUID, decision: Decision) -> dict:
    rows = await _fetch(f"UPDATE applications SET status = 'decided', result = %s, decided_at = now() "
                        f"WHERE id = %s AND status = 'received' RETURNING {COLUMNS}", (decision.result, app_id))
    if not rows:
        raise HTTPException(409, f"application {app_id} is unknown or already decided")
    await service.call("qlvb", "POST", f"{QLVB}/documents",
                       json={"application_id": str(app_id), "kind": "decision",
                             "title": f"decision: {decision.result} by {decision.officer}"})
    return _row(rows[0])
