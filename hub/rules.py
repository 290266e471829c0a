"""The staffing rules: each reads a site's fused state and says how bad one condition is, with a suggestion.

Rules return a ``Condition`` for every subject at every tick (also when fine), and
leave thresholds-over-time (hysteresis, minimum duration, cooldown, escalation) to
``hub.alerts.AlertManager``, so a rule is just "which figure, which limit, what to do".
"""

from __future__ import annotations

import math
from typing import Callable

from calibration.site import ZoneType

from hub.alerts import Condition
from hub.fusion import SiteState

BIG = 1e9   # an infinite wait, as a number the comparisons can use


def _wait_text(figures: dict) -> str:
    """The predicted wait in words; an infinite one says why (no counter, or arrivals outpace service)."""
    s = figures["predicted_wait_s"]
    if s is not None:
        return f"{s / 60:.0f} min"
    return "unbounded: no counter open" if not figures["open_counters"] else "unbounded: arrivals outpace service"


def long_wait(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    r, out = st.rules, []
    for svc in st.site.services:
        if only is not None and not only.intersection(svc.waiting_zones):
            continue
        f = st.service_figures(svc.id, now)
        # None only with no counter serving it: unbounded if tickets wait, else nobody waits
        wait = f["predicted_wait_s"] if f["predicted_wait_s"] is not None else (BIG if f["waiting_tickets"] else 0.0)
        zones = [st.zones[z] for z in svc.waiting_zones if z in st.zones]
        owner = zones[0].zone.grid_cell if zones else "hall"
        where = ", ".join(z.zone.name for z in zones) or (svc.name or svc.id)
        closed = [c.id for c in st.site.counters if svc.id in c.services and c.id not in st.book.open_counters]
        action = f"open counter {closed[0]}" if closed else "send the lobby manager to pre-process the queue"
        text = (f"{where}: {f['waiting_people']} people, {f['waiting_tickets']} tickets for {svc.name or svc.id}, "
                f"est. wait {_wait_text(f)} > {r.max_wait_s / 60:.0f} min: {action}")
        out.append(Condition(f"long_wait:{svc.id}", "long_wait", st.site.id, owner, wait, r.max_wait_s,
                             r.max_wait_s * r.wait_clear_ratio, "warning", text,
                             {**f, "suggested_counter": closed[0] if closed else None},
                             r.min_duration_s, r.cooldown_s))
    return out


def over_capacity(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    r, out = st.rules, []
    for z in st.zones_of(ZoneType.WAITING, ZoneType.VIP, only=only):
        cap = z.zone.capacity
        if cap <= 0 or z.received_at is None:
            continue
        text = (f"{z.zone.name}: {z.count} people for {cap} places: open overflow seating and guide customers "
                "with simple needs to self-service")
        out.append(Condition(f"over_capacity:{z.zone.id}", "over_capacity", st.site.id, z.zone.grid_cell,
                             z.count, cap + 1, math.floor(cap * r.capacity_clear_ratio), "warning", text,
                             {"zone": z.zone.id, "count": z.count, "capacity": cap}, r.min_duration_s, r.cooldown_s))
    return out


def entrance_crowd(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    r, out = st.rules, []
    rate = st.book.total_arrival_rate(now)
    explained = rate * r.entrance_dwell_s
    for z in st.zones_of(ZoneType.ENTRANCE, ZoneType.TICKET_KIOSK, only=only):
        if z.received_at is None:
            continue
        excess = z.count - explained
        text = (f"{z.zone.name}: {z.count} people but the ticket flow ({rate * 3600:.0f}/h) explains "
                f"{explained:.0f}: send the lobby manager to pre-process (consultation, ID copies, number selection)")
        out.append(Condition(f"entrance_crowd:{z.zone.id}", "entrance_crowd", st.site.id, z.zone.grid_cell, excess,
                             r.entrance_excess, r.entrance_excess / 2, "info", text,
                             {"zone": z.zone.id, "count": z.count, "explained": round(explained, 1),
                              "arrivals_per_h": round(rate * 3600, 1)}, r.min_duration_s, r.cooldown_s))
    return out


def staff_missing(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    r, out = st.rules, []
    for c in st.site.counters:
        z = st.zones.get(c.zone) if c.zone else None
        if z is None or (only is not None and c.zone not in only):
            continue
        called = [t for t in st.book.called_at(c.id) if t.called_ts is not None and now - t.called_ts >= r.called_grace_s]
        missing = 1.0 if (called and z.received_at is not None and z.count == 0) else 0.0
        text = (f"counter {c.id}: ticket {called[0].ticket if called else '-'} called but nobody at the counter: "
                f"send staff to counter {c.id}")
        out.append(Condition(f"staff_missing:{c.id}", "staff_missing", st.site.id, z.zone.grid_cell, missing, 1, 0,
                             "warning", text, {"counter": c.id, "zone": z.zone.id, "count": z.count,
                                               "called_tickets": [t.ticket for t in called]}, 0.0, r.cooldown_s))
    return out


def self_service_queue(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    r, out = st.rules, []
    for z in st.zones_of(ZoneType.SELF_SERVICE, only=only):
        if z.zone.capacity <= 0 or z.received_at is None:
            continue
        text = f"{z.zone.name}: {z.count} people at {z.zone.capacity} kiosks: send a guide to help at self-service"
        out.append(Condition(f"self_service_queue:{z.zone.id}", "self_service_queue", st.site.id, z.zone.grid_cell,
                             z.count, z.zone.capacity + 1, math.floor(z.zone.capacity * r.capacity_clear_ratio), "info",
                             text, {"zone": z.zone.id, "count": z.count, "capacity": z.zone.capacity},
                             r.min_duration_s, r.cooldown_s))
    return out


def vip_waiting(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    r, out = st.rules, []
    for svc in st.site.services:
        if not svc.vip or (only is not None and not only.intersection(svc.waiting_zones)):
            continue
        f = st.service_figures(svc.id, now)
        zones = [st.zones[z] for z in svc.waiting_zones if z in st.zones]
        owner = zones[0].zone.grid_cell if zones else "hall"
        closed = [c.id for c in st.site.counters if svc.id in c.services and c.id not in st.book.open_counters]
        text = (f"VIP {svc.name or svc.id}: {f['waiting_tickets']} waiting, longest {f['oldest_wait_s'] / 60:.0f} min: "
                + (f"open counter {closed[0]} or serve in the VIP room" if closed else "serve in the VIP room now"))
        out.append(Condition(f"vip_waiting:{svc.id}", "vip_waiting", st.site.id, owner, f["oldest_wait_s"],
                             r.vip_max_wait_s, r.vip_max_wait_s / 2, "warning", text, f, 0.0, r.cooldown_s))
    return out


def stale_data(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    r, out = st.rules, []
    if only is not None:          # silence is found by the periodic tick, not by a message
        return out
    start = st.started_at if st.started_at is not None else now
    for cam in st.site.cameras:
        if not cam.zones:
            continue
        state = st.camera_state.get(cam.id)
        age = now - st.camera_seen.get(cam.id, start)
        value = BIG if state in ("offline", "camera_lost") else age
        owner = cam.zones[0].grid_cell
        text = (f"camera {cam.id} silent for {age:.0f} s (status {state.value if state else 'unknown'}): "
                "counts for its zones are out of date; check the edge box and camera")
        out.append(Condition(f"stale_camera:{cam.id}", "stale_camera", st.site.id, owner, value, r.camera_stale_s,
                             r.camera_stale_s / 2, "warning", text,
                             {"camera": cam.id, "age_s": round(age, 1), "status": state.value if state else None},
                             0.0, r.cooldown_s))
    if st.site.services:
        last = st.book.last_event_at if st.book.last_event_at is not None else start
        age = now - last
        out.append(Condition("stale_tickets:feed", "stale_tickets", st.site.id, "hall", age, r.ticket_stale_s,
                             r.ticket_stale_s / 2, "warning",
                             f"no ticket event for {age / 60:.0f} min: check the ticket system's feed to hallgrid",
                             {"age_s": round(age, 1)}, 0.0, r.cooldown_s))
    return out


RULES: list[Callable[..., list[Condition]]] = [
    long_wait, over_capacity, entrance_crowd, staff_missing, self_service_queue, vip_waiting, stale_data]


def evaluate(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    """Every rule's conditions for one site at ``now``; with ``only`` (zone ids) just the conditions that
    depend on those zones, so a single occupancy message costs a few conditions, not the whole hall."""
    return [c for rule in RULES for c in rule(st, now, only)]
