"""Liveness, readiness and metrics routes of the hub's HTTP server.

A container runtime restarts a service that is not *alive* but only stops sending
it traffic while it is not *ready*; mixing the two restarts a hub in a loop while
its broker is still starting. So ``/livez`` (and the older ``/healthz``) answer as
long as the process serves HTTP, and ``/readyz`` only once the hub is subscribed
to the broker and its database answers. Both are public (no hall data);
``/metrics`` is behind the login like the API (Prometheus sends a bearer token).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from edge import VERSION
from hub.ops.metrics import HubMetrics


def database_problem(storage) -> str | None:
    """None when the database answers a trivial query, else why not."""
    try:
        with storage.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:     # any driver error means not ready; the reason is shown, not raised
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None


def install_ops(app: FastAPI, hub) -> None:
    metrics = HubMetrics(hub)

    @app.get("/livez", include_in_schema=False)
    @app.get("/healthz", include_in_schema=False)       # the older name, for load balancers set up with it
    def livez() -> dict[str, object]:
        return {"ok": True, "version": VERSION}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        db = database_problem(hub.storage)
        checks = {"mqtt": "connected" if hub.ready else "not connected", "database": db or "ok"}
        ok = hub.ready and db is None
        return JSONResponse({"ok": ok, "version": VERSION, "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
