"""The API's front door: who may call, and how much they may send, decided before any route runs.

FastAPI reads and parses a request's body before it resolves a route's dependencies, so a
token checked in a dependency is checked after an unauthenticated client has made the server
read (and JSON-parse) whatever it sent: three 100 MB posts grew the server to 389 MB. This
ASGI middleware answers 401/403 from the headers alone, refuses a declared body over the limit
with 413 before reading it, and stops reading an undeclared (chunked) one at the limit.

The rule, in one place: everything needs a token but the web page, its static files, liveness
and the schema; every POST, PUT, PATCH and DELETE needs the operator role.
"""
from __future__ import annotations

import json

from starlette.exceptions import HTTPException

from .tokens import Tokens

MAX_BODY_BYTES = 8 * 2**20  # a 2-million-character scenario upload, JSON-escaped, fits
OPEN_PATHS = ("/", "/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
OPEN_PREFIXES = ("/static/",)
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


async def _answer(send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app, tokens: Tokens, max_body: int = MAX_BODY_BYTES):
        self.app, self.tokens, self.max_body = app, tokens, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not is_open(scope["path"]):
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return await _answer(send, 401, "missing bearer token (Authorization: Bearer TOKEN)",
                                     {"WWW-Authenticate": "Bearer"})
            role = self.tokens.role_of(token.strip())
            if role is None:
                return await _answer(send, 401, "invalid token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            if scope["method"] in CHANGES and role != "operator":
                return await _answer(send, 403, "this call changes the lab: it needs an operator token")
            scope.setdefault("state", {})["role"] = role
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _answer(send, 400, "Content-Length: expected a number of bytes")
            if int(declared) > self.max_body:
                return await _answer(send, 413, f"request body over {self.max_body // 2**20} MiB")
        return await self.app(scope, self._capped(receive), send)

    def _capped(self, receive):
        seen = 0

        async def capped():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise HTTPException(413, f"request body over {self.max_body // 2**20} MiB")
            return message

        return capped
