"""Arrival forecast per service and 15-minute slot, with an 80 % interval, for the rest of today and tomorrow.

The model is deliberately small (plain numpy, a few fixed constants) because the
literature finds little to gain from more: days ahead the historical average per
weekday and slot is hard to beat, hours ahead it is beaten by scaling it with how
busy today has been so far (Taylor 2008; Weinberg, Brown & Stroud 2007). So:

1. **Profile** (built once a day, ``DayModel``): the mean count per slot over the
   history's working days, pulled toward the same weekday's mean where there is one
   (``SAME_WEEKDAY_WEIGHT`` days of "all working days" against each same-weekday day),
   smoothed over neighbouring slots. With one earlier working day this is the previous
   working day; with none, the site's prior is no history at all (an empty profile:
   nothing is forecast and the plan says so). A non-working day (Friday in a Sunday-Thursday
   hall) uses only its own weekday's history.
2. **Intraday level**: today's arrivals against the profile over the completed slots,
   weighted toward the last hours (half-life ``LEVEL_HALF_LIFE_SLOTS``), with
   ``LEVEL_PSEUDO_COUNT`` expected arrivals of prior weight at level 1, so a quiet
   start of the day moves nothing. Each service's level is shrunk toward the site's
   pooled level (small services are mostly noise). The level fades back to 1 with the
   horizon (``LEVEL_FADE_SLOTS``): tomorrow is the profile.
3. **Interval**: negative binomial around the forecast: Poisson, plus the profile's own
   sampling noise (known from how many days it averaged), plus an over-dispersion measured
   by running this same forecaster over the history's recent working days (so it is as wide
   as the forecaster's real misses). Counts are whole numbers, so each bound is the integer
   whose tail probability is nearest 10 % (the usual quantile always rounds outward and
   covers far more than 80 % on small counts). The point forecast is the median of that
   distribution (least absolute error); the plan staffs for the mean.

The constants are fixed a priori, not fitted to any evaluation week (README: "Look ahead").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
from scipy import stats

from hub.planning.history import SLOTS_PER_DAY, Arrivals

SAME_WEEKDAY_WEIGHT = 2.0       # the all-working-days mean counts as this many same-weekday days
MAX_POOL_DAYS = 20              # working days in the profile (four weeks)
LEVEL_HALF_LIFE_SLOTS = 8.0     # today's level weights the last two hours most
LEVEL_PSEUDO_COUNT = 10.0       # expected arrivals of prior weight on level 1
LEVEL_FADE_SLOTS = 24.0         # the level's deviation from 1 halves every six hours of horizon
DISPERSION_DAYS = 10            # recent working days the over-dispersion is measured on
DISPERSION_PRIOR = 0.05         # over-dispersion assumed with little history ...
DISPERSION_PRIOR_WEIGHT = 200.0  # ... held with this weight (in squared expected arrivals)
SMOOTH = np.array([0.25, 0.5, 0.25])
SMOOTH_VARIANCE = float((SMOOTH ** 2).sum())     # what the smoothing leaves of independent slots' variance
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def working_weekdays(arrivals: Arrivals, before: date, configured: list[str] | None = None) -> set[int]:
    """Weekday numbers (Monday 0) of full working days: configured, else learned from the history before
    ``before``: weekdays with at least half the busiest weekday's mean arrivals, and weekdays the history
    has not seen yet (nothing says they are short); no history at all: Monday-Friday."""
    if configured:
        return {WEEKDAY_NAMES.index(d) for d in configured}
    totals: dict[int, list[float]] = {}
    for d in arrivals.days:
        if d < before:
            totals.setdefault(d.weekday(), []).append(arrivals.total(d))
    if not totals:
        return {0, 1, 2, 3, 4}
    means = {w: float(np.mean(v)) for w, v in totals.items()}
    top = max(means.values())
    return {w for w in range(7) if w not in means or (top > 0 and means[w] >= 0.5 * top)}


def _smooth(profile: np.ndarray) -> np.ndarray:
    return np.convolve(np.pad(profile, 1, mode="edge"), SMOOTH, mode="valid")


def profile(arrivals: Arrivals, services: list[str], day: date, working: set[int]
            ) -> tuple[np.ndarray, float, str]:
    """Expected arrivals per service (rows) and slot for ``day`` from days before it; the profile's own
    sampling noise as a share of the mean (its variance is about ``noise * mean`` for Poisson days: few
    days, more noise); and which history it used."""
    past = sorted(d for d in arrivals.days if d < day)
    out = np.zeros((len(services), SLOTS_PER_DAY))
    if day.weekday() in working:
        pool = [d for d in past if d.weekday() in working][-MAX_POOL_DAYS:]
        if not pool:
            return out, 0.0, "none"
        same = [d for d in pool if d.weekday() == day.weekday()]
        k = SAME_WEEKDAY_WEIGHT
        for i, s in enumerate(services):
            mean_all = np.mean([arrivals.day(s, d) for d in pool], axis=0)
            same_sum = np.sum([arrivals.day(s, d) for d in same], axis=0) if same else 0.0
            out[i] = _smooth((same_sum + k * mean_all) / (len(same) + k))
        noise = SMOOTH_VARIANCE * (len(same) + k * k / len(pool)) / (len(same) + k) ** 2
        source = ("previous working day" if len(pool) == 1 else
                  "all working days" if not same else "same weekday and all working days")
        return out, noise, source
    same = [d for d in past if d.weekday() == day.weekday()][-4:]
    if not same:
        return out, 0.0, "none"
    for i, s in enumerate(services):
        out[i] = _smooth(np.mean([arrivals.day(s, d) for d in same], axis=0))
    return out, SMOOTH_VARIANCE / len(same), "same weekday"


def levels(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Intraday level per service after each completed slot: ``out[:, k]`` uses slots ``< k``.

    ``observed`` and ``expected`` are (services, slots); a decayed sum is carried slot by slot."""
    n_s, n = observed.shape
    decay = 0.5 ** (1.0 / LEVEL_HALF_LIFE_SLOTS)
    out = np.ones((n_s, n + 1))
    o = np.zeros(n_s)
    e = np.zeros(n_s)
    for k in range(n):
        o = decay * o + observed[:, k]
        e = decay * e + expected[:, k]
        site = (o.sum() + LEVEL_PSEUDO_COUNT) / (e.sum() + LEVEL_PSEUDO_COUNT)
        out[:, k + 1] = (o + LEVEL_PSEUDO_COUNT * site) / (e + LEVEL_PSEUDO_COUNT)
    return out


