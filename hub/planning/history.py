"""The ticket history the forecast and the plan learn from: arrivals per slot, service times, abandonment.

Everything is read from the hub's stored ticket events with SQLAlchemy Core (so the same
query runs on SQLite and PostgreSQL) and folded in Python: one query per site, no
database-specific date functions. Slots are 15 minutes of site-local wall-clock time
(slot 0 starts at local midnight); on a daylight-saving day one hour is doubled or missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Iterable
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

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


STATS_KINDS = ("issued", "called", "served", "no_show")


def _first(key: np.ndarray, mask: np.ndarray, n: int, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per key 0..n-1, the time and row of its first row under ``mask`` (rows are in time order); NaN, -1 if none."""
    rows = np.flatnonzero(mask)
    keys, at = np.unique(key[rows], return_index=True)
    t = np.full(n, np.nan)
    r = np.full(n, -1)
    t[keys] = ts[rows[at]]
    r[keys] = rows[at]
    return t, r


def fold_stats_arrays(ts: np.ndarray, kinds: np.ndarray, tickets: np.ndarray, services: np.ndarray, tz: ZoneInfo,
                      prior_s: float) -> ServiceStats:
    """Service times and abandonment from rows in time order, as arrays (``services`` read on issued rows).

    A ticket number names one visit per local day: its first issue, the first call after it, the first
    served after that call, a no-show before any call. The abandonment rate is the maximum-likelihood rate
    of an exponential patience: no-shows divided by the total time tickets spent waiting (served ones
    until called, no-shows until they left). Fewer than 20 no-shows of a service: the site's pooled rate
    (a rare event is measured on all services). Vectorised: a site's two weeks are tens of thousands of
    rows, and the hub reads every site's at the start of a day."""
    ts = np.asarray(ts, dtype=float)
    if ts.size == 0:
        return ServiceStats({}, {}, {})
    kinds = np.asarray(kinds).astype(str)
    days = local_slots(ts, tz)[0]
    tid = np.unique(np.asarray(tickets).astype(str), return_inverse=True)[1].reshape(-1)
    key_of = np.unique(days.astype(np.int64) * (int(tid.max()) + 1) + tid, return_inverse=True)[1].reshape(-1)
    n = int(key_of.max()) + 1
    t_iss, r_iss = _first(key_of, kinds == "issued", n, ts)
    after = ts >= np.nan_to_num(t_iss, nan=np.inf)[key_of]            # rows at or after the ticket's issue
    t_call, _ = _first(key_of, (kinds == "called") & after, n, ts)
    served_after = ts >= np.nan_to_num(t_call, nan=np.inf)[key_of]
    t_served, _ = _first(key_of, (kinds == "served") & served_after, n, ts)
    t_gone, _ = _first(key_of, (kinds == "no_show") & after, n, ts)
    svc_all = np.asarray(services, dtype=object)
    has = r_iss >= 0
    names = sorted({str(x) for x in svc_all[r_iss[has]]})
    index = {s: i for i, s in enumerate(names)}
    svc = np.full(n, -1)
    svc[has] = [index[str(x)] for x in svc_all[r_iss[has]]]
    called = has & ~np.isnan(t_call)
    left = has & ~np.isnan(t_gone) & (np.isnan(t_call) | (t_gone < t_call))
    called &= ~left
    served = called & ~np.isnan(t_served)
    m = len(names)
    waited = (np.bincount(svc[called], t_call[called] - t_iss[called], minlength=m)
              + np.bincount(svc[left], t_gone[left] - t_iss[left], minlength=m))
    n_left = np.bincount(svc[left], minlength=m)
    n_served = np.bincount(svc[served], minlength=m)
    busy = np.bincount(svc[served], t_served[served] - t_call[served], minlength=m)
    pooled = float(n_left.sum() / waited.sum()) if waited.sum() > 0 else 0.0
    active = [i for i in range(m) if n_served[i] or waited[i] > 0 or n_left[i] or called[svc == i].any()]
    return ServiceStats(
        {names[i]: float(busy[i] / n_served[i]) if n_served[i] >= 5 else prior_s for i in active},
        {names[i]: (float(n_left[i] / waited[i]) if n_left[i] >= 20 and waited[i] > 0 else pooled) for i in active},
        {names[i]: int(n_served[i]) for i in active})


def fold_stats(rows: Iterable[tuple[float, str, str, str]], tz: ZoneInfo, prior_s: float) -> ServiceStats:
    """``fold_stats_arrays`` of (ts, kind, ticket, service) rows in time order."""
    rows = list(rows)
    if not rows:
        return ServiceStats({}, {}, {})
    ts, kinds, tickets, services = zip(*rows)
    return fold_stats_arrays(np.array(ts, dtype=float), np.array(kinds), np.array(tickets),
                             np.array(services, dtype=object), tz, prior_s)


class slot_bucket(FunctionElement):
    """``floor(ts / 900)``, the UTC quarter hour of an epoch time, rendered per database: SQLite's CAST truncates,
    which is the floor for the (positive) epoch times stored; PostgreSQL's rounds, so FLOOR there."""

    type = Integer()
    inherit_cache = True


@compiles(slot_bucket)
def _bucket_default(element, compiler, **kw):
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)} / {SLOT_S}) AS BIGINT)"


@compiles(slot_bucket, "sqlite")
def _bucket_sqlite(element, compiler, **kw):
    return f"CAST({compiler.process(element.clauses, **kw)} / {SLOT_S} AS INTEGER)"


