"""What the API answers when it refuses: one error body, documented on every operation that can
return it, and never a server file path in it.

Every refusal is `{"detail": "...", "problems": [{"path", "message"}]?}` (Guard's 401/403/413,
the validation handler's 422, the handlers of `app.py`). The OpenAPI schema says which
operations give which status, so a client (or schemathesis) can hold the server to it.
"""
from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from . import guard


class ProblemItem(BaseModel):
    path: str
    message: str


class ErrorBody(BaseModel):
    detail: str
    problems: list[ProblemItem] | None = None


# An absolute path of two or more parts; not a prefix length (198.18.0.0/16, 2001:db8::/32), a
# port (tcp/443) or one of the API's own routes (/api/v1/...).
_PATH = re.compile(r"(?<![\w.:/~-])(?!/api/)(?:/[\w.@+~-]+){2,}/?")


def redact(text: str) -> str:
    """A message for a client: server paths cut to their last part (`jobs/1f…/log.txt` -> `log.txt`)."""
    return _PATH.sub(lambda m: m[0].rstrip("/").rsplit("/", 1)[-1], text)


def redact_data(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_data(v) for v in value]
    return value


def _statuses(path: str, method: str, has_body: bool, has_params: bool) -> dict[int, str]:
    out: dict[int, str] = {}
    if not guard.is_open(path):
        out[401] = "no bearer token, or one this server does not know"
    if method.upper() in guard.CHANGES:
        out[403] = "a read-only token for a call that changes something"
        out[409] = "clashes with what is running or stored (a busy lab, a built-in scenario)"
    if "{" in path or has_body:  # a path, or a body naming a scenario, lab or device
        out[404] = "no such lab, scenario, job or device"
    if has_body:
        out[400] = "a body that cannot be read (a bad Content-Length, JSON nested too deeply)"
        out[413] = f"request body over {guard.MAX_BODY_BYTES // 2**20} MiB"
    if has_body or has_params:
        out[422] = "invalid input: every problem with its field path"
    if "/labs" in path or "/drills" in path:
        out[503] = "the lab cannot run on this machine (no root, no Open vSwitch)"
    return out


def document_errors(app: FastAPI) -> None:
    """Make `app.openapi()` list each operation's error answers with the one error body."""

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components["ErrorBody"] = body
        ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
        for path, item in schema["paths"].items():
            for method, op in item.items():
                responses = op.setdefault("responses", {})
                statuses = _statuses(path, method, "requestBody" in op, bool(op.get("parameters")))
                for status, text in statuses.items():
                    responses[str(status)] = {"description": text, **ref}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