def fade(level: np.ndarray | float, horizon_slots: np.ndarray | float) -> np.ndarray:
    """The level's pull on a slot ``horizon_slots`` ahead: full now, half after LEVEL_FADE_SLOTS."""
    return 1.0 + (np.asarray(level) - 1.0) * 0.5 ** (np.asarray(horizon_slots) / LEVEL_FADE_SLOTS)


def dispersion(arrivals: Arrivals, services: list[str], day: date, working: set[int], horizon_slots: int) -> float:
    """Over-dispersion ``phi`` of this forecaster's own misses at ``horizon_slots`` ahead on the recent
    working days before ``day``, shrunk toward a prior: the variance of a count is
    ``mean * (1 + noise) + phi * mean^2``, Poisson plus the profile's sampling noise (``profile``) plus
    what days really vary by. The noise term is taken out here and put back for the day forecast, so a
    profile that learned from one day does not make the intervals of one that learned from twenty wide."""
    num, den = 0.0, 0.0
    past = [d for d in sorted(arrivals.days) if d < day and d.weekday() in working][-DISPERSION_DAYS:]
    for d in past:
        prof, noise, source = profile(arrivals, services, d, working)
        if source == "none":
            continue
        obs = np.array([arrivals.day(s, d) for s in services])
        lv = levels(obs, prof)                         # lv[:, k]: level known at the start of slot k
        k = np.arange(SLOTS_PER_DAY)
        known = np.clip(k - horizon_slots, 0, None)
        mu = prof * fade(lv[:, known], horizon_slots)
        num += float(((obs - mu) ** 2 - mu * (1 + noise)).sum())
        den += float((mu ** 2).sum())
    return max(0.0, (num + DISPERSION_PRIOR * DISPERSION_PRIOR_WEIGHT) / (den + DISPERSION_PRIOR_WEIGHT))


