"""How likely a customer is to wait longer than the hall's limit: the figure the long-wait alert raises on.

A ticket's wait is hard to foresee from the queue alone (on the call-centre log, once a ticket has
waited a minute the queue state adds almost nothing to whether it will pass two minutes), but how
long it has *already* waited says a lot: of the hall's past tickets that were still waiting after
``e`` seconds, the share that were then called after more than the limit rises steeply with ``e``.
``WaitRisk`` keeps that share from the hall's own finished tickets, so the alert can come before
the wait passes the limit, with the precision the hall's history gives it, in any hall.

Tickets that left before their call count as not called after the limit (a long-wait episode is
made of served tickets). While history is thin the estimate leans on a prior of ``e / limit``
(nothing known: a ticket at 80 % of the limit is taken as 80 % likely to pass it), with
``PSEUDO`` pseudo-tickets; each service leans on the site's figure the same way.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict

from hub.tickets import Ticket, TicketBook, TicketEvent

KEEP = 2000          # the site's last finished queued tickets the estimate is taken from
PSEUDO = 10.0        # pseudo-tickets of the prior (site) and of the site's figure (service)


class WaitRisk:
    """P(a ticket that has waited ``e`` s is called after more than ``limit_s``), learnt from the book.

    It follows the book as an observer (``TicketBook.observers``), so a restarted hub that replays
    today's stored events into its book has today's history again. Not thread-safe (the hub's lock).
    """

    def __init__(self, book: TicketBook, limit_s: float, keep: int = KEEP):
        self.limit_s, self.keep = float(limit_s), keep
        self.done: OrderedDict[tuple, tuple[str, float, bool]] = OrderedDict()   # visit -> service, waited, long
        self.waits: dict[str, list[float]] = {}       # service -> waits of its finished tickets, sorted
        self.all_waits: list[float] = []
        self.long: dict[str, int] = {}                # service -> tickets called after more than the limit
        self._memo: dict[tuple, float] = {}
        book.observers.append(self.observe)

    # --- history -----------------------------------------------------------------------------------
    def observe(self, t: Ticket | None, e: TicketEvent) -> None:
        if t is None or t.waiting_since is None or e.kind not in ("called", "no_show"):
            return
        if t.called_ts is not None:
            waited, long = t.called_ts - t.waiting_since, t.called_ts - t.waiting_since > self.limit_s
        elif t.state == "no_show":
            waited, long = e.ts - t.waiting_since, False
        else:
            return
        visit = (t.day, t.ticket)
        if visit in self.done:                      # a late event re-folded it: its entry is replaced
            self._remove(visit)
        self._add(visit, t.service, max(0.0, waited), long)
        while len(self.done) > self.keep:
            self._remove(next(iter(self.done)))

    def _add(self, visit: tuple, service: str, waited: float, long: bool) -> None:
        self.done[visit] = (service, waited, long)
        bisect.insort(self.waits.setdefault(service, []), waited)
        bisect.insort(self.all_waits, waited)
        self.long[service] = self.long.get(service, 0) + long
        self._changed()

    def _remove(self, visit: tuple) -> None:
        service, waited, long = self.done.pop(visit)
        for rows in (self.waits[service], self.all_waits):
            del rows[bisect.bisect_left(rows, waited)]
        self.long[service] -= long
        self._changed()

    def _changed(self) -> None:
        self._memo.clear()

    # --- the figure --------------------------------------------------------------------------------
    def risk(self, service: str, waited_s: float) -> float:
        """Chance that a ticket of ``service`` still waiting after ``waited_s`` is called after the limit.

        Non-decreasing in ``waited_s`` (fewer past tickets waited that long, the long ones all did, and
        the prior grows), which lets ``reaches`` find the crossing by bisection. 1 once past the limit.
        """
        if waited_s >= self.limit_s:
            return 1.0
        prior = max(0.0, waited_s) / self.limit_s
        n_all = len(self.all_waits) - bisect.bisect_right(self.all_waits, waited_s)
        site = (sum(self.long.values()) + PSEUDO * prior) / (n_all + PSEUDO)
        mine = self.waits.get(service, [])
        n = len(mine) - bisect.bisect_right(mine, waited_s)
        return min(1.0, (self.long.get(service, 0) + PSEUDO * site) / (n + PSEUDO))

    def reaches(self, service: str, level: float) -> float:
        """The least wait (s, to 0.1 s) at which ``risk`` reaches ``level``: the limit at the latest."""
        key = (service, level)
        if key not in self._memo:
            lo, hi = 0.0, self.limit_s
            if self.risk(service, 0.0) >= level:
                hi = 0.0
            while hi - lo > 0.1:
                mid = (lo + hi) / 2
                lo, hi = (lo, mid) if self.risk(service, mid) >= level else (mid, hi)
            self._memo[key] = hi
        return self._memo[key]


def exceed_probability(low: float | None, mid: float | None, high: float | None, limit_s: float) -> float:
    """P(wait > ``limit_s``) for a ticket whose wait has 10th, 50th and 90th percentiles ``low``, ``mid``,
    ``high`` (the predictor's interval): the distribution read as linear between those points (and
    from 0 at 0 s), with a tail beyond the 90th percentile that keeps falling at the rate it fell
    from the median (x 0.2 per median-to-90th span). ``mid`` None: no counter serves it (certain)."""
    if mid is None:
        return 1.0
    low, high = min(low if low is not None else mid, mid), max(high if high is not None else mid, mid)
    if limit_s <= low:
        return 1.0 - 0.1 * (limit_s / low) if low > 0 else 0.9
    if limit_s <= mid:
        return 0.9 - 0.4 * (limit_s - low) / (mid - low)
    if limit_s <= high:
        return 0.5 - 0.4 * (limit_s - mid) / (high - mid)
    span = high - mid
    return 0.0 if span <= 0 else 0.1 * 0.2 ** ((limit_s - high) / span)
