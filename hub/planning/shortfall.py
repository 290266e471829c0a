"""The ``forecast_shortfall`` rule: warn ``forecast_lead_s`` before a slot that needs more counters than the
pool will have, so the duty manager prepares a counter before the queue builds, not after.

What the pool will have is the capacity it actually gets, not the counters nominally open:
the effective counters measured from its recent tickets (``hub.planning.capacity``: counters
busy with its tickets while one of them waited, over the last half hour), plus the counters
the roster opens by then. Without a measurement (no ticket waited lately, so capacity was not
tested) it is the counters open or scheduled, as before. A counter that is open but not
serving (a break, another service's work) thus no longer hides a coming shortfall.

It reads the site's look-ahead (refreshed in the background by ``hub.planning.lookahead``);
the lifecycle (owner, hysteresis, acknowledge, escalation, resolve when counters open or the
forecast drops) is ``AlertManager``'s, as for every rule. One condition per pool of services
that share counters, so a shared counter is counted once.
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from hub.alerts import Condition
from hub.messages import render_all, suggestion_texts
from hub.planning.capacity import effective_counters
from hub.planning.staffing import counters_for_waits, long_waits, pool_load


def _owner(st, services: tuple[str, ...]) -> str:
    for svc in st.site.services:
        if svc.id in services:
            for z in svc.waiting_zones:
                if z in st.zones:
                    return st.zones[z].zone.grid_cell
    return "hall"


def _capacity(effective, open_now: list[str], scheduled: list[str]) -> float:
    """Counters the pool will have in a slot: the effective counters now plus the scheduled ones not yet
    open (the roster opens them by then); without a measurement, the counters open or scheduled."""
    if effective is None:
        return float(max(len(open_now), len(scheduled)))
    return effective.counters + len(set(scheduled) - set(open_now))


def forecast_shortfall(st, now: float, only: set[str] | None = None) -> list[Condition]:
    """Per pool: over the slots from now to ``forecast_lead_s`` ahead, the most tickets of one slot expected
    to wait longer than ``max_wait_s`` (Erlang A for the forecast load, with the capacity the pool will
    have); raised at one ticket, cleared at half of one. The words name the first such slot ("from
    10:30") and the counters that keep it under one ticket."""
    la = st.lookahead
    if only is not None or la is None or la.stats is None:   # the periodic tick evaluates it
        return []
    r, out = st.rules, []
    first, last = la.slot_at(now), la.slot_at(now + r.forecast_lead_s)
    if first < 0 or last < 0:
        return []
    names = {s.id: s.name or s.id for s in st.site.services}
    tickets = list(st.book.tickets.values())
    for pool in la.pools:
        if pool.key not in la.need_pool:
            continue
        open_now = sorted(c for c, svcs in st.book.open_counters.items() if set(svcs) & set(pool.services))
        eff = effective_counters(tickets, pool.services, now)
        slots = []          # (slot, load, capacity, tickets expected to wait too long)
        for k in range(first, last + 1):
            load = pool_load(st.site, la.stats, la.mean, pool, k)
            cap = _capacity(eff, open_now, la.scheduled_in(pool.counters, k))
            slots.append((k, load, cap, long_waits(load, cap, r.max_wait_s) if load is not None else 0.0))
        worst = max(x[3] for x in slots)
        k, load, cap, _ = next((x for x in slots if x[3] >= 1.0), max(slots, key=lambda x: x[3]))
        need = counters_for_waits(load, r.max_wait_s, math.ceil(cap)) if load is not None else 0
        texts: dict = {}
        spare = [c for c in pool.counters if c not in open_now]
        start = datetime.fromtimestamp(la.starts[k], ZoneInfo(st.site.timezone)).strftime("%H:%M")
        if worst >= 1.0:        # words only when an alert may need them (most pools are fine at most ticks)
            needed = render_all("unit.counters", n=need)
            if eff is not None and eff.counters < len(open_now) - 0.5:
                detail = render_all("forecast_shortfall.detail_effective", start=start, open=len(open_now),
                                    needed=needed, effective=f"{eff.counters:.1f}")
            else:
                detail = render_all("forecast_shortfall.detail", start=start, open=len(open_now), needed=needed)
            action = (render_all("forecast_shortfall.prepare", counter=spare[0]) if spare
                      else render_all("forecast_shortfall.back_to_serving") if eff is not None
                      else render_all("forecast_shortfall.call_staff"))
            texts = suggestion_texts(", ".join(names[s] for s in pool.services), detail, action)
        figures = {"pool": list(pool.services), "slot_start": start,
                   "needed": need, "plan_needed": int(la.need_pool[pool.key][k]), "open_counters": open_now,
                   "effective_counters": round(eff.counters, 2) if eff is not None else None,
                   "queued_s": eff.queued_s if eff is not None else 0.0,
                   "serving": list(eff.serving) if eff is not None else [],
                   "capacity": round(cap, 2), "expected_long_waits": round(worst, 2),
                   "scheduled": la.scheduled_in(pool.counters, k),
                   "suggested_counter": spare[0] if spare else None,
                   "forecast_per_h": round(sum(float(la.mean[s][k]) for s in pool.services) * 4, 1)}
        out.append(Condition(f"forecast_shortfall:{pool.key}", "forecast_shortfall", st.site.id,
                             _owner(st, pool.services), float(worst), 1.0, 0.5, "warning",
                             texts[st.site.language]["suggestion"] if texts else "", figures, r.min_duration_s,
                             r.cooldown_s, texts=texts, lang=st.site.language))
    return out