@dataclass(frozen=True)
class Predictive:
    """The count distribution of slots: negative binomial with variance ``mean*(1+noise) + phi*mean^2``,
    as (n, p) arrays for scipy's ``nbinom`` functions (a frozen distribution per call costs more than
    the arithmetic: the hub refreshes every site every few minutes)."""

    n: np.ndarray
    p: np.ndarray

    def cdf(self, k: np.ndarray) -> np.ndarray:
        return stats.nbinom.cdf(k, self.n, self.p)

    def ppf(self, q: float) -> np.ndarray:
        return stats.nbinom.ppf(q, self.n, self.p)

    def median(self) -> np.ndarray:
        return self.ppf(0.5)


def predictive(mean: np.ndarray, phi: float, noise: float) -> Predictive:
    mean = np.maximum(np.asarray(mean, dtype=float), 1e-9)
    extra = np.maximum(phi + noise / mean, 1e-9)         # var = mean + extra * mean^2
    r = 1.0 / extra
    return Predictive(r, r / (r + mean))


def interval(dist: Predictive) -> tuple[np.ndarray, np.ndarray]:
    """80 % interval: integer bounds whose tail probability is nearest 10 % each (counts are whole
    numbers; the plain quantiles round outward and cover far more than 80 % on small counts)."""
    hi = dist.ppf(0.9)
    hi = np.where(np.abs(dist.cdf(hi - 1) - 0.9) < np.abs(dist.cdf(hi) - 0.9), hi - 1, hi)
    lo = dist.ppf(0.1)
    # P(X >= lo) = 1 - cdf(lo - 1); moving lo up by one gives 1 - cdf(lo)
    lo = np.where(np.abs((1 - dist.cdf(lo)) - 0.9) < np.abs((1 - dist.cdf(lo - 1)) - 0.9), lo + 1, lo)
    return np.maximum(np.minimum(lo, hi), 0), np.maximum(hi, 0)


@dataclass
class DayModel:
    """What the forecast of one local day needs from the history before it; built once a day per site."""

    day: date
    services: list[str]
    profile: np.ndarray                  # (services, slots)
    noise: float
    source: str
    phi_intraday: float
    phi_day_ahead: float
    working: set[int] = field(default_factory=set)

    @classmethod
    def build(cls, arrivals: Arrivals, services: list[str], day: date, working: set[int]) -> "DayModel":
        prof, noise, source = profile(arrivals, services, day, working)
        return cls(day, services, prof, noise, source, dispersion(arrivals, services, day, working, 2),
                   dispersion(arrivals, services, day, working, SLOTS_PER_DAY), working)


@dataclass
class Forecast:
    """One service's forecast for the slots of a day: arrivals expected per slot (``mean``, the load the
    plan staffs for), the point forecast (``median``: the figure with the least absolute error, what
    ``eval-forecast`` scores) and the 80 % interval."""

    service: str
    day: date
    mean: np.ndarray
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray
    source: str


def forecast_day(model: DayModel, today_counts: np.ndarray, completed: int) -> list[Forecast]:
    """The day's forecast per service made after ``completed`` slots of it are over (0: before it starts).

    ``today_counts`` (services, slots) holds the day's arrivals so far; only slots ``< completed`` are read,
    and they are "forecast" as they were counted."""
    lv = levels(today_counts[:, :completed], model.profile[:, :completed])[:, -1] if completed else \
        np.ones(len(model.services))
    start = completed
    horizon = np.arange(SLOTS_PER_DAY) - completed
    mean = model.profile * fade(lv[:, None], np.maximum(horizon, 0)[None, :])
    phi = model.phi_intraday if completed else model.phi_day_ahead
    mean[:, :start] = today_counts[:, :start]
    dist = predictive(mean, phi, model.noise)             # every service at once: one scipy call each
    med = dist.median()
    lo, hi = interval(dist)
    med[:, :start] = lo[:, :start] = hi[:, :start] = mean[:, :start]
    return [Forecast(s, model.day, mean[i], med[i], lo[i], hi[i], model.source) for i, s in enumerate(model.services)]
