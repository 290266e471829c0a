"""The staffing rules: each reads a site's fused state and says how bad one condition is, with a suggestion.

A suggestion is "where: what is wrong: what to do", each part a message-catalogue key with
its parameters (``hub/messages/catalogue.yaml``), rendered in every language: the alert
carries them all and the site's language picks the one in ``suggestion``.

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
from hub.messages import Localized, render_all, suggestion_texts
from hub.messages.waits import durations, wait_reason, wait_texts
from hub.planning.shortfall import forecast_shortfall
from hub.waits.risk import exceed_probability

BIG = 1e9   # an infinite wait, as a number the comparisons can use


Words = Callable[[], tuple["Localized | str", Localized, Localized]]   # () -> (where, detail, action)


def _condition(st: SiteState, key: str, kind: str, owner: str, value: float, raise_at: float, clear_at: float,
               level: str, figures: dict, min_duration_s: float, cooldown_s: float, words: Words,
               **timing: float | bool | None) -> Condition:
    """A condition whose suggestion is rendered from the catalogue only when an alert may need it (the
    value above its clear threshold): most subjects are fine at most ticks, and rendering every
    language for them would cost more than the rule itself. ``timing``: ``clear_after_s``, ``due_at``,
    ``breached``."""
    texts = suggestion_texts(*words()) if value > clear_at else {}
    return Condition(key, kind, st.site.id, owner, value, raise_at, clear_at, level,
                     texts[st.site.language]["suggestion"] if texts else "", figures, min_duration_s, cooldown_s,
                     texts=texts, lang=st.site.language, **timing)


def _service_place(st: SiteState, svc) -> tuple[str, str]:
    """Owner cell and the words for where a service's customers wait (its zones, else its name)."""
    zones = [st.zones[z] for z in svc.waiting_zones if z in st.zones]
    owner = zones[0].zone.grid_cell if zones else "hall"
    return owner, ", ".join(z.zone.name for z in zones) or (svc.name or svc.id)


def _closed_counters(st: SiteState, service: str) -> list[str]:
    return [c.id for c in st.site.counters if service in c.services and c.id not in st.book.open_counters]


