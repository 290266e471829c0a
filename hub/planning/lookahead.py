"""The look-ahead of one site: forecast, counters needed and counters scheduled per slot, today and tomorrow.

``look_ahead`` is the one function every user calls: the hub's background refresh
(``Lookahead``), ``hallgrid plan`` and ``hallgrid eval-forecast``, so what is measured
is what the hub does. The hub's refresh reads the history from storage once per site and
day (outside the hub's lock: ingest never waits for it) and today's arrivals from the live
ticket book, then swaps the result into the site state in one assignment.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy.pool import StaticPool

from calibration.site import Site

from hub.planning import roster as roster_mod
from hub.planning.forecast import DayModel, forecast_day, working_weekdays
from hub.planning.history import (ARRIVAL_DAYS, SLOT_S, SLOTS_PER_DAY, STATS_DAYS, Arrivals, ServiceStats,
                                  day_start, history_window, read_site_history, slot_of, slot_start)
from hub.planning.staffing import Pool, needed, pools

log = logging.getLogger("hallgrid.planning")
BOARD_S = 7200.0          # the board shows the next two hours
HISTORY_READERS = 2       # sites whose history is read at once (the hub's 2 cores)


@dataclass(frozen=True)
class History:
    """What a site's look-ahead learns from the days before ``day`` (read once a day)."""

    day: date
    today: DayModel
    tomorrow: DayModel
    stats: ServiceStats


def learn(site: Site, arrivals: Arrivals, stats: ServiceStats, day: date) -> History:
    services = [s.id for s in site.services]
    working = working_weekdays(arrivals, day, site.planning.working_days)
    return History(day, DayModel.build(arrivals, services, day, working),
                   DayModel.build(arrivals, services, day + timedelta(days=1), working), stats)


def read_history(storage, site: Site, day: date) -> History:
    """The site's history before ``day`` from storage (five weeks of arrivals, two of service times)."""
    tz = ZoneInfo(site.timezone)
    arrivals, stats = read_site_history(storage, site.id, tz, history_window(day, tz, ARRIVAL_DAYS)[0],
                                        *history_window(day, tz, STATS_DAYS), site.rules.service_time_prior_s)
    return learn(site, arrivals, stats, day)


@dataclass
class SiteLookahead:
    """Per slot of today and tomorrow (192 slots from local midnight): the forecast and the staffing."""

    site: str
    made_at: float
    day: date
    starts: np.ndarray                          # epoch seconds at which each slot starts
    services: list[str]
    mean: dict[str, np.ndarray]
    median: dict[str, np.ndarray]
    low: dict[str, np.ndarray]
    high: dict[str, np.ndarray]
    need_service: dict[str, np.ndarray]
    need_pool: dict[str, np.ndarray]
    scheduled: dict[str, np.ndarray]            # counter -> staffed per slot (bool)
    pools: list[Pool]
    source: str                                 # which history the profile came from
    completed: int                              # slots of today over when it was made
    stats: ServiceStats | None = None           # service times and patience the need was computed with

    def slot_at(self, ts: float) -> int:
        return int(np.searchsorted(self.starts, ts, side="right") - 1)

    def scheduled_in(self, counters: tuple[str, ...], k: int) -> list[str]:
        return [c for c in counters if c in self.scheduled and self.scheduled[c][k]]


def day_counts(services: list[str], issued: dict[str, list[float]], day: date, tz: ZoneInfo, now: float
               ) -> tuple[np.ndarray, int]:
    """Today's arrivals per service and slot before ``now``, and how many slots of today are over."""
    out = np.zeros((len(services), SLOTS_PER_DAY))
    t0 = day_start(day, tz)
    for i, s in enumerate(services):
        for ts in issued.get(s, ()):
            if t0 <= ts < now:
                d, k = slot_of(ts, tz)
                if d == day:
                    out[i, k] += 1
    d, k = slot_of(now, tz)
    completed = k if d == day else (SLOTS_PER_DAY if d > day else 0)
    return out, completed


