"""The ``forecast_shortfall`` rule: warn ``forecast_lead_s`` before a slot that needs more counters than are
open or scheduled, so the duty manager prepares a counter before the queue builds, not after.

It reads the site's look-ahead (refreshed in the background by ``hub.planning.lookahead``);
the lifecycle (owner, hysteresis, acknowledge, escalation, resolve when counters open or the
forecast drops) is ``AlertManager``'s, as for every rule. One condition per pool of services
that share counters, so a shared counter is counted once.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from hub.alerts import Condition
from hub.messages import render_all, suggestion_texts


def _owner(st, services: tuple[str, ...]) -> str:
    for svc in st.site.services:
        if svc.id in services:
            for z in svc.waiting_zones:
                if z in st.zones:
                    return st.zones[z].zone.grid_cell
    return "hall"


def forecast_shortfall(st, now: float, only: set[str] | None = None) -> list[Condition]:
    """Per pool: the largest shortfall (needed - max(open now, scheduled)) over the slots from now to
    ``forecast_lead_s`` ahead; raised at one counter short, cleared at none. The words name the first
    slot that is short ("from 10:30")."""
    la = st.lookahead
    if only is not None or la is None:        # the periodic tick evaluates it; a zone message changes nothing
        return []
    r, out = st.rules, []
    first, last = la.slot_at(now), la.slot_at(now + r.forecast_lead_s)
    if first < 0 or last < 0:
        return []
    names = {s.id: s.name or s.id for s in st.site.services}
    for pool in la.pools:
        need_row = la.need_pool.get(pool.key)
        if need_row is None:
            continue
        open_now = sorted(c for c, svcs in st.book.open_counters.items() if set(svcs) & set(pool.services))
        shorts = [int(need_row[k]) - max(len(open_now), len(la.scheduled_in(pool.counters, k)))
                  for k in range(first, last + 1)]
        worst = max(shorts)
        at = first + next((i for i, v in enumerate(shorts) if v > 0), shorts.index(worst))   # the first short slot
        texts: dict = {}
        spare = [c for c in pool.counters if c not in open_now]
        if worst > 0:        # words only when an alert may need them (most pools are fine at most ticks)
            start = datetime.fromtimestamp(la.starts[at], ZoneInfo(st.site.timezone)).strftime("%H:%M")
            detail = render_all("forecast_shortfall.detail", start=start, open=len(open_now),
                                needed=render_all("unit.counters", n=int(need_row[at])))
            action = (render_all("forecast_shortfall.prepare", counter=spare[0]) if spare
                      else render_all("forecast_shortfall.call_staff"))
            texts = suggestion_texts(", ".join(names[s] for s in pool.services), detail, action)
        figures = {"pool": list(pool.services),
                   "slot_start": datetime.fromtimestamp(la.starts[at], ZoneInfo(st.site.timezone)).strftime("%H:%M"),
                   "needed": int(need_row[at]), "open_counters": open_now,
                   "scheduled": la.scheduled_in(pool.counters, at), "shortfall": worst,
                   "suggested_counter": spare[0] if spare else None,
                   "forecast_per_h": round(sum(float(la.mean[s][at]) for s in pool.services) * 4, 1)}
        out.append(Condition(f"forecast_shortfall:{pool.key}", "forecast_shortfall", st.site.id,
                             _owner(st, pool.services), float(worst), 1.0, 0.0, "warning",
                             texts[st.site.language]["suggestion"] if texts else "", figures, r.min_duration_s,
                             r.cooldown_s, texts=texts, lang=st.site.language))
    return out



