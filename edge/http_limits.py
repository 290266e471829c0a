"""A request-body size limit per route, enforced before the body is read into memory.

Why a middleware of our own: neither FastAPI nor uvicorn limits request bodies, and a
handler that calls ``await request.body()`` (or a pydantic body) holds the whole body
in memory before it can look at it. ``BodyLimit`` refuses a declared
``Content-Length`` over the route's limit with 413 without reading a byte, and
counts the bytes of a body sent without one (chunked), refusing as soon as they pass
the limit. uvicorn discards what the client still sends, so memory never follows
the client. Used by the hub and by the edge box's calibration editor.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from starlette.exceptions import HTTPException

KIB, MIB = 1024, 1024 * 1024


@dataclass(frozen=True)
class Limit:
    """The largest body (bytes) for requests whose method and path match ``pattern`` (a regex, full match)."""

    method: str
    pattern: str
    max_bytes: int


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than this route's limit of {limit} bytes")


class BodyLimit:
    """Pure ASGI middleware (no buffering, so streamed responses such as SSE pass through untouched).

    ``limits`` are tried in order, the first match wins; every other request may send ``default`` bytes."""

    def __init__(self, app, limits: list[Limit], default: int = 64 * KIB):
        self.app = app
        self.default = default
        self._limits = [(lim.method.upper(), re.compile(lim.pattern), lim.max_bytes) for lim in limits]

    def limit_for(self, method: str, path: str) -> int:
        for m, rx, n in self._limits:
            if m == method and rx.fullmatch(path):
                return n
        return self.default

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope["method"], scope["path"])
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _refuse(send, 400, "Content-Length is not a number")
                if declared > limit:
                    return await _refuse(send, 413, BodyTooLarge(limit).detail)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:      # a chunked body: refuse at the first chunk over the limit
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge as exc:   # raised where no exception handler catches it (a plain ASGI route)
            if started:
                raise
            await _refuse(send, 413, exc.detail)


async def _refuse(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
