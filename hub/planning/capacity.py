"""Effective counters: how many counters actually served a pool of services lately, measured from its tickets.

A counter that is "open" (between its counter_open and counter_close events) is not
necessarily serving: the clerk may be on a break, doing paperwork, or, where a counter is
shared, serving another service. Comparing counters needed with counters open then says
"enough" while tickets wait. What the tickets do show is the capacity the pool got: while
some of its tickets were waiting, every counter able and free to serve them would have been
calling one, so the number of counters busy with the pool's tickets at those moments is the
capacity it really had. Averaged over the moments in the last ``window_s`` at which a ticket
waited, that is the pool's effective counters (a whole counter busy half those moments with
this pool's tickets counts one half: a shared clerk counts by the share of work it gave).

When no ticket waited in the window the capacity was not tested (every ticket found a free
counter), so there is no measurement and the caller falls back to the counters open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WINDOW_S = 1800.0        # half an hour: several calls per counter at a typical 2-5 min service time


@dataclass(frozen=True)
class Effective:
    """The pool's capacity over the last window, measured while its tickets waited."""

    counters: float          # time-average counters busy with the pool's tickets while one of them waited
    queued_s: float          # seconds of the window in which at least one of the pool's tickets waited
    serving: tuple[str, ...]  # counters that served the pool's tickets in the window
    window_s: float


def _intervals(ticket, services: set[str], now: float, stuck_s: float) -> tuple[list[tuple[float, float]],
                                                                 list[tuple[str, float, float]]]:
    """One visit's waiting spells and its service spells (counter, start, end) for the pool's services,
    from its events (a transfer to another service starts a new wait). A wait still open after ``stuck_s``
    stops counting: its call was lost (or falls on the next service day), and a ticket that never leaves
    would otherwise keep the queue "non-empty" all day and all night."""
    waits, calls = [], []
    service, wait_from, call = "", None, None
    for e in ticket.events:
        if e.kind == "issued":
            service, wait_from = e.service, e.ts
        elif e.kind == "transferred":
            if call is not None:
                calls.append((call[0], call[1], e.ts))
                call = None
            if wait_from is not None and service in services:
                waits.append((wait_from, e.ts))
            service, wait_from = e.to_service, e.ts
        elif e.kind == "called":
            if wait_from is not None and service in services:
                waits.append((wait_from, e.ts))
            wait_from = None
            if service in services:
                call = (e.counter, e.ts)
        elif e.kind == "no_show":
            if wait_from is not None and service in services:
                waits.append((wait_from, e.ts))
            wait_from = call = None
        elif e.kind == "served":
            if call is not None:
                calls.append((call[0], call[1], e.ts))
            call = None
    if wait_from is not None and service in services:
        waits.append((wait_from, min(now, wait_from + stuck_s)))
    if call is not None:
        calls.append((call[0], call[1], now))
    return waits, calls


def effective_counters(tickets, services, now: float, window_s: float = WINDOW_S) -> Effective | None:
    """The pool's effective counters over ``[now - window_s, now)`` from the ticket book's visits (None: no
    ticket of the pool waited in the window, so its capacity was not tested). One-second resolution."""
    pool = set(services)
    t0 = now - window_s
    n = int(window_s)
    queued = np.zeros(n + 1)
    busy = np.zeros(n + 1)
    serving: set[str] = set()
    for t in tickets:
        # a visit's events are kept in time order (Ticket.fold), so its last is the newest: most visits of
        # the day ended before the window and are skipped without a look at their events
        if (not t.events or t.events[-1].ts < t0) and t.state not in ("waiting", "called"):
            continue
        waits, calls = _intervals(t, pool, now, window_s)
        for a, b in waits:
            a, b = int(max(a, t0) - t0), int(min(b, now) - t0)
            if b > a:
                queued[a] += 1
                queued[b] -= 1
        for counter, a, b in calls:
            a, b = int(max(a, t0) - t0), int(min(b, now) - t0)
            if b > a:
                busy[a] += 1
                busy[b] -= 1
                serving.add(counter)
    waiting = np.cumsum(queued)[:n] > 0
    queued_s = float(waiting.sum())
    if queued_s == 0:
        return None
    return Effective(float(np.cumsum(busy)[:n][waiting].mean()), queued_s, tuple(sorted(serving)), window_s)
