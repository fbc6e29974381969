"""LGSP: the provincial integration gateway, the single point between the province's
services and the national NGSP (§VIII.2.c). It relays and counts; it stores nothing."""
from __future__ import annotations

from prometheus_client import Counter

from .common import Service, setting

service = Service("lgsp", "LGSP — provincial integration and sharing platform")
app = service.app
NGSP = setting("NGSP_URL", "https://ngsp.invalid")
relayed = Counter("egov_lgsp_relayed", "Calls relayed to NGSP", ["call"], registry=service.registry)


@app.post("/relay/ngsp/citizens/verify")
async def verify_citizen(body: dict) -> dict:
    result = await service.call("ngsp", "POST", f"{NGSP}/v1/citizens/verify", json=body)
    relayed.labels("citizens/verify").inc()
    return {**result, "via": "lgsp"}
