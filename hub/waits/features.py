"""Causal features of one service's queue at one instant: what a ticket issued *now* finds in front of it.

Everything here reads only events already applied to the ``TicketBook`` (nothing at or after the
instant's later events), so the same function serves the live hub, the training set built from
stored history and ``hallgrid eval-waits``. The features are the ones the delay-prediction
literature finds informative for one customer's wait (Ibrahim & Whitt; Senderovich et al. 2015;
Ang et al. 2016): the queue ahead, counters open and busy, how often counters actually free up,
the last-to-enter-service (LES) and head-of-line (HOL) delays, the recent waits and the share of
waiting tickets that give up (no-show) before being called.

Counters shared between services are counted once: a counter that serves k services is one
server, so the queue ahead of a ticket is every waiting ticket its counters may take, each
weighted by the share of that ticket's own counters that are also this service's.
"""

from __future__ import annotations

import bisect
from dataclasses import astuple, dataclass
from typing import Any, Callable

from hub.tickets import Ticket, TicketBook, TicketEvent

FREE_WINDOW_S = 900.0      # counters freeing up are counted over the last 15 minutes
NO_CALL_S = 3600.0          # "time since the last call" when there was none today (a cap, not a guess)
RECENT_WAITS = 10           # the "mean of the last 10 waits" (also a baseline)
OUTCOMES = 100              # abandonment is learned over the last 100 queued tickets of a service


@dataclass(frozen=True)
class QueueState:
    """The queue a ticket of ``service`` issued at ``now`` joins. Times in seconds.

    ``features()`` is the model's input: every field after the first three (the service time is
    left to the baselines; ``frees_every_s`` carries how fast counters turn over). Keep it small and
    general (no service id, no time of day), so a model learnt in one hall's history carries over.
    """

    service: str
    now: float
    service_time_s: float         # the book's EWMA of called->served durations
    ahead: int                    # waiting tickets of this service (a ticket issued now joins behind them)
    ahead_shared: float           # waiting tickets this service's counters may take (shared counted once)
    counters: int                 # open counters that serve the service
    busy: int                     # ... of which serve a called ticket right now
    active: int                   # ... of which ended a service in the last 15 min (not on a break)
    servers: float                # sum over those counters of 1 / services each serves
    frees_every_s: float          # seconds between two of these counters freeing up (observed, else prior)
    since_call_s: float           # since the last ticket of this service was called
    les_s: float                  # wait of the last ticket of this service to be called (LES)
    hol_s: float                  # how long the oldest waiting ticket of this service has waited (HOL)
    hol_shared_s: float           # ... of any service these counters serve
    recent_wait_s: float          # mean wait of the last 10 called tickets of this service
    abandon: float                # share of queued tickets of this service that left before a call
    arrivals_per_h: float         # tickets of this service issued per hour (the book's window)
    load: float                   # tickets arriving for these counters per counter freeing up (>= 1: overload)
    clear_s: float                # the queue ahead over the rate tickets of this service were called lately
    state_wait_s: float           # the state-based estimate (``state_wait``), also the fallback

    def features(self) -> list[float]:
        return [float(v) for v in astuple(self)[3:]]


def state_wait(ahead: float, abandon: float, available: int, frees_every_s: float) -> float:
    """Seconds until a counter takes a ticket issued now: none while a counter is free; else one
    counter must free up for each ticket of its service ahead that stays (1 - abandonment) and for the
    ticket itself. Tickets of other services at shared counters are left to the learned model (which
    has ``ahead_shared``): the order in which a hall serves its services is not in the feed."""
    need = ahead * (1.0 - abandon) + 1.0 - available
    return 0.0 if need <= 0 else need * frees_every_s


