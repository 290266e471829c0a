"""Learning a hall's waits from its stored ticket history: at most once a service day, off the ingest path.

The training set is what the hub would have seen: the stored events are folded, in time order,
through a fresh ``TicketBook`` and ``QueueHistory`` (the same code as live), and at every issued
ticket the ``QueueState`` is taken as the features; the label is that ticket's wait once it was
called. Abandoned tickets (no-show before a call) have no wait and are left out of the labels.

History is *thin*, and the hub keeps the state-based estimate, while it holds fewer than
``MIN_WAITS`` labelled waits or fewer than ``MIN_DAYS`` service days: the model needs its latest
day(s) to calibrate the interval on and enough earlier waits to learn from.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable

import numpy as np

from hub.tickets import RANK, TicketBook, TicketError, TicketEvent, from_dict
from hub.waits.features import QueueHistory, QueueState
from hub.waits.predictor import QUANTILES, WaitModel, WaitPredictor

log = logging.getLogger("hallgrid.waits")
MIN_WAITS = 1000
MIN_DAYS = 2
HISTORY_DAYS = 28
COVERAGE = 0.8
CALIBRATION = 500          # waits the interval is calibrated on (the latest days; a short day is too few)
# a small model with LightGBM's usual settings; nothing here is fitted to one hall's data
PARAMS = {"objective": "quantile", "num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 20,
          "num_threads": 1, "verbose": -1, "seed": 0, "deterministic": True}
ROUNDS = 100


def book_like(book: TicketBook) -> TicketBook:
    """An empty book with the same site settings (services, counters, prior, window, time zone)."""
    return TicketBook(book.known_services, book.counter_services, prior_s=book.prior_s, alpha=book.alpha,
                      window_s=book.window_s, timezone=book.tz.key, keep_s=book.keep_s)


def training_rows(events: Iterable[TicketEvent], template: TicketBook,
                  days: set[int] | None = None) -> dict[int, list[tuple[list[float], float]]]:
    """Service day -> (features just before its issue, actual wait) of every called ticket issued that
    day (of ``days``; default every day). Events are folded in time order as the live hub does."""
    book = book_like(template)
    hist = QueueHistory(book)
    issued: dict[tuple, QueueState] = {}
    rows: dict[int, list[tuple[list[float], float]]] = {}
    for e in sorted(events, key=lambda e: (e.ts, RANK[e.kind])):
        day = book.day_of(e.ts)
        visit = (day, e.ticket)
        if e.kind == "issued" and e.service in book.known_services and (days is None or day in days):
            issued[visit] = hist.states(e.ts)[e.service]          # the state the ticket found
        try:
            book.apply(e, e.ts)
        except TicketError:
            continue
        if e.kind == "called" and visit in issued:              # its first call ends its wait
            state = issued.pop(visit)
            rows.setdefault(day, []).append((state.features(), max(0.0, e.ts - state.now)))
    return rows


def fit(rows: dict[int, list[tuple[list[float], float]]], now: float) -> WaitModel | None:
    """The 10 % and 90 % models learn from the older days and the upper end is moved to 80 % coverage
    on the latest days (split-conformal quantile regression, Romano et al. 2019, one-sided); the median
    learns from every day. None while history is thin."""
    days = sorted(d for d in rows if rows[d])
    total = sum(len(rows[d]) for d in days)
    if len(days) < MIN_DAYS or total < MIN_WAITS:
        return None
    import lightgbm as lgb          # only with history to learn from: a new hub does not load it


    def matrix(ds):
        pairs = [p for d in ds for p in rows[d]]
        return np.array([x for x, _ in pairs], dtype=np.float64), np.array([y for _, y in pairs], dtype=np.float64)

    def train(x, y, q):             # on the square root of the wait (see WaitModel): quantiles carry over
        return lgb.train({**PARAMS, "alpha": q}, lgb.Dataset(x, np.sqrt(y), free_raw_data=True), ROUNDS)

    def seconds(model, x):
        return np.clip(model.predict(x, num_threads=1), 0.0, None) ** 2

    split = len(days) - 1                 # calibrate on the latest days holding CALIBRATION waits (at least one)
    while split > 1 and sum(len(rows[d]) for d in days[split:]) < CALIBRATION:
        split -= 1
    xt, yt = matrix(days[:split])
    xc, yc = matrix(days[split:])
    low, mid, high = (train(xt, yt, q) for q in QUANTILES)
    lo, md, hi = seconds(low, xc), seconds(mid, xc), seconds(high, xc)
    # the interval shown is [min(10 %, median), max(90 % + shift, median)]; the shift is the smallest
    # that puts 80 % of the calibration waits inside (the lower end stays as learnt: most waits are 0,
    # where the 10 % model already sits)
    lo = np.minimum(lo, md)
    always = int(np.sum((yc >= lo) & (yc <= md)))
    above = np.sort((yc - hi)[(yc >= lo) & (yc > md)])
    need = int(np.ceil(COVERAGE * (len(yc) + 1))) - always
    if need <= 0:
        shift = float(np.min(md - hi))                    # the median alone already covers enough
    else:
        shift = float(above[min(need, len(above)) - 1]) if len(above) else 0.0
    x, y = matrix(days)                   # the median learns from every day; the interval stays as calibrated
    return WaitModel((low, train(x, y, QUANTILES[1]), high), shift, len(y), len(days), now)


class Trainer:
    """Retrains one site's model once per service day, at the day's first event, from the stored
    history before that day. ``background``: in a daemon thread (the live hub: ingest never waits);
    otherwise inline (replay and ``eval-waits``, so a run is repeatable).

    Rows of past days are kept between retrains, so each stored day is folded about twice (once
    as itself, once as the warm-up of the next), not once per retrain.
    """

    def __init__(self, predictor: WaitPredictor, history: Callable[[float], list[dict[str, Any]]],
                 background: bool = True):
        self.predictor, self.history, self.background = predictor, history, background
        self.trained_day: int | None = None
        self.rows: dict[int, list[tuple[list[float], float]]] = {}
        self._thread: threading.Thread | None = None

    def maybe_retrain(self, now: float) -> None:
        day = self.predictor.book.day_of(now)
        if self.trained_day == day or (self._thread is not None and self._thread.is_alive()):
            return
        self.trained_day = day
        if self.background:
            self._thread = threading.Thread(target=self._retrain, args=(now, day), daemon=True, name="wait-trainer")
            self._thread.start()
        else:
            self._retrain(now, day)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _retrain(self, now: float, today: int) -> None:
        try:
            book = self.predictor.book
            first = today - HISTORY_DAYS
            self.rows = {d: r for d, r in self.rows.items() if first <= d < today}
            missing = [d for d in range(first, today) if d not in self.rows]
            if missing:
                since = now - 86400.0 * (today - missing[0] + 1)      # one more day: the queue's warm-up
                events = []
                for row in self.history(since):
                    try:
                        events.append(from_dict(row["event"], row["received_at"]))
                    except TicketError:
                        continue
                events = [e for e in events if book.day_of(e.ts) < today]
                new = training_rows(events, book, set(missing))
                for d in missing:
                    self.rows[d] = new.get(d, [])
            model = fit(self.rows, now)
            self.predictor.set_model(model)
            log.info("wait model for day %s: %s", today,
                     "thin history, state-based estimate" if model is None else
                     f"{model.trained_on} waits over {model.days} days, upper end moved {model.high_shift_s:+.1f} s")
        except Exception:        # a failed retrain keeps the previous model; the hub goes on
            log.exception("wait model retrain failed")
