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
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any, Callable

from hub.tickets import Ticket, TicketBook, TicketEvent

FREE_WINDOW_S = 900.0      # counters freeing up are counted over the last 15 minutes
NO_CALL_S = 3600.0          # "time since the last call" when there was none today (a cap, not a guess)
RECENT_WAITS = 10           # the "mean of the last 10 waits" (also a baseline)
OUTCOMES = 100              # abandonment is learned over the last 100 queued tickets of a service
MIX_CALLS = 20              # a counter's share of each service: over its last 20 calls
RECENT_IDLE_S = 300.0       # an idle counter that freed up in the last 5 minutes is between two calls


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
    # idle counters are not all free: the feed does not report breaks or wrap-up, so what they did says it
    available: int                # idle counters that no ticket they could take passed by since they freed up
    idle_min_s: float             # the shortest time one of its idle counters has been idle (capped; none: the cap)
    idle_recent: int              # idle counters that freed up in the last 5 minutes (between two calls)
    mix_servers: float            # sum over its counters of the share of their last 20 calls that were this service

    def features(self) -> list[float]:
        return list(_FEATURES(self))


FEATURE_NAMES = tuple(f.name for f in fields(QueueState))[3:]
_FEATURES = attrgetter(*FEATURE_NAMES)


def state_wait(ahead: float, abandon: float, available: int, frees_every_s: float) -> float:
    """Seconds until a counter takes a ticket issued now: none while a counter is free; else one
    counter must free up for each ticket of its service ahead that stays (1 - abandonment) and for the
    ticket itself. Tickets of other services at shared counters are left to the learned model (which
    has ``ahead_shared``): the order in which a hall serves its services is not in the feed."""
    need = ahead * (1.0 - abandon) + 1.0 - available
    return 0.0 if need <= 0 else need * frees_every_s


