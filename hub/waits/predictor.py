"""The wait of a ticket issued now: a small learned model of the queue state, or the state-based estimate.

``WaitPredictor`` follows one site's ``TicketBook`` (through ``QueueHistory``) and answers, for a
service at an instant, the median wait of a ticket issued then and its 80 % interval (10th and 90th
percentile). With a model learnt from the hall's own history (``hub.waits.training``) the three
quantiles come from it; while history is thin, from the state-based estimate: one counter must free
up per ticket ahead, at the rate these counters have actually been freeing up, with a Gamma interval
around it. The figure is finite whenever a counter serves the service (an overload is a long wait
with reason ``overloaded``) and ``None`` only when no counter does (reason ``no_counter``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hub.tickets import TicketBook
from hub.waits.features import QueueHistory, QueueState

QUANTILES = (0.1, 0.5, 0.9)
OK, OVERLOADED, NO_COUNTER = "ok", "overloaded", "no_counter"


@dataclass
class WaitModel:
    """Three quantile models (10/50/90 %) on ``QueueState.features()``, plus the conformal shift of
    the interval's upper end measured on the history's latest days (split-conformal). The models
    learn the square root of the wait (a quantile of it is the square root of the wait's quantile),
    which spreads the many short waits from the few long ones."""

    models: tuple[Any, Any, Any]      # lightgbm Boosters
    high_shift_s: float                # added to the 90 % end (may be negative)
    trained_on: int                    # labelled waits it learnt from
    days: int                          # service days of history
    trained_at: float
    _last: tuple[bytes, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def predict(self, states: list[QueueState]) -> np.ndarray:
        """(n, 3) array of low, median, high seconds, ordered and clipped at 0. The same features as the
        last call give the last answer without asking the trees again (a quiet hall at night: every
        figure capped, tick after tick)."""
        x = np.array([s.features() for s in states], dtype=np.float64)
        key = x.tobytes() + bytes(str(x.shape), "ascii")
        if self._last is not None and self._last[0] == key:
            return self._last[1].copy()
        out = np.clip(np.column_stack([booster_predict(m, x) for m in self.models]), 0.0, None) ** 2
        out[:, 2] += self.high_shift_s
        out = np.sort(np.clip(out, 0.0, None), axis=1)
        self._last = (key, out.copy())
        return out


def booster_predict(booster: Any, x: np.ndarray) -> np.ndarray:
    """``booster.predict(x, num_threads=1)`` through LightGBM's C API (``LGBM_BoosterPredictForMat``)
    with the booster's own handle. The hub predicts a handful of rows at every ticket event and tick,
    where ``Booster.predict``'s Python set-up (a new predictor object per call) costs more than the
    trees; the numbers are the library's own. Falls back to ``Booster.predict`` if the C API differs."""
    global _C_API
    if _C_API is None:
        try:
            import ctypes

            from lightgbm.basic import _LIB, _c_str, _safe_call

            _C_API = (ctypes, _LIB, _c_str("num_threads=1"), _safe_call)
        except Exception:          # another LightGBM layout: the public call
            _C_API = ()
    if not _C_API or not hasattr(booster, "_handle") or x.ndim != 2:
        return booster.predict(x, num_threads=1)
    ctypes, lib, params, safe_call = _C_API
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty(x.shape[0], dtype=np.float64)
    out_len = ctypes.c_int64(0)
    safe_call(lib.LGBM_BoosterPredictForMat(
        booster._handle, x.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), ctypes.c_int(1),   # float64
        ctypes.c_int32(x.shape[0]), ctypes.c_int32(x.shape[1]), ctypes.c_int(1),               # row major
        ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(-1), params,                            # normal, all trees
        ctypes.byref(out_len), out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))))
    if out_len.value != x.shape[0]:
        raise ValueError(f"LightGBM gave {out_len.value} predictions for {x.shape[0]} rows")
    return out


_C_API: tuple | None = None


def gamma_interval(need: float, frees_every_s: float) -> tuple[float, float]:
    """10th and 90th percentile of the time until ``need`` counters free up, each after an exponential
    time of mean ``frees_every_s`` (a Gamma(need) wait: the departures of busy counters are Poisson)."""
    if need <= 0 or frees_every_s <= 0:
        return 0.0, 0.0
    from scipy.special import gammaincinv

    return float(gammaincinv(need, 0.1) * frees_every_s), float(gammaincinv(need, 0.9) * frees_every_s)


class WaitPredictor:
    """Per-site wait figures. Not thread-safe except ``set_model`` (a trainer thread swaps the model)."""

    def __init__(self, book: TicketBook):
        self.book = book
        self.history = QueueHistory(book)
        self.model: WaitModel | None = None
        self._lock = threading.Lock()
        self._states: tuple[tuple[float, int], dict[str, QueueState]] | None = None
        self._cache: tuple[tuple[float, int], dict[str, dict[str, Any]]] | None = None

    def set_model(self, model: WaitModel | None) -> None:
        with self._lock:
            self.model = model
            self._cache = None

    def states(self, now: float) -> dict[str, QueueState]:
        """Every service's queue state at ``now``, once per instant and book state."""
        key = (now, self.history.version)
        if self._states is None or self._states[0] != key:
            self._states = (key, self.history.states(now))
        return self._states[1]

    def figures(self, now: float) -> dict[str, dict[str, Any]]:
        """Every service's wait figures at ``now``: computed once per instant and book state (the rules
        ask for each service in turn; the model predicts all of them in one call)."""
        key = (now, self.history.version)
        with self._lock:
            model = self.model
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
        states = self.states(now)
        served = [s for s in states.values() if s.counters]
        preds = dict(zip((s.service for s in served), model.predict(served))) if model and served else {}
        out = {}
        for name, s in states.items():
            if not s.counters:
                out[name] = {"predicted_wait_s": None, "wait_low_s": None, "wait_high_s": None,
                             "wait_reason": NO_COUNTER, "frees_every_s": None, "wait_source": None}
                continue
            if name in preds:
                low, mid, high = (float(v) for v in preds[name])
                source = "model"
            else:
                mid = s.state_wait_s
                low, high = gamma_interval(mid / s.frees_every_s, s.frees_every_s) if mid > 0 else (0.0, 0.0)
                source = "state"
            # overloaded: arrivals outpace the counters freeing up AND a full round of counters is queued;
            # one ticket before two busy counters during a burst is a short wait, not an overload
            overloaded = s.ahead >= max(1, s.counters) and s.load >= 1.0
            out[name] = {"predicted_wait_s": round(mid, 1), "wait_low_s": round(low, 1),
                         "wait_high_s": round(high, 1), "wait_reason": OVERLOADED if overloaded else OK,
                         "frees_every_s": round(s.frees_every_s, 1), "wait_source": source}
        with self._lock:
            if self.model is model:
                self._cache = (key, out)
        return out
