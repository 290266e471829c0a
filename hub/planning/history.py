"""The ticket history the forecast and the plan learn from: arrivals per slot, service times, abandonment.

Everything is read from the hub's stored ticket events with SQLAlchemy Core (so the same
query runs on SQLite and PostgreSQL) and folded in Python: one query per site, no
database-specific date functions. Slots are 15 minutes of site-local wall-clock time
(slot 0 starts at local midnight); on a daylight-saving day one hour is doubled or missing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Iterable
from zoneinfo import ZoneInfo

import numpy as np

SLOT_S = 900
SLOTS_PER_DAY = 96
ARRIVAL_DAYS = 35        # history the profile reads: five weeks of each weekday at most
STATS_DAYS = 14          # history service times and abandonment are learned from


def slot_of(ts: float, tz: ZoneInfo) -> tuple[date, int]:
    """The site-local day and 15-minute slot of an instant."""
    t = datetime.fromtimestamp(ts, tz)
    return t.date(), (t.hour * 60 + t.minute) // 15


def local_slots(ts: np.ndarray, tz: ZoneInfo) -> tuple[np.ndarray, np.ndarray]:
    """``slot_of`` for many instants at once: (day ordinals, slots). The zone's offset is looked up once
    per hour of the data, not once per ticket (a year of a hall is a few hundred thousand rows)."""
    ts = np.asarray(ts, dtype=float)
    if ts.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    hours = np.floor(ts / 3600.0).astype(np.int64)
    uniq, inv = np.unique(hours, return_inverse=True)
    offs = np.array([datetime.fromtimestamp(h * 3600.0, tz).utcoffset().total_seconds() for h in uniq])
    local = ts + offs[inv]
    days = np.floor(local / 86400.0).astype(np.int64)
    slots = ((local - days * 86400.0) // SLOT_S).astype(np.int64)
    return days + date(1970, 1, 1).toordinal(), slots


def slot_start(day: date, slot: int, tz: ZoneInfo) -> float:
    """Epoch seconds at which ``slot`` of the local ``day`` starts (slot 96 is the next day's first)."""
    day, slot = day + timedelta(days=slot // SLOTS_PER_DAY), slot % SLOTS_PER_DAY
    return datetime.combine(day, time(slot // 4, (slot % 4) * 15), tz).timestamp()


def day_start(day: date, tz: ZoneInfo) -> float:
    return datetime.combine(day, time(0), tz).timestamp()


@dataclass
class Arrivals:
    """Issued tickets per service, local day and slot: ``counts[service][day]`` is a 96-slot array."""

    tz: ZoneInfo
    counts: dict[str, dict[date, np.ndarray]] = field(default_factory=dict)
    days: set[date] = field(default_factory=set)        # days with any ticket event (a day with none is unknown)

    def add(self, ts: float, service: str, n: int = 1) -> None:
        day, slot = slot_of(ts, self.tz)
        self.days.add(day)
        row = self.counts.setdefault(service, {}).get(day)
        if row is None:
            row = self.counts[service][day] = np.zeros(SLOTS_PER_DAY)
        row[slot] += n

    def day(self, service: str, day: date) -> np.ndarray:
        row = self.counts.get(service, {}).get(day)
        return np.zeros(SLOTS_PER_DAY) if row is None else row

    def total(self, day: date) -> float:
        return float(sum(rows[day].sum() for rows in self.counts.values() if day in rows))

    @classmethod
    def from_times(cls, tz: ZoneInfo, items: Iterable[tuple[float, str]], days: Iterable[date] = ()) -> "Arrivals":
        out = cls(tz)
        for ts, service in items:
            out.add(ts, service)
        out.days.update(days)
        return out


@dataclass
class ServiceStats:
    """Per service: mean service time (called -> served) and abandonment rate (no-shows per second waited)."""

    service_time_s: dict[str, float]
    abandon_per_s: dict[str, float]
    samples: dict[str, int]


def fold_stats(rows: Iterable[tuple[float, str, str, str]], tz: ZoneInfo, prior_s: float) -> ServiceStats:
    """Service times and abandonment from (ts, kind, ticket, service) rows in time order.

    The abandonment rate is the maximum-likelihood rate of an exponential patience: no-shows divided by
    the total time tickets spent waiting (served ones until called, no-shows until they left). Fewer
    than 20 no-shows of a service: the site's pooled rate (a rare event is measured on all services)."""
    issued: dict[tuple[int, str], tuple[float, str]] = {}
    called: dict[tuple[int, str], tuple[float, str]] = {}
    durations: dict[str, list[float]] = defaultdict(list)
    waited: dict[str, float] = defaultdict(float)
    left: dict[str, int] = defaultdict(int)
    days = local_slots(np.array([r[0] for r in rows]), tz)[0] if rows else []
    for (ts, kind, ticket, service), day in zip(rows, days):
        key = (day, ticket)
        if kind == "issued":
            issued[key] = (ts, service)
        elif kind == "called" and key in issued:
            t0, svc = issued.pop(key)
            waited[svc] += ts - t0
            called[key] = (ts, svc)
        elif kind == "served" and key in called:
            t0, svc = called.pop(key)
            if ts >= t0:
                durations[svc].append(ts - t0)
        elif kind == "no_show" and key in issued:
            t0, svc = issued.pop(key)
            waited[svc] += ts - t0
            left[svc] += 1
    services = set(durations) | set(waited)
    pooled = sum(left.values()) / sum(waited.values()) if sum(waited.values()) > 0 else 0.0
    return ServiceStats(
        {s: float(np.mean(durations[s])) if len(durations[s]) >= 5 else prior_s for s in services},
        {s: (left[s] / waited[s] if left[s] >= 20 and waited[s] > 0 else pooled) for s in services},
        {s: len(durations[s]) for s in services})


def read_arrivals(storage, site: str, tz: ZoneInfo, since: float, until: float) -> Arrivals:
    """Issued tickets of ``site`` with ``since <= ts < until`` from storage.

    The service is read with the database's own JSON operator (SQLAlchemy renders it for SQLite and
    PostgreSQL alike), so no event document is decoded in Python."""
    from sqlalchemy import select

    from hub.storage import ticket_events as te

    q = (select(te.c.ts, te.c.event["service"].as_string())
         .where(te.c.site == site, te.c.ts >= since, te.c.ts < until, te.c.kind == "issued"))
    with storage.engine.connect() as conn:
        rows = conn.execute(q).all()
    out = Arrivals(tz)
    if not rows:
        return out
    ts = np.array([r[0] for r in rows])
    services = np.array([r[1] or "" for r in rows])
    days, slots = local_slots(ts, tz)
    for d in np.unique(days):
        out.days.add(date.fromordinal(int(d)))
    for s in np.unique(services):
        m = services == s
        for d in np.unique(days[m]):
            sel = m & (days == d)
            out.counts.setdefault(str(s), {})[date.fromordinal(int(d))] = np.bincount(
                slots[sel], minlength=SLOTS_PER_DAY)[:SLOTS_PER_DAY].astype(float)
    return out


def read_stats(storage, site: str, tz: ZoneInfo, since: float, until: float, prior_s: float) -> ServiceStats:
    from sqlalchemy import select

    from hub.storage import ticket_events as te

    q = (select(te.c.ts, te.c.kind, te.c.ticket, te.c.event["service"].as_string())
         .where(te.c.site == site, te.c.ts >= since, te.c.ts < until,
                te.c.kind.in_(("issued", "called", "served", "no_show"))).order_by(te.c.ts))
    with storage.engine.connect() as conn:
        rows = conn.execute(q).all()
    return fold_stats(rows, tz, prior_s)


def history_window(day: date, tz: ZoneInfo, days: int) -> tuple[float, float]:
    """From ``days`` local days before ``day`` to the start of ``day``."""
    return day_start(day - timedelta(days=days), tz), day_start(day, tz)