def _fold_arrivals(tz: ZoneInfo, ts: np.ndarray, services: np.ndarray, weights: np.ndarray) -> Arrivals:
    """Arrivals from instants (or quarter-hour starts) with a service (None: "") and a count each, folded with
    numpy."""
    out = Arrivals(tz)
    if ts.size == 0:
        return out
    days, slots = local_slots(ts, tz)
    names, svc = np.unique(np.where(np.equal(services, None), "", services).astype(str), return_inverse=True)
    dnames, didx = np.unique(days, return_inverse=True)
    grid = np.zeros((len(names), len(dnames), SLOTS_PER_DAY))
    np.add.at(grid, (svc.reshape(-1), didx.reshape(-1), slots), weights)
    seen = np.zeros((len(names), len(dnames)), dtype=bool)
    seen[svc.reshape(-1), didx.reshape(-1)] = True
    for d in dnames:
        out.days.add(date.fromordinal(int(d)))
    for i, s in enumerate(names):
        out.counts[str(s)] = {date.fromordinal(int(d)): grid[i, j] for j, d in enumerate(dnames) if seen[i, j]}
    return out


def read_arrivals(storage, site: str, tz: ZoneInfo, since: float, until: float) -> Arrivals:
    """Issued tickets of ``site`` with ``since <= ts < until`` from storage.

    The service is its own column (migration 0003), so no event document is read."""
    from sqlalchemy import select

    from hub.storage import ticket_events as te

    q = (select(te.c.ts, te.c.service)
         .where(te.c.site == site, te.c.ts >= since, te.c.ts < until, te.c.kind == "issued"))
    with storage.engine.connect() as conn:
        rows = conn.execute(q).all()
    if not rows:
        return Arrivals(tz)
    ts, services = zip(*rows)
    return _fold_arrivals(tz, np.array(ts, dtype=float), np.array([s or "" for s in services]), np.ones(len(ts)))


def _stats_query(site: str, since: float, until: float):
    from sqlalchemy import select

    from hub.storage import ticket_events as te

    return (select(te.c.ts, te.c.kind, te.c.ticket, te.c.service)
            .where(te.c.site == site, te.c.ts >= since, te.c.ts < until, te.c.kind.in_(STATS_KINDS))
            .order_by(te.c.ts))


def read_stats(storage, site: str, tz: ZoneInfo, since: float, until: float, prior_s: float) -> ServiceStats:
    """Service times and abandonment of ``site`` from its ticket events with ``since <= ts < until``
    (the service is read on issued rows only)."""
    with storage.engine.connect() as conn:
        rows = conn.execute(_stats_query(site, since, until)).all()
    return fold_stats(rows, tz, prior_s)


def read_site_history(storage, site: str, tz: ZoneInfo, arrivals_since: float, stats_since: float, until: float,
                      prior_s: float) -> tuple[Arrivals, ServiceStats]:
    """``read_arrivals`` from ``arrivals_since`` and ``read_stats`` from ``stats_since`` in two queries that read
    each stored row once: the older issued tickets counted per quarter hour by the database, the recent
    events (which the statistics need one by one) once for both. The hub does this for every site at the
    start of each day. Both read the index ``ix_ticket_events_site_ts_covering`` alone (the service is a column
    since migration 0003, so no row's JSON is read). Quarter hours in UTC are quarter hours of local time (every
    zone's offset is a whole number of quarter hours)."""
    from sqlalchemy import func, select

    from hub.storage import ticket_events as te

    split = min(max(stats_since, arrivals_since), until)
    svc, bucket = te.c.service, slot_bucket(te.c.ts)
    older = (select(svc, bucket, func.count())
             .where(te.c.site == site, te.c.ts >= arrivals_since, te.c.ts < split, te.c.kind == "issued")
             .group_by(svc, bucket))
    with storage.engine.connect() as conn:
        counted = _columns(conn, older, 3) if split > arrivals_since else np.zeros((3, 0), dtype=object)
        ts, kinds, tickets, services = _columns(conn, _stats_query(site, min(split, stats_since), until), 4)
    ts, kinds = ts.astype(float), kinds.astype(str)
    new = (kinds == "issued") & (ts >= arrivals_since)
    arrivals = _fold_arrivals(
        tz, np.concatenate([counted[1].astype(float) * SLOT_S, ts[new]]),
        np.concatenate([counted[0], services[new]]),
        np.concatenate([counted[2].astype(float), np.ones(int(new.sum()))]))
    keep = ts >= stats_since
    stats = (fold_stats_arrays(ts[keep], kinds[keep], tickets[keep], services[keep], tz, prior_s) if keep.any()
             else ServiceStats({}, {}, {}))
    return arrivals, stats


def _columns(conn, query, n: int) -> np.ndarray:
    """The result of ``query`` (``n`` columns) as an (n, rows) object array, fetched from the driver's cursor as
    plain tuples and handed to numpy whole. A site's weeks are tens of thousands of rows: wrapping each in
    SQLAlchemy's ``Row`` cost as much as fetching it, and transposing them in Python (``zip``) makes an object
    per row that keeps the garbage collector busy with the fetched rows (the columns selected need no result
    processing: floats, strings and integers on both databases)."""
    result = conn.execute(query)
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    return np.array(rows, dtype=object).reshape(-1, n).T


def history_window(day: date, tz: ZoneInfo, days: int) -> tuple[float, float]:
    """From ``days`` local days before ``day`` to the start of ``day``."""
    return day_start(day - timedelta(days=days), tz), day_start(day, tz)