class QueueHistory:
    """What the book has seen happen, kept per service for the features: calls with their waits,
    end of service per counter (counters freeing up), queued tickets that were called or left, and
    which services each counter's last calls were.

    It follows the book as an observer (``TicketBook.observers``); a late event re-folds a ticket and
    simply overwrites that visit's entries. Entries older than ``keep_s`` are pruned hourly.
    """

    def __init__(self, book: TicketBook, keep_s: float = 86400.0):
        self.book, self.keep_s = book, keep_s
        self.version = 0                                              # bumps on every applied event
        self.calls: dict[str, dict[tuple, tuple[float, float]]] = {}  # service -> visit -> (called ts, wait)
        self.outcomes: dict[str, dict[tuple, tuple[float, bool]]] = {}  # service -> visit -> (ts, left)
        self.freed: dict[str, list[float]] = {}                       # counter -> end-of-service times, sorted
        self.callers: dict[str, list[tuple[float, str]]] = {}         # service -> (called ts, counter), sorted
        self.mix: dict[str, dict[tuple, str]] = {}                    # counter -> visit -> service, last calls
        self._call_of: dict[tuple, tuple[str, float, str]] = {}       # visit -> (service, called ts, counter)
        self._mix_share: dict[str, dict[str, float]] = {}             # counter -> service -> share (cached)
        self._mix_version = 0
        self._mix_cache: tuple[tuple, dict[str, float]] | None = None
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
        self._follow_call(visit, t)
        if e.kind == "served" and t.counter:
            bisect.insort(self.freed.setdefault(t.counter, []), e.ts)
        if e.ts - self._pruned_at >= 3600:
            self._pruned_at = e.ts
            self._prune(e.ts - self.keep_s)

    def _follow_call(self, visit: tuple, t: Ticket) -> None:
        """Keep the visit's call (time, counter) in its service's sorted list and its service in the
        counter's last calls; a re-fold that moves or removes the call replaces the old entry."""
        now = ((t.service, t.called_ts, t.counter) if t.called_ts is not None and t.counter and t.waiting_since is not None
               else None)
        before = self._call_of.get(visit)
        if before == now:
            return
        if before is not None:
            rows = self.callers.get(before[0], [])
            i = bisect.bisect_left(rows, (before[1], before[2]))
            if i < len(rows) and rows[i] == (before[1], before[2]):
                del rows[i]
            if self.mix.get(before[2], {}).pop(visit, None) is not None:
                self._mix_share.pop(before[2], None)
            del self._call_of[visit]
        if now is not None:
            self._call_of[visit] = now
            bisect.insort(self.callers.setdefault(now[0], []), (now[1], now[2]))
            last = self.mix.setdefault(now[2], {})
            last[visit] = now[0]
            while len(last) > MIX_CALLS:
                del last[next(iter(last))]
            self._mix_share.pop(now[2], None)
        self._mix_version += 1

    def _prune(self, before: float) -> None:
        for table in (self.calls, self.outcomes):
            for service, rows in table.items():
                table[service] = {k: v for k, v in rows.items() if v[0] >= before}
        self._memo.clear()
        for counter, times in self.freed.items():
            del times[:bisect.bisect_left(times, before)]
        for service, rows in self.callers.items():
            del rows[:bisect.bisect_left(rows, (before,))]
        self._call_of = {k: v for k, v in self._call_of.items() if v[1] >= before}
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
        rows = self.callers.get(service, [])
        return max(0, bisect.bisect_right(rows, (now, "\uffff")) - bisect.bisect_right(rows, (since, "\uffff")))

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

    def counters_of(self, service: str) -> list[str]:
        """The open counters that serve the service, sorted (``TicketBook.counters_for``, kept with the layout)."""
        return self._layout()[0].get(service) or self.book.counters_for(service)

    def _mix_servers(self, counters: dict[str, list[str]]) -> dict[str, float]:
        """Per service, its counters counted by what they actually served: each counter adds the share of
        its last ``MIX_CALLS`` calls that were this service (1/k of its k services before any call). A
        counter that mostly takes another service is mostly that service's server."""
        key = (self._layout_cache[0] if self._layout_cache else (), self._mix_version)
        if self._mix_cache is not None and self._mix_cache[0] == key:
            return self._mix_cache[1]
        out = {}
        for s, mine in counters.items():
            total = 0.0
            for c in mine:
                share = self._mix_share.get(c)
                if share is None:
                    last = list(self.mix.get(c, {}).values())
                    share = self._mix_share[c] = {x: last.count(x) / len(last) for x in set(last)} if last else {}
                total += share.get(s, 0.0) if share else 1.0 / max(1, len(self.book.open_counters[c]))
            out[s] = total
        self._mix_cache = (key, out)
        return out

    def _last_calls(self, service: str, now: float) -> list[tuple[float, str]]:
        """The newest call of the service at or before ``now`` and the newest at another counter than
        that one's (enough to tell, for any counter, when the service was last called elsewhere)."""
        rows = self.callers.get(service, [])
        i = bisect.bisect_right(rows, (now, "\uffff"))
        out: list[tuple[float, str]] = []
        while i > 0 and len(out) < 2:
            i -= 1
            if not out or rows[i][1] != out[0][1]:
                out.append(rows[i])
        return out

    def states(self, now: float) -> dict[str, QueueState]:
        """Every known service's ``QueueState`` at ``now`` (one pass over the book for all of them)."""
        book = self.book
        counters, shares, servers_of = self._layout()
        services = sorted(counters)
        mix = self._mix_servers(counters)
        ahead = {s: [t.waiting_since for t in book.waiting(s) if t.waiting_since is not None] for s in services}
        rates = {s: book.arrival_rate(s, now) for s in services}
        open_counters = book.open_counters
        busy_now = book.busy_counters()
        first = book.first_of_day.get(book.day_of(now), now)
        window = max(60.0, min(FREE_WINDOW_S, now - first))
        # per open counter: freed up in the last 15 min (active), frees in the window, and, when idle, since
        # when and whether a ticket it could have taken went to another counter since
        last_calls = {s: self._last_calls(s, now) for s in services}
        right, left = bisect.bisect_right, bisect.bisect_left
        active: set[str] = set()
        n_freed: dict[str, int] = {}
        idle: dict[str, tuple[float, bool]] = {}
        for c, svcs in open_counters.items():
            times = self.freed.get(c, ())
            i = right(times, now)
            if i and i - left(times, now - FREE_WINDOW_S, 0, i):
                active.add(c)
            n_freed[c] = i - left(times, now - window, 0, i) if i else 0
            if c in busy_now:
                continue
            since = max(times[i - 1] if i else float("-inf"), book.counter_last.get(c, float("-inf")))
            passed = False
            for x in svcs:
                for ts, other in last_calls.get(x, ()):
                    if other != c:
                        passed = passed or ts > since
                        break
            idle[c] = (now - since, passed)
        out = {}
        for s in services:
            mine = counters[s]
            st = book.mean_service_time(s)
            shared = inflow = 0.0
            oldest = now
            for other, share in shares[s]:
                waiting = ahead[other]
                if waiting:
                    shared += len(waiting) * share
                    oldest = min(oldest, min(waiting))
                inflow += rates[other] * share
            busy = n_free = n_active = n_avail = n_recent = 0
            idle_min = NO_CALL_S
            for c in mine:
                n_free += n_freed[c]
                n_active += c in active
                if c in busy_now:
                    busy += 1
                else:
                    d, passed = idle[c]
                    n_avail += not passed
                    n_recent += d <= RECENT_IDLE_S
                    idle_min = min(idle_min, d)
            if not mine:
                frees_every = 0.0
            else:
                frees_every = window / n_free if n_free >= 3 else st / len(mine)
            calls = self.recent_calls(s, now, RECENT_WAITS)
            abandon = self.abandonment(s, now)
            mine_ahead = ahead[s]
            # an idle counter takes a ticket at once; idle while tickets of its service wait, it is not
            # taking any (a break the feed does not report), so it counts only with none waiting
            available = (len(mine) - busy) if not mine_ahead else 0
            out[s] = QueueState(
                service=s, now=now, service_time_s=st, ahead=len(mine_ahead), ahead_shared=shared,
                counters=len(mine), busy=busy, active=n_active, servers=servers_of[s], frees_every_s=frees_every,
                since_call_s=min(NO_CALL_S, now - calls[0][0]) if calls else NO_CALL_S,
                les_s=calls[0][1] if calls else 0.0,
                hol_s=now - min(mine_ahead) if mine_ahead else 0.0, hol_shared_s=now - oldest,
                recent_wait_s=sum(w for _, w in calls) / len(calls) if calls else 0.0,
                abandon=abandon, arrivals_per_h=rates[s] * 3600, load=inflow * frees_every,
                clear_s=len(mine_ahead) * window / max(1, self.called_since(s, now - window, now)),
                state_wait_s=state_wait(len(mine_ahead), abandon, available, frees_every) if mine else 0.0,
                available=n_avail, idle_min_s=idle_min, idle_recent=n_recent, mix_servers=mix[s])
        return out