class QueueHistory:
    """What the book has seen happen, kept per service for the features: calls with their waits,
    end of service per counter (counters freeing up), and queued tickets that were called or left.

    It follows the book as an observer (``TicketBook.observers``); a late event re-folds a ticket and
    simply overwrites that visit's entries. Entries older than ``keep_s`` are pruned hourly.
    """

    def __init__(self, book: TicketBook, keep_s: float = 86400.0):
        self.book, self.keep_s = book, keep_s
        self.version = 0                                              # bumps on every applied event
        self.calls: dict[str, dict[tuple, tuple[float, float]]] = {}  # service -> visit -> (called ts, wait)
        self.outcomes: dict[str, dict[tuple, tuple[float, bool]]] = {}  # service -> visit -> (ts, left)
        self.freed: dict[str, list[float]] = {}                       # counter -> end-of-service times, sorted
        self._service_of: dict[tuple, str] = {}
        self._changed: dict[str, int] = {}                            # service -> bumps when its rows change
        self._memo: dict[tuple, tuple[int, Any]] = {}                 # (what, service) -> (bump, value)
        self._layout_cache: tuple[tuple, Any] | None = None
        self._pruned_at = float("-inf")
        book.observers.append(self.observe)

    def observe(self, t: Ticket | None, e: TicketEvent) -> None:
        self.version += 1
        if t is None:
            return
        visit = (t.day, t.ticket)
        old = self._service_of.get(visit)
        if old is not None and old != t.service:        # transferred: the visit now counts for its new service
            self.calls.get(old, {}).pop(visit, None)
            self.outcomes.get(old, {}).pop(visit, None)
        self._service_of[visit] = t.service
        for svc in {old, t.service} - {None}:
            self._changed[svc] = self._changed.get(svc, 0) + 1
        calls, outcomes = self.calls.setdefault(t.service, {}), self.outcomes.setdefault(t.service, {})
        if t.called_ts is not None and t.waiting_since is not None:
            wait = max(0.0, t.called_ts - t.waiting_since)
            calls[visit] = (t.called_ts, wait)
            if wait > 0:
                outcomes[visit] = (t.called_ts, False)
        elif t.state == "no_show" and t.waiting_since is not None:
            outcomes[visit] = (e.ts, True)
        if e.kind == "served" and t.counter:
            bisect.insort(self.freed.setdefault(t.counter, []), e.ts)
        if e.ts - self._pruned_at >= 3600:
            self._pruned_at = e.ts
            self._prune(e.ts - self.keep_s)

    def _prune(self, before: float) -> None:
        for table in (self.calls, self.outcomes):
            for service, rows in table.items():
                table[service] = {k: v for k, v in rows.items() if v[0] >= before}
        self._memo.clear()
        for counter, times in self.freed.items():
            del times[:bisect.bisect_left(times, before)]
        live = {k for rows in self.calls.values() for k in rows} | {k for rows in self.outcomes.values() for k in rows}
        self._service_of = {k: s for k, s in self._service_of.items() if k in live or k[0] >= self.book.day_of(before)}

    # --- the figures of one instant ------------------------------------------------------------------
    def _memoised(self, what: str, service: str, now: float, compute: Callable[[], Any]) -> Any:
        """A per-service figure recomputed only when that service's rows changed. Valid while ``now`` is
        not before the newest event (then the ``<= now`` filters drop nothing); else computed afresh."""
        if self.book.latest_ts is not None and now < self.book.latest_ts:
            return compute()
        bump = self._changed.get(service, 0)
        hit = self._memo.get((what, service))
        if hit is None or hit[0] != bump:
            hit = self._memo[(what, service)] = (bump, compute())
        return hit[1]

    def recent_calls(self, service: str, now: float, n: int) -> list[tuple[float, float]]:
        """The last ``n`` calls (called ts, wait) of the service at or before ``now``, newest first."""
        return self._memoised(f"calls{n}", service, now, lambda: self._recent_calls(service, now, n))

    def _recent_calls(self, service: str, now: float, n: int) -> list[tuple[float, float]]:
        out = []
        for called, wait in reversed(self.calls.get(service, {}).values()):
            if called <= now:
                out.append((called, wait))
                if len(out) == n:
                    break
        return sorted(out, reverse=True)

    def called_since(self, service: str, since: float, now: float) -> int:
        """Tickets of the service called in (since, now]."""
        n = 0
        for called, _ in reversed(self.calls.get(service, {}).values()):
            if called <= since:
                break
            n += called <= now
        return n

    def abandonment(self, service: str, now: float) -> float:
        """Share of the last queued tickets that left, shrunk towards 0 while there are few (5 pseudo-calls)."""
        return self._memoised("abandon", service, now, lambda: self._abandonment(service, now))

    def _abandonment(self, service: str, now: float) -> float:
        n = left = 0
        for ts, gone in reversed(self.outcomes.get(service, {}).values()):
            if ts <= now:
                n, left = n + 1, left + gone
                if n == OUTCOMES:
                    break
        return left / (n + 5)

    def frees(self, counter: str, now: float, window: float) -> int:
        """How often the counter freed up (ended a service) in the ``window`` seconds up to ``now``."""
        times = self.freed.get(counter, [])
        return bisect.bisect_right(times, now) - bisect.bisect_left(times, now - window)

    def _layout(self) -> tuple[dict[str, list[str]], dict[str, list[tuple[str, float]]], dict[str, float]]:
        """Which open counters serve each service, the services sharing them (with the share of the
        other's counters that are also this one's) and the servers (sum of 1/k): it changes only
        when a counter opens or closes, so it is kept until then."""
        book = self.book
        key = tuple(sorted(book.open_counters.items()))
        if self._layout_cache is None or self._layout_cache[0] != key:
            services = sorted(book.known_services)
            counters = {s: book.counters_for(s) for s in services}
            sets = {s: set(c) for s, c in counters.items()}
            shares = {s: [(o, len(sets[s] & sets[o]) / len(sets[o])) for o in services if sets[s] & sets[o]]
                      for s in services}
            servers = {s: sum(1.0 / max(1, len(book.open_counters[c])) for c in counters[s]) for s in services}
            self._layout_cache = (key, (counters, shares, servers))
        return self._layout_cache[1]

    def states(self, now: float) -> dict[str, QueueState]:
        """Every known service's ``QueueState`` at ``now`` (one pass over the book for all of them)."""
        book = self.book
        services = sorted(book.known_services)
        ahead = {s: [t.waiting_since for t in book.waiting(s) if t.waiting_since is not None] for s in services}
        counters, shares, servers_of = self._layout()
        rates = {s: book.arrival_rate(s, now) for s in services}
        busy_now = {c for c in book.open_counters if book.called_at(c)}
        first = book.first_of_day.get(book.day_of(now), now)
        window = max(60.0, min(FREE_WINDOW_S, now - first))
        freed = {c: (self.frees(c, now, FREE_WINDOW_S), self.frees(c, now, window)) for c in book.open_counters}
        out = {}
        for s in services:
            mine = counters[s]
            st = book.mean_service_time(s)
            shared = inflow = 0.0
            oldest = now
            for other, share in shares[s]:
                shared += len(ahead[other]) * share
                inflow += rates[other] * share
                if ahead[other]:
                    oldest = min(oldest, min(ahead[other]))
            busy = sum(1 for c in mine if c in busy_now)
            active = sum(1 for c in mine if freed[c][0])
            servers = servers_of[s]
            if not mine:
                frees_every = 0.0
            else:
                n_free = sum(freed[c][1] for c in mine)
                frees_every = window / n_free if n_free >= 3 else st / len(mine)
            calls = self.recent_calls(s, now, RECENT_WAITS)
            abandon = self.abandonment(s, now)
            # an idle counter takes a ticket at once; idle while tickets of its service wait, it is not
            # taking any (a break the feed does not report), so it counts only with none waiting
            available = (len(mine) - busy) if not ahead[s] else 0
            out[s] = QueueState(
                service=s, now=now, service_time_s=st, ahead=len(ahead[s]), ahead_shared=shared,
                counters=len(mine), busy=busy, active=active, servers=servers, frees_every_s=frees_every,
                since_call_s=min(NO_CALL_S, now - calls[0][0]) if calls else NO_CALL_S,
                les_s=calls[0][1] if calls else 0.0,
                hol_s=now - min(ahead[s]) if ahead[s] else 0.0, hol_shared_s=now - oldest,
                recent_wait_s=sum(w for _, w in calls) / len(calls) if calls else 0.0,
                abandon=abandon, arrivals_per_h=rates[s] * 3600, load=inflow * frees_every,
                clear_s=len(ahead[s]) * window / max(1, self.called_since(s, now - window, now)),
                state_wait_s=state_wait(len(ahead[s]), abandon, available, frees_every) if mine else 0.0)
        return out
