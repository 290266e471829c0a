"""Footage time for the hub: every occupancy message and ticket event of a site in timestamp order, with ticks.

The replayed hub is the live ``Hub`` with a ``ManualClock`` and no MQTT: the clock is
set to each input's timestamp before it is ingested (what a hub receiving it live would
read), and the rules are ticked at a fixed footage-time interval. The same ordered
``Timeline`` can be played through a broker to a running hub (the live-equivalence test).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from calibration.site import Site
from edge.clock import ManualClock
from edge.contract import OccupancyMessage, parse_ts

from hub.alerts import Alert
from hub.replay.camera_job import CameraRecording
from hub.tickets import RANK, TicketError, TicketEvent

OCCUPANCY, TICKET, TICK = "occupancy", "ticket", "tick"
_ORDER = {TICKET: 0, OCCUPANCY: 1, TICK: 2}   # at one instant: tickets, then counts, then the rules


@dataclass(frozen=True)
class Step:
    """One thing that happens to the hub at footage time ``at`` (epoch seconds)."""

    at: float
    kind: str
    occupancy: OccupancyMessage | None = None
    ticket: TicketEvent | None = None


@dataclass
class Timeline:
    """A site's inputs in the order the hub takes them, and the span of the footage."""

    site: Site
    start: float
    end: float
    steps: list[Step]
    tickets_outside: int = 0      # ticket events after the footage ended (not played)


def renumber(recordings: list[CameraRecording]) -> list[OccupancyMessage]:
    """All cameras' messages with ``seq`` per camera gap-free across its files, as one edge box would number them."""
    msgs = sorted((m for r in recordings for m in r.messages), key=lambda m: (parse_ts(m.ts), m.camera, m.seq))
    seq: dict[str, int] = defaultdict(int)
    out = []
    for m in msgs:
        seq[m.camera] += 1
        out.append(replace(m, seq=seq[m.camera]))
    return out


def build(site: Site, recordings: list[CameraRecording], tickets: list[TicketEvent], tick_s: float) -> Timeline:
    """The timeline of counted recordings: their messages renumbered per camera, the footage span from them."""
    start = min(r.job.start for r in recordings)
    end = max(r.job.start + (r.frames[-1].t if r.frames else 0.0) for r in recordings)
    return order(site, renumber(recordings), tickets, start, end, tick_s)


def order(site: Site, messages: list[OccupancyMessage], tickets: list[TicketEvent], start: float, end: float,
          tick_s: float) -> Timeline:
    """Merge messages, ticket events (earlier ones are given at the footage start) and ticks into one order."""
    keyed: list[tuple[tuple, Step]] = []
    for m in messages:
        at = parse_ts(m.ts)
        keyed.append(((at, _ORDER[OCCUPANCY], m.camera, m.seq), Step(at, OCCUPANCY, occupancy=m)))
    outside = 0
    for i, e in enumerate(tickets):
        if e.ts > end:
            outside += 1
            continue
        at = max(e.ts, start)
        keyed.append(((at, _ORDER[TICKET], str(RANK[e.kind]), i), Step(at, TICKET, ticket=e)))
    for k in range(int(math.floor((end - start) / tick_s + 1e-9)) + 1):
        at = start + k * tick_s
        keyed.append(((at, _ORDER[TICK], "", 0), Step(at, TICK)))
    keyed.sort(key=lambda kv: kv[0])
    return Timeline(site, start, end, [s for _, s in keyed], outside)


@dataclass
class HubRecord:
    """What the replayed hub did: every alert change (time, alert) and the queue figures at every tick."""

    changes: list[tuple[float, Alert]] = field(default_factory=list)
    queues: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


def tick_when_due(hub, site_id: str, clock: ManualClock, until: float) -> None:
    """Tick the hub at every instant before ``until`` at which the alert manager says a condition may raise
    without new input (``AlertManager.next_due``): what a live hub ticking every second would see, without
    ticking a replay every second."""
    while True:
        with hub.lock:
            due = hub.managers[site_id].next_due(clock.now())
        if due is None or due >= until:
            return
        clock.set(due)
        hub.tick(due)


def play(timeline: Timeline, on_tick: Callable[[float], None] | None = None,
         on_ticket: Callable[[Any, TicketEvent], None] | None = None, wake: bool = False) -> HubRecord:
    """Run the live ``Hub`` (in-memory storage, no MQTT) through the timeline. ``on_ticket(hub, event)``
    is called at each ticket event's instant just before it is ingested (``eval-waits`` reads what
    the hub predicted for a ticket issued then, as a kiosk would print it). The wait model retrains
    inline, so a run repeats. ``wake``: also tick at the instants the alert manager says a condition may
    raise without new input (``AlertManager.next_due``), so coarse ticks raise when a live hub ticking
    every second would (``eval-waits``)."""
    from hub.service import Hub
    from hub.storage import Storage

    clock = ManualClock(timeline.start)
    hub = Hub([timeline.site], Storage("sqlite://"), clock=clock, background_training=False)
    record = HubRecord()
    hub.alert_listeners.append(lambda a: record.changes.append((clock.now(), a)))
    sid = timeline.site.id
    for step in timeline.steps:
        if wake:
            tick_when_due(hub, sid, clock, step.at)
        clock.set(step.at)
        if step.kind == OCCUPANCY:
            hub.ingest_occupancy(step.occupancy.to_json(), sid, step.occupancy.camera, step.occupancy.zone)
        elif step.kind == TICKET:
            if on_ticket:
                on_ticket(hub, step.ticket)
            try:
                hub.ingest_ticket(sid, step.ticket)
            except TicketError as exc:     # as the live ticket door does: counted and logged, the day goes on
                hub._drop("ticket", sid, str(exc))
        else:
            hub.tick(step.at)
            with hub.lock:
                for q in hub.sites[sid].queues(step.at):
                    record.queues.append((step.at, q))
            if on_tick:
                on_tick(step.at)
    record.alerts = hub.alerts(sid, active_only=False)
    record.stats = dict(sorted(hub.stats.items()))
    hub.stop()
    return record


def alert_changes(record: HubRecord) -> list[dict[str, Any]]:
    """The alert state changes as comparable rows: when (the alert's own ``updated_at``), key, kind, state, level."""
    return [{"at": a.updated_at, "id": a.id, "key": a.key, "kind": a.kind, "state": a.state, "level": a.level}
            for _, a in record.changes]
