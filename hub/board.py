"""The duty manager's live board: static page, login/logout, and the few read endpoints it needs.

The page itself is plain HTML/JS/CSS in ``hub/board/`` (package data, no build
step): it loads the hall once over the API, then follows ``/api/stream`` and
re-fetches on reconnect, so it never polls. What the existing API does not say
(who is logged in, camera and ticket-feed health, an hour of counts per zone)
is served here.
"""

from __future__ import annotations

import asyncio
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select

from edge.redact import redact
from hub.access import COOKIE, Access, Throttled, login_url, safe_next

STATIC = files("hub") / "board"


def zone_series(storage, site: str, since: float, until: float, step_s: float) -> dict[str, list[int | None]]:
    """Highest count of each zone per ``step_s`` bucket from ``since`` to ``until`` (None: no reading),
    from stored occupancy, so a board opened mid-morning shows the last hour at once."""
    from hub.storage import occupancy

    n = max(1, int((until - since) // step_s))
    out: dict[str, list[int | None]] = {}
    q = (select(occupancy.c.zone, occupancy.c.ts, occupancy.c.count)
         .where(occupancy.c.site == site, occupancy.c.ts >= since, occupancy.c.ts <= until))
    with storage.engine.connect() as conn:
        for zone, ts, count in conn.execute(q):
            row = out.setdefault(zone, [None] * n)
            i = min(n - 1, int((ts - since) // step_s))
            row[i] = count if row[i] is None else max(row[i], count)
    return out


def site_health(st, now: float) -> dict[str, Any]:
    """Each camera's last state and how long since it was heard; the ticket feed's last event."""
    r = st.rules
    cams = []
    for cam in st.site.cameras:
        seen = st.camera_seen.get(cam.id)
        state = st.camera_state.get(cam.id)
        age = None if seen is None else round(now - seen, 1)
        ok = state is not None and state.value == "online" and age is not None and age < r.camera_stale_s
        cams.append({"camera": cam.id, "name": cam.name or cam.id, "state": state.value if state else "unknown",
                     "detail": redact(st.camera_detail.get(cam.id, "")), "age_s": age, "ok": ok})
    last = st.book.last_event_at
    t_age = None if last is None else round(now - last, 1)
    return {"cameras": cams, "tickets": {"age_s": t_age, "open_counters": sorted(st.book.open_counters),
                                         "ok": t_age is not None and t_age < r.ticket_stale_s}}


def site_state(hub, site: str):
    """The live state of one of the hub's sites; 404 naming the sites it serves."""
    if site not in hub.sites:
        raise HTTPException(404, f"this hub does not serve site {site!r} (sites: {', '.join(hub.sites)})")
    return hub.sites[site]


def _page(name: str) -> HTMLResponse:
    return HTMLResponse((STATIC / name).read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})


def install_board(app: FastAPI, hub, access: Access | None) -> None:
    """Add the board's routes to the hub's app (``access`` None: an open hub, no login page needed)."""
    app.state.access = access
    app.mount("/board/static", StaticFiles(directory=str(STATIC)), name="board-static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/board", 303)

    @app.get("/board", include_in_schema=False)
    def board() -> HTMLResponse:
        return _page("index.html")

    @app.get("/login", include_in_schema=False)
    def login_form() -> Response:
        if access is None:
            return RedirectResponse("/board", 303)
        return _page("login.html")

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        """Form login: a signed cookie (HttpOnly, SameSite=Strict, so another site cannot post as you)."""
        if access is None:
            return RedirectResponse("/board", 303)
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))   # BodyLimit: 4 KiB at most
        name, client = form.get("name", [""])[0], request.client.host if request.client else ""
        back = form.get("next", [""])[0]
        # scrypt takes ~0.1 s: off the event loop, so the board's other requests and SSE keep flowing
        try:
            who = await asyncio.to_thread(access.login, name, form.get("password", [""])[0], client)
        except Throttled as exc:
            return RedirectResponse(login_url(back, failed="1", throttled="1"), 303,
                                    headers={"Retry-After": str(max(1, round(exc.retry_after)))})
        if who is None:
            return RedirectResponse(login_url(back, failed="1"), 303)
        resp = RedirectResponse(safe_next(back), 303)
        resp.set_cookie(COOKIE, access.session_cookie(who), max_age=int(access.session_s), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
        return resp

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        """Revokes the session (the cookie is refused from now on, even if a copy of it was kept)."""
        if access is not None and COOKIE in request.cookies:
            access.revoke(request.cookies[COOKIE])
        resp = RedirectResponse("/login", 303)
        resp.delete_cookie(COOKIE)
        return resp

    @app.get("/api/me")
    def me(request: Request) -> dict[str, Any]:
        """The logged-in user and whether they may acknowledge/resolve (the board hides buttons otherwise)."""
        user = request.scope.get("state", {}).get("user")
        if access is None:
            return {"name": "", "role": "duty_manager", "can_act": True, "auth": False}
        return {**user.to_dict(), "auth": True}

    @app.get("/api/sites/{site}/health")
    def health(site: str) -> dict[str, Any]:
        st = site_state(hub, site)
        with hub.lock:
            return site_health(st, hub.clock.now())

    @app.get("/api/sites/{site}/series")
    def series(site: str, minutes: int = Query(60, ge=1, le=24 * 60),
               step_s: int = Query(60, ge=5, le=3600)) -> dict[str, Any]:
        """Per-zone highest count per step over the last ``minutes`` (the board's sparklines)."""
        site_state(hub, site)
        with hub.lock:
            now = hub.clock.now()
            hub._flush()                 # the latest counts are still in the hub's batch
        # the query itself runs without the hub's lock (a day of counts takes seconds; ingest goes on)
        data = zone_series(hub.storage, site, now - minutes * 60, now, step_s)
        return {"until": now, "step_s": step_s, "zones": data}

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return FileResponse(str(STATIC / "favicon.svg"), media_type="image/svg+xml")
