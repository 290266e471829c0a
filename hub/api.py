"""The hub's HTTP API (FastAPI): live zones and queues, alerts with acknowledge/resolve, ticket intake, SSE.

FastAPI gives validation and the OpenAPI document (``/openapi.json``, ``/docs``)
for free; the handlers only call ``Hub`` methods, which hold the lock.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterable, Literal

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError

from edge.http_limits import KIB, MIB, BodyLimit, Limit
from hub.access import Access, RequireLogin, actor, require
from hub.board import install_board, site_state
from hub.messages.waits import wait_reason, wait_texts
from hub.planning.routes import install as install_lookahead
from hub.review.routes import install as install_review
from hub.tickets import TicketError, parse

# Request bodies (bytes), refused with 413 before they are read: one event, one day's log of a busy hall
# (a real day is about 250 KB), a login form; everything else (alert actions, ...) DEFAULT_BODY.
BODY_LIMITS = [Limit("POST", r"/login", 4 * KIB), Limit("POST", r"/api/sites/[^/]+/tickets", 16 * KIB),
               Limit("POST", r"/api/sites/[^/]+/tickets\.csv", 4 * MIB)]
DEFAULT_BODY = 16 * KIB
MAX_STREAMS_PER_USER = 5      # open SSE streams per user (or per address on an open hub); 429 beyond
log = logging.getLogger("hallgrid.hub")
TICKET_EXAMPLE = {"event": "issued", "ticket": "A001", "service": "billing", "ts": "2026-11-23T08:00:00.000Z"}


class Who(BaseModel):
    who: str = Field(min_length=1, max_length=128, description="Who acknowledges or resolves (name or badge).")


def create_app(hub, access: Access | None = None) -> FastAPI:
    """The API and the board; ``access`` None serves them open (tests, a hub behind its own gate)."""
    app = FastAPI(title="hallgrid hub", version="1",
                  description="Zone occupancy, ticket queues and staffing alerts of customer-service halls.")
    if access is not None:
        app.add_middleware(RequireLogin, access=access)
    app.add_middleware(BodyLimit, limits=BODY_LIMITS, default=DEFAULT_BODY)   # outermost: before any login
    install_board(app, hub, access)
    install_lookahead(app, hub)
    install_review(app, hub)
    streams: dict[str, int] = {}      # user -> open SSE streams (async code only: the event loop is its lock)

    @app.exception_handler(RequestValidationError)
    async def count_invalid(request: Request, exc: RequestValidationError):
        """FastAPI's own 422 (body not JSON, field missing): counted and logged like any bad input."""
        source = "ticket" if request.url.path.endswith("/tickets") else "http"
        site = request.path_params.get("site", "")
        hub._drop(source, site, f"{request.method} {request.url.path}: {exc.errors()[0].get('msg', 'invalid')}")
        return await request_validation_exception_handler(request, exc)

    @app.get("/api/sites")
    def sites() -> list[dict[str, Any]]:
        return [{"id": s.site.id, "name": s.site.name} for s in hub.sites.values()]

    @app.get("/api/sites/{site}/zones")
    def zones(site: str) -> list[dict[str, Any]]:
        st = site_state(hub, site)
        with hub.lock:
            return st.zone_list(hub.clock.now())

    @app.get("/api/sites/{site}/queues")
    def queues(site: str) -> list[dict[str, Any]]:
        """Per service: the figures, and the wait in words in every language (``wait_text``), with
        ``wait_reason`` ok | overloaded | no_counter: what the board shows, never a bare null."""
        st = site_state(hub, site)
        with hub.lock:
            rows = st.queues(hub.clock.now())
        return [{**q, "wait_reason": wait_reason(q), "wait_text": wait_texts(q)} for q in rows]

    @app.get("/api/alerts")
    def alerts(site: str | None = None, state: Literal["active", "all", "open", "acknowledged", "resolved"] = "active",
               limit: int = Query(200, ge=1, le=5000)) -> list[dict[str, Any]]:
        """Active alerts from memory; ``all`` or a state from storage (history across restarts)."""
        if state == "active":
            return [a.to_dict() for a in hub.alerts(site)]
        with hub.lock:
            rows = hub.storage.alerts(site, None if state == "all" else state, limit)
        return [a.to_dict() for a in rows]

    def _act(alert_id: str, fn, who: str) -> dict[str, Any]:
        try:
            return fn(alert_id, who).to_dict()
        except KeyError:
            raise HTTPException(404, f"no alert {alert_id!r}") from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None

    @app.post("/api/alerts/{alert_id}/acknowledge")
    def acknowledge(alert_id: str, body: Who, request: Request) -> dict[str, Any]:
        return _act(alert_id, hub.acknowledge, actor(request, body.who))

    @app.post("/api/alerts/{alert_id}/resolve")
    def resolve(alert_id: str, body: Who, request: Request) -> dict[str, Any]:
        return _act(alert_id, hub.resolve, actor(request, body.who))

    @app.get("/api/alerts/{alert_id}/history")
    def history(alert_id: str) -> list[dict[str, Any]]:
        with hub.lock:
            rows = hub.storage.history(alert_id)
        if not rows:
            raise HTTPException(404, f"no alert {alert_id!r}")
        return rows

    @app.post("/api/sites/{site}/tickets", status_code=202)
    def post_ticket(site: str, request: Request, event: dict[str, Any] = Body(examples=[TICKET_EXAMPLE]),
                    format: Literal["auto", "hallgrid", "qmatic", "qminder"] = "auto") -> dict[str, Any]:
        """One ticket event (hallgrid, Qmatic- or Qminder-style JSON); 422 with the reason when invalid.
        Needs a duty_manager or ticket_feed user (403 for a viewer)."""
        require(request, "tickets")
        site_state(hub, site)
        try:
            e = parse(event, hub.clock.now(), format)
            accepted = hub.ingest_ticket(site, e)
        except TicketError as exc:
            hub._drop("ticket", site, str(exc))
            raise HTTPException(422, str(exc)) from None
        except SQLAlchemyError as exc:
            log.error("storing a ticket event failed: %s", exc)
            raise HTTPException(503, "the hub could not store the event (nothing was changed): send it again") \
                from None
        return {"accepted": accepted, "duplicate": not accepted, "event": e.to_dict()}

    @app.post("/api/sites/{site}/tickets.csv")
    async def post_csv(site: str, request: Request) -> dict[str, Any]:
        """A ticket log as CSV (ts,event,ticket,service,counter,to_service,services); duty_manager or
        ticket_feed. Imported in batches: the hub keeps serving while a large log goes in."""
        require(request, "tickets")
        site_state(hub, site)
        text = (await request.body()).decode("utf-8", errors="replace")
        try:
            return await asyncio.to_thread(hub.import_csv, site, text)
        except SQLAlchemyError as exc:
            log.error("storing a ticket import failed: %s", exc)
            raise HTTPException(503, "the hub could not store a batch of this log; the batches before it are "
                                "in: send the log again (events already in are skipped as duplicates)") from None

    @app.get("/api/stats")
    def stats() -> dict[str, Any]:
        with hub.lock:
            out = {"counters": dict(hub.stats), "recent_drops": list(hub.drops)[-50:]}
        out["notify"] = hub.notify.stats() if hub.notify is not None else []   # per channel: kind and host only
        return out

    async def stream_slot(request: Request) -> str:
        """One of the user's ``MAX_STREAMS_PER_USER`` stream slots (429 when all are taken): a dependency,
        so the refusal comes before the stream starts; the stream's ``finally`` gives it back."""
        user = request.scope.get("state", {}).get("user")
        who = user.name if user is not None else (request.client.host if request.client else "")
        if streams.get(who, 0) >= MAX_STREAMS_PER_USER:
            raise HTTPException(429, f"{MAX_STREAMS_PER_USER} event streams are open for {who or 'you'} "
                                "already: close one (a board tab) first")
        streams[who] = streams.get(who, 0) + 1
        return who

    @app.get("/api/stream", response_class=EventSourceResponse)
    async def stream(limit: int | None = Query(None, ge=1, description="Close after this many events (tests)."),
                     who: str = Depends(stream_slot)) -> AsyncIterable[ServerSentEvent]:
        """Server-sent events: ``alert`` (Alert JSON) and ``zone`` (site, zone, count) updates.

        Starts with a ``snapshot`` of active alerts so a new client needs no second request."""
        q = hub.subscribe()
        try:
            yield ServerSentEvent(event="snapshot", data=[a.to_dict() for a in hub.alerts()])
            sent = 0
            while limit is None or sent < limit:
                kind, data = await q.get()
                yield ServerSentEvent(event=kind, data=data)
                sent += 1
        finally:
            hub.unsubscribe(q)
            streams[who] -= 1

    return app
