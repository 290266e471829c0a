"""The look-ahead's HTTP door: ``GET /api/sites/{site}/lookahead``, the board's "next two hours" panel."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Query

from edge.contract import iso_ts

from hub.board import site_state
from hub.messages import render_all

LABELS = ("plan.panel_title", "plan.time", "plan.forecast", "plan.band", "plan.needed", "plan.open",
          "plan.scheduled", "plan.pool")


def lookahead_view(st, now: float, hours: float) -> dict[str, Any]:
    """Per service and per pool of shared counters: forecast, counters needed and open, next ``hours``."""
    la = st.lookahead
    labels = {k.split(".", 1)[1]: render_all(k) for k in LABELS}
    if la is None:
        return {"site": st.site.id, "ready": False, "labels": labels, "services": [], "pools": []}
    tz = ZoneInfo(st.site.timezone)
    first = max(0, la.slot_at(now))
    ks = list(range(first, min(len(la.starts), first + int(hours * 4))))
    slots = [{"start": iso_ts(la.starts[k]), "local": datetime.fromtimestamp(la.starts[k], tz).strftime("%H:%M")}
             for k in ks]
    open_by = st.book.open_counters
    services = []
    for s in st.site.services:
        services.append({"service": s.id, "name": s.name or s.id,
                         "open": sorted(c for c, svcs in open_by.items() if s.id in svcs),
                         "forecast": [round(float(la.mean[s.id][k]), 1) for k in ks],
                         "low": [int(la.low[s.id][k]) for k in ks], "high": [int(la.high[s.id][k]) for k in ks],
                         "needed": [int(la.need_service[s.id][k]) for k in ks]})
    pools = [{"services": list(p.services), "open": sorted(c for c, svcs in open_by.items() if set(svcs) & set(p.services)),
              "needed": [int(la.need_pool[p.key][k]) for k in ks],
              "scheduled": [len(la.scheduled_in(p.counters, k)) for k in ks]} for p in la.pools]
    return {"site": st.site.id, "ready": True, "made_at": iso_ts(la.made_at), "source": la.source,
            "labels": labels, "slots": slots, "services": services, "pools": pools}


def install(app: FastAPI, hub) -> None:
    @app.get("/api/sites/{site}/lookahead")
    def lookahead(site: str, hours: float = Query(2.0, gt=0, le=24)) -> dict[str, Any]:
        """The next hours per 15-minute slot: forecast arrivals (80 % interval), counters needed and open;
        per pool of services sharing counters, the need counted once. ``ready`` false until the first refresh."""
        st = site_state(hub, site)
        with hub.lock:
            return lookahead_view(st, hub.clock.now(), hours)