def look_ahead(site: Site, history: History, today_counts: np.ndarray, completed: int, now: float,
               shifts: list[roster_mod.ShiftRow] | None = None, need_slots: int | None = None) -> SiteLookahead:
    """Forecast for every slot of ``history.day`` and the day after; counters needed from the first slot
    not yet over, for ``need_slots`` slots (None: to the end of tomorrow). Erlang is the costly part, and
    the hub only looks a few hours ahead."""
    tz = ZoneInfo(site.timezone)
    services = [s.id for s in site.services]
    day, nxt = history.day, history.day + timedelta(days=1)
    f_today = forecast_day(history.today, today_counts, completed)
    f_next = forecast_day(history.tomorrow, np.zeros_like(today_counts), 0)
    cat = {name: {f.service: np.concatenate([getattr(f, name), getattr(g, name)]) for f, g in zip(f_today, f_next)}
           for name in ("mean", "median", "low", "high")}
    n = 2 * SLOTS_PER_DAY
    first = completed if completed < SLOTS_PER_DAY else 0
    need = needed(site, history.stats, cat["mean"], range(first, n if need_slots is None else min(n, first + need_slots)))
    shifts = roster_mod.from_site(site) if shifts is None else shifts
    sched_today, sched_next = roster_mod.scheduled(shifts, day), roster_mod.scheduled(shifts, nxt)
    scheduled = {c: np.concatenate([sched_today.get(c, np.zeros(SLOTS_PER_DAY, bool)),
                                    sched_next.get(c, np.zeros(SLOTS_PER_DAY, bool))])
                 for c in set(sched_today) | set(sched_next)}
    starts = np.array([slot_start(day, k, tz) for k in range(n)])
    return SiteLookahead(site.id, now, day, starts, services, cat["mean"], cat["median"], cat["low"], cat["high"],
                         need.per_service, need.per_pool, scheduled, pools(site), history.today.source, completed,
                         history.stats)


class Lookahead:
    """The hub's background forecast: every site's look-ahead, refreshed every ``interval_s``.

    ``refresh`` may be called directly (evaluation and tests drive it with the hub's clock)."""

    def __init__(self, hub, interval_s: float = 300.0):
        self.hub = hub
        self.interval_s = interval_s
        self._history: dict[str, History] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self, now: float | None = None) -> None:
        now = self.hub.clock.now() if now is None else now
        self._read_histories(now)
        for sid, st in list(self.hub.sites.items()):
            try:
                self._refresh_site(sid, st, now)
            except Exception:        # one site's bad history must not stop the others' forecasts
                log.exception("forecast refresh of site %s failed", sid)

    def _read_histories(self, now: float) -> None:
        """The history of every site whose day has changed (all of them at start-up and after midnight), read
        ``HISTORY_READERS`` sites at a time: the database does the work in C (SQLite) or in its own process
        (PostgreSQL) with Python's lock released, so two readers use two cores. Not for an in-memory SQLite
        database, which is one connection."""
        todo = []
        for sid, st in list(self.hub.sites.items()):
            day = slot_of(now, ZoneInfo(st.site.timezone))[0]
            hist = self._history.get(sid)
            if hist is None or hist.day != day:
                todo.append((sid, st.site, day))
        if len(todo) < 2 or isinstance(self.hub.storage.engine.pool, StaticPool):
            return                                   # _refresh_site reads it

        def read(item):
            sid, site, day = item
            try:
                return sid, read_history(self.hub.storage, site, day)
            except Exception:                        # one site's bad history must not stop the others'
                log.exception("history of site %s could not be read", sid)
                return sid, None

        with ThreadPoolExecutor(HISTORY_READERS, thread_name_prefix="hub-history") as pool:
            for sid, hist in pool.map(read, todo):
                if hist is not None:
                    self._history[sid] = hist

    def _refresh_site(self, sid: str, st, now: float) -> None:
        site = st.site
        tz = ZoneInfo(site.timezone)
        day = slot_of(now, tz)[0]
        hist = self._history.get(sid)
        if hist is None or hist.day != day:
            hist = self._history[sid] = read_history(self.hub.storage, site, day)     # outside the lock
        with self.hub.lock:
            issued = {s: list(v) for s, v in st.book.issued.items()}
        counts, completed = day_counts(hist.today.services, issued, day, tz, now)
        result = look_ahead(site, hist, counts, completed, now,
                            need_slots=int((BOARD_S + site.rules.forecast_lead_s) // SLOT_S) + 2)
        with self.hub.lock:
            st.lookahead = result

    def start(self) -> None:
        def loop() -> None:
            while True:
                try:
                    self.refresh()
                except Exception:
                    log.exception("forecast refresh failed")
                if self._stop.wait(self.interval_s):
                    return

        self._thread = threading.Thread(target=loop, daemon=True, name="hub-lookahead")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
