"""The requests citizens and officers send (shared by the portal and the one-stop office)."""
from __future__ import annotations

from pydantic import BaseModel, Field


class Application(BaseModel):
    citizen_id: str = Field(pattern=r"^\d{12}$")
    procedure: str
    form: dict = {}


class Decision(BaseModel):
    result: str = Field(pattern="^(approved|rejected)$")
    officer: str = Field(min_length=1, max_length=100)
    note: str = ""
