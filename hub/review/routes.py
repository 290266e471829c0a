"""The review as a board page: ``GET /board/review?site=...&since=YYYY-MM-DD&lang=zh|en``."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse

from hub.board import site_state


def install(app: FastAPI, hub) -> None:
    @app.get("/board/review", include_in_schema=False)
    async def review_page(site: str | None = None, since: str | None = None,
                          lang: str = Query("en", pattern="^(zh|en)$")) -> HTMLResponse:
        from hub.planning.history import day_start
        from hub.review.report import page
        from hub.review.summary import review

        st = site_state(hub, site or next(iter(hub.sites)))
        tz = ZoneInfo(st.site.timezone)
        now = hub.clock.now()
        try:
            first = date.fromisoformat(since) if since else datetime.fromtimestamp(now, tz).date() - timedelta(days=7)
        except ValueError:
            raise HTTPException(422, f"since={since!r} is not a date YYYY-MM-DD") from None
        # the history query and the charts take a while: off the event loop, and outside the hub's lock
        rv = await asyncio.to_thread(review, hub.storage, st.site.id, day_start(first, tz), now)
        html = await asyncio.to_thread(page, rv, st.site.name, st.site.timezone, lang)
        return HTMLResponse(html)