def long_wait(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    """The chance that a customer of the service waits longer than ``max_wait_s``: the larger of the risk
    of the customer who has waited longest (``WaitRisk``: of the hall's past tickets that had waited
    as long, the share then called after the limit) and the risk of a ticket taken now, read from its
    predicted wait's 10/50/90 % figures (``exceed_probability``). Raised at ``long_wait_risk`` at once
    (the figure is already a forecast: a minimum duration would spend the warning's lead), resolved
    once it has stayed at or below ``wait_clear_ratio`` of that for ``long_wait_hold_s`` (a queue that
    just missed the limit is still one to watch; a held alert does not escalate), then the usual
    cooldown. ``due_at`` says when the longest wait will reach the risk level if nobody is called, so
    a replay evaluates then, as a hub ticking every second would."""
    r, risk, out = st.rules, st.wait_risk, []
    for svc in st.site.services:
        if only is not None and not only.intersection(svc.waiting_zones):
            continue
        f = st.service_figures(svc.id, now)
        waiting = f["waiting_tickets"] > 0
        if f["predicted_wait_s"] is None:        # no counter serves it: certain if tickets wait, else nobody waits
            new = 1.0 if waiting else 0.0
        else:
            new = exceed_probability(f["wait_low_s"], f["predicted_wait_s"], f["wait_high_s"], r.max_wait_s)
        # the exact wait, not the figure (rounded to 0.1 s for people): rounded down, it put ``due`` up to 50 ms
        # after the instant the risk is reached, the limit itself when the risk only gets there at the limit
        hol = st.waits.states(now)[svc.id].hol_s
        oldest = risk.risk(svc.id, hol) if waiting else 0.0
        value = max(new, oldest)
        due = now + risk.reaches(svc.id, r.long_wait_risk) - hol if waiting else None
        # The cooldown keeps a risk that wavers about its threshold from raising again at once; a customer who
        # has already waited past the limit is no wavering figure (``Condition.breached``).
        breached = waiting and hol >= r.max_wait_s
        if waiting and not breached and due <= now:
            due = now + r.max_wait_s - hol        # the next instant the verdict changes: the limit passed
        owner, where = _service_place(st, svc)
        closed = _closed_counters(st, svc.id)
        by_oldest = oldest > new and wait_reason(f) == "ok"

        def words(f=f, where=where, closed=closed, svc=svc, by_oldest=by_oldest):
            common = dict(service=svc.name or svc.id, people=render_all("unit.people", n=f["waiting_people"]),
                          tickets=render_all("unit.tickets", n=f["waiting_tickets"]), limit=durations(r.max_wait_s))
            detail = (render_all("alert.long_wait.detail.waiting", waited=durations(f["oldest_wait_s"]), **common)
                      if by_oldest else render_all(f"alert.long_wait.detail.{wait_reason(f)}", wait=wait_texts(f),
                                                   **common))
            action = (render_all("alert.action.open_counter", counter=closed[0]) if closed
                      else render_all("alert.long_wait.action.lobby"))
            return where, detail, action
        out.append(_condition(st, f"long_wait:{svc.id}", "long_wait", owner, value, r.long_wait_risk,
                              r.long_wait_risk * r.wait_clear_ratio, "warning",
                              {**f, "suggested_counter": closed[0] if closed else None,
                               "long_wait_risk": round(value, 3)}, 0.0, r.cooldown_s, words,
                              clear_after_s=r.long_wait_hold_s, due_at=due, breached=breached))
    return out


def over_capacity(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    r, out = st.rules, []
    for z in st.zones_of(ZoneType.WAITING, ZoneType.VIP, only=only):
        cap = z.zone.capacity
        if cap <= 0 or z.received_at is None:
            continue
        out.append(_condition(st, f"over_capacity:{z.zone.id}", "over_capacity", z.zone.grid_cell, z.count, cap + 1,
                              math.floor(cap * r.capacity_clear_ratio), "warning",
                              {"zone": z.zone.id, "count": z.count, "capacity": cap}, r.min_duration_s, r.cooldown_s,
                              lambda z=z, cap=cap: (z.zone.name, render_all(
                                  "alert.over_capacity.detail", people=render_all("unit.people", n=z.count),
                                  places=render_all("unit.places", n=cap)), render_all("alert.over_capacity.action"))))
    return out


def entrance_crowd(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    r, out = st.rules, []
    rate = st.book.total_arrival_rate(now)
    explained = rate * r.entrance_dwell_s
    for z in st.zones_of(ZoneType.ENTRANCE, ZoneType.TICKET_KIOSK, only=only):
        if z.received_at is None:
            continue
        out.append(_condition(st, f"entrance_crowd:{z.zone.id}", "entrance_crowd", z.zone.grid_cell,
                              z.count - explained, r.entrance_excess, r.entrance_excess / 2, "info",
                              {"zone": z.zone.id, "count": z.count, "explained": round(explained, 1),
                               "arrivals_per_h": round(rate * 3600, 1)}, r.min_duration_s, r.cooldown_s,
                              lambda z=z: (z.zone.name, render_all(
                                  "alert.entrance_crowd.detail", people=render_all("unit.people", n=z.count),
                                  rate=f"{rate * 3600:.0f}", explained=f"{explained:.0f}"),
                                  render_all("alert.entrance_crowd.action"))))
    return out


def staff_missing(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    r, out = st.rules, []
    for c in st.site.counters:
        z = st.zones.get(c.zone) if c.zone else None
        if z is None or (only is not None and c.zone not in only):
            continue
        called = [t for t in st.book.called_at(c.id) if t.called_ts is not None and now - t.called_ts >= r.called_grace_s]
        missing = 1.0 if (called and z.received_at is not None and z.count == 0) else 0.0
        out.append(_condition(st, f"staff_missing:{c.id}", "staff_missing", z.zone.grid_cell, missing, 1, 0,
                              "warning", {"counter": c.id, "zone": z.zone.id, "count": z.count,
                                          "called_tickets": [t.ticket for t in called]}, 0.0, r.cooldown_s,
                              lambda c=c, called=called: (
                                  render_all("alert.staff_missing.where", counter=c.id),
                                  render_all("alert.staff_missing.detail", ticket=called[0].ticket if called else "-"),
                                  render_all("alert.staff_missing.action", counter=c.id))))
    return out


def self_service_queue(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    r, out = st.rules, []
    for z in st.zones_of(ZoneType.SELF_SERVICE, only=only):
        if z.zone.capacity <= 0 or z.received_at is None:
            continue
        out.append(_condition(st, f"self_service_queue:{z.zone.id}", "self_service_queue", z.zone.grid_cell,
                              z.count, z.zone.capacity + 1, math.floor(z.zone.capacity * r.capacity_clear_ratio),
                              "info", {"zone": z.zone.id, "count": z.count, "capacity": z.zone.capacity},
                              r.min_duration_s, r.cooldown_s,
                              lambda z=z: (z.zone.name, render_all(
                                  "alert.self_service_queue.detail", people=render_all("unit.people", n=z.count),
                                  kiosks=render_all("unit.kiosks", n=z.zone.capacity)),
                                  render_all("alert.self_service_queue.action"))))
    return out


def vip_waiting(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    r, out = st.rules, []
    for svc in st.site.services:
        if not svc.vip or (only is not None and not only.intersection(svc.waiting_zones)):
            continue
        f = st.service_figures(svc.id, now)
        owner, where = _service_place(st, svc)
        closed = _closed_counters(st, svc.id)

        def words(f=f, where=where, closed=closed, svc=svc):
            action = (render_all("alert.vip_waiting.action.counter", counter=closed[0]) if closed
                      else render_all("alert.vip_waiting.action.room"))
            return where, render_all("alert.vip_waiting.detail", service=svc.name or svc.id,
                                     tickets=render_all("unit.tickets", n=f["waiting_tickets"]),
                                     longest=durations(f["oldest_wait_s"])), action
        out.append(_condition(st, f"vip_waiting:{svc.id}", "vip_waiting", owner, f["oldest_wait_s"],
                              r.vip_max_wait_s, r.vip_max_wait_s / 2, "warning", f, 0.0, r.cooldown_s, words))
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
        status = state.value if state else None
        out.append(_condition(st, f"stale_camera:{cam.id}", "stale_camera", cam.zones[0].grid_cell,
                              BIG if state in ("offline", "camera_lost") else age, r.camera_stale_s,
                              r.camera_stale_s / 2, "warning",
                              {"camera": cam.id, "age_s": round(age, 1), "status": status}, 0.0, r.cooldown_s,
                              lambda cam=cam, age=age, status=status: (
                                  render_all("alert.stale_camera.where", camera=cam.name or cam.id),
                                  render_all("alert.stale_camera.detail", age=durations(age),
                                             status=render_all(f"camera.status.{status or 'unknown'}")),
                                  render_all("alert.stale_camera.action"))))
    if st.site.services:
        last = st.book.last_event_at if st.book.last_event_at is not None else start
        age = now - last
        out.append(_condition(st, "stale_tickets:feed", "stale_tickets", "hall", age, r.ticket_stale_s,
                              r.ticket_stale_s / 2, "warning", {"age_s": round(age, 1)}, 0.0, r.cooldown_s,
                              lambda: (render_all("alert.stale_tickets.where"),
                                       render_all("alert.stale_tickets.detail", age=durations(age)),
                                       render_all("alert.stale_tickets.action"))))
    return out


RULES: list[Callable[..., list[Condition]]] = [
    long_wait, over_capacity, entrance_crowd, staff_missing, self_service_queue, vip_waiting, stale_data,
    forecast_shortfall]


def evaluate(st: SiteState, now: float, only: set[str] | None = None) -> list[Condition]:
    """Every rule's conditions for one site at ``now``; with ``only`` (zone ids) just the conditions that
    depend on those zones, so a single occupancy message costs a few conditions, not the whole hall."""
    return [c for rule in RULES for c in rule(st, now, only)]
