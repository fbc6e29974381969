"""NGSP (national level): the national integration platform the province's LGSP relays to.

A stand-in for the Ministry's platform: it answers the one call the core flow needs, the
citizen check against the national population database (CSDLQG về dân cư)."""
from __future__ import annotations

import re

from fastapi import HTTPException
from pydantic import BaseModel

from .common import Service

service = Service("ngsp", "NGSP — national data integration and sharing platform")
app = service.app
CITIZEN_ID = re.compile(r"^\d{12}$")  # the 12-digit personal identification number


class CitizenQuery(BaseModel):
    citizen_id: str


@app.post("/v1/citizens/verify")
async def verify(query: CitizenQuery) -> dict:
    if not CITIZEN_ID.match(query.citizen_id):
        raise HTTPException(422, "citizen_id: 12 digits expected")
    return {"citizen_id": query.citizen_id, "verified": True, "registry": "CSDLQG về dân cư"}
