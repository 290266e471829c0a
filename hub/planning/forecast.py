"""Arrival forecast per service and 15-minute slot, with an 80 % interval, for the rest of today and tomorrow.

The model is a gamma-Poisson one with as few fixed constants as we could manage, because the
literature finds little to gain from more: days ahead the historical average per weekday and
slot is hard to beat, hours ahead it is beaten by updating it with how busy today has been so
far (Taylor 2008; Weinberg, Brown & Stroud 2007). So:

1. **Profile** (built once a day, ``DayModel``): the mean count per slot over the history's
   working days, pulled toward the same weekday's mean where there is one
   (``SAME_WEEKDAY_WEIGHT`` days of "all working days" against each same-weekday day), smoothed
   over neighbouring slots with a Gaussian kernel whose width is **chosen by leave-one-day-out
   cross-validation on the history itself** (few days: a wide kernel, the noise dominates; many:
   a narrow one, the shape is known), so no width is tuned to any evaluation week. With one earlier
   working day the profile is that previous working day; with none, there is no forecast (an
   empty profile; the plan says so). A non-working day (Friday in a Sunday-Thursday hall) uses
   only its own weekday's history.
2. **Intraday level** (gamma-Poisson update): today's level ``L`` multiplies the profile; its prior
   is a gamma distribution with mean 1 worth ``LEVEL_PSEUDO_COUNT`` expected arrivals, and each
   completed slot adds its count and its profile expectation to the posterior, discounted with a
   half-life of ``LEVEL_HALF_LIFE_SLOTS`` (the last hours say most about the next). Each service's
   prior mean is the site's pooled level (small services are mostly noise). The level's pull fades
   with the horizon (``LEVEL_FADE_SLOTS``): tomorrow is the profile.
3. **Predictive distribution**: negative binomial with variance
   ``mean * (1 + noise) + phi * (1 + noise_days) * mean^2``: Poisson, plus what slots really vary by
   beyond it (``phi``, **measured per service** by running this same forecaster over the history's
   recent working days, shrunk toward the site's pooled value), each inflated by the profile's own
   sampling noise (known from how many days it averaged and how it was smoothed). The point forecast
   is the median (least absolute error); the plan staffs for the mean. The 80 % interval is the likeliest whole numbers that hold at most 80 % together
   (a count is a whole number: plain quantiles round outward and cover far more than 80 % on small
   counts; below a mean of about 0.2 even ``[0, 0]`` holds more than 80 %, and is the interval).

Everything is vectorised over services, slots and history days (numpy, ``scipy.signal.lfilter``,
``scipy.ndimage``, ``scipy.stats.nbinom``): the hub refreshes every site every few minutes and
rebuilds every site's model at the start of each day. The constants are fixed a priori, not fitted
to any evaluation week (README: "Look ahead").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
from scipy import ndimage, signal, stats

from hub.planning.history import SLOTS_PER_DAY, Arrivals

SAME_WEEKDAY_WEIGHT = 2.0       # the all-working-days mean counts as this many same-weekday days
MAX_POOL_DAYS = 20              # working days in the profile (four weeks)
SMOOTH_WIDTHS = (0.5, 1.0, 1.5, 2.0, 3.0)   # candidate kernel widths (slots), chosen by cross-validation
DEFAULT_WIDTH = 1.0             # one day of history: nothing to cross-validate on
LEVEL_HALF_LIFE_SLOTS = 8.0     # today's level weights the last two hours most
LEVEL_PSEUDO_COUNT = 10.0       # expected arrivals of prior weight on the level
LEVEL_FADE_SLOTS = 24.0         # the level's deviation from 1 halves every six hours of horizon
DISPERSION_DAYS = 10            # recent working days the over-dispersion is measured on
DISPERSION_PRIOR = 0.05         # over-dispersion assumed with little history ...
DISPERSION_PRIOR_WEIGHT = 200.0  # ... held with this weight (in squared expected arrivals); a service is
                                 # shrunk toward the site's pooled value with the same weight
COVERAGE = 0.8
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


def kernel(width: float) -> np.ndarray:
    """A Gaussian smoothing kernel over slots (``width`` is its standard deviation in slots)."""
    r = max(1, int(np.ceil(3 * width)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / width) ** 2)
    return k / k.sum()


def smooth(x: np.ndarray, width: float) -> np.ndarray:
    """Smooth along the last axis (slots); the day's first and last slots are repeated outward."""
    return ndimage.convolve1d(np.asarray(x, dtype=float), kernel(width), axis=-1, mode="nearest")


def stack(arrivals: Arrivals, services: list[str], days: list[date]) -> np.ndarray:
    """The history as one array: (days, services, slots)."""
    out = np.zeros((len(days), len(services), SLOTS_PER_DAY))
    for j, s in enumerate(services):
        rows = arrivals.counts.get(s, {})
        for i, d in enumerate(days):
            if d in rows:
                out[i, j] = rows[d]
    return out


def choose_width(days: np.ndarray) -> float:
    """The smoothing width that forecasts each history day best from the mean of the others (leave one
    day out, squared error over services and slots): the bias-variance trade-off measured on the site's
    own history, so a hall with three days of history smooths more than one with twenty."""
    n = len(days)
    if n < 2:
        return DEFAULT_WIDTH
    loo = (days.sum(axis=0, keepdims=True) - days) / (n - 1)
    errors = [float(((smooth(loo, w) - days) ** 2).sum()) for w in SMOOTH_WIDTHS]
    return SMOOTH_WIDTHS[int(np.argmin(errors))]


def _pool(arrivals: Arrivals, day: date, working: set[int]) -> tuple[list[date], bool]:
    past = sorted(d for d in arrivals.days if d < day)
    if day.weekday() in working:
        return [d for d in past if d.weekday() in working][-MAX_POOL_DAYS:], True
    return [d for d in past if d.weekday() == day.weekday()][-4:], False


def profile(arrivals: Arrivals, services: list[str], day: date, working: set[int], width: float | None = None
            ) -> tuple[np.ndarray, float, float, str]:
    """Expected arrivals per service (rows) and slot for ``day`` from days before it; the profile's own
    sampling noise (few days, more noise) as shares of a day's variance: of its Poisson part (``noise``,
    which smoothing over neighbouring slots reduces) and of how days really differ (``noise_days``, which
    it does not: a busy half hour spans neighbouring slots); and which history it used. ``width``: the
    smoothing kernel's, else chosen by cross-validation on the pool."""
    pool, full_day = _pool(arrivals, day, working)
    if not pool:
        return np.zeros((len(services), SLOTS_PER_DAY)), 0.0, 0.0, "none"
    hist = stack(arrivals, services, pool)
    width = choose_width(hist) if width is None else width
    k = kernel(width)
    if not full_day:
        return (smooth(hist.mean(axis=0), width), float((k ** 2).sum()) / len(pool), 1.0 / len(pool),
                "same weekday")
    same = np.array([d.weekday() == day.weekday() for d in pool])
    n_same, w = int(same.sum()), SAME_WEEKDAY_WEIGHT
    weights = (same + w / len(pool)) / (n_same + w)       # each day's weight in the blended mean
    out = smooth(np.tensordot(weights, hist, axes=1), width)
    days_noise = float((weights ** 2).sum())             # variance of the weighted mean per day's
    source = ("previous working day" if len(pool) == 1 else
              "all working days" if not n_same else "same weekday and all working days")
    return out, float((k ** 2).sum()) * days_noise, days_noise, source


def levels(observed: np.ndarray, expected: np.ndarray, half_life: float = LEVEL_HALF_LIFE_SLOTS,
           pseudo: float = LEVEL_PSEUDO_COUNT) -> np.ndarray:
    """Posterior mean of today's level per service after each completed slot: ``out[..., k]`` uses slots
    ``< k`` (``out[..., 0]`` is the prior, 1).

    ``observed`` and ``expected`` are (..., services, slots); the discounted sums of counts and of
    profile expectations are the gamma posterior's shape and rate (less the prior), carried with one
    linear filter per array; each service's prior mean is the site's pooled level."""
    decay = 0.5 ** (1.0 / half_life)
    o = signal.lfilter([1.0], [1.0, -decay], observed, axis=-1)
    e = signal.lfilter([1.0], [1.0, -decay], expected, axis=-1)
    site = (o.sum(axis=-2, keepdims=True) + pseudo) / (e.sum(axis=-2, keepdims=True) + pseudo)
    lv = (o + pseudo * site) / (e + pseudo)
    return np.concatenate([np.ones(lv.shape[:-1] + (1,)), lv], axis=-1)


def fade(level: np.ndarray | float, horizon_slots: np.ndarray | float) -> np.ndarray:
    """The level's pull on a slot ``horizon_slots`` ahead: full now, half after LEVEL_FADE_SLOTS."""
    return 1.0 + (np.asarray(level) - 1.0) * 0.5 ** (np.asarray(horizon_slots) / LEVEL_FADE_SLOTS)


@dataclass(frozen=True)
class Backtest:
    """The forecaster's profiles of the recent working days before a day, each from the days before it, with
    what was counted: (days, services, slots) arrays and each profile's noises (``profile``)."""

    profile: np.ndarray
    observed: np.ndarray
    noise: np.ndarray
    noise_days: np.ndarray


def backtest(arrivals: Arrivals, services: list[str], day: date, working: set[int], width: float | None = None
             ) -> Backtest | None:
    past = [d for d in sorted(arrivals.days) if d < day and d.weekday() in working][-DISPERSION_DAYS:]
    runs = [(profile(arrivals, services, d, working, width), d) for d in past]
    runs = [(r, d) for r, d in runs if r[3] != "none"]
    if not runs:
        return None
    return Backtest(np.array([r[0] for r, _ in runs]), stack(arrivals, services, [d for _, d in runs]),
                    np.array([r[1] for r, _ in runs]), np.array([r[2] for r, _ in runs]))


def _means(bt: Backtest, horizon_slots: int, half_life: float, pseudo: float) -> np.ndarray:
    lv = levels(bt.observed, bt.profile, half_life, pseudo)       # lv[..., k]: level known at the start of k
    known = np.clip(np.arange(SLOTS_PER_DAY) - horizon_slots, 0, None)
    return bt.profile * fade(lv[..., known], horizon_slots)


def dispersion(arrivals: Arrivals, services: list[str], day: date, working: set[int], horizon_slots: int,
               width: float | None = None, level: tuple[float, float] | None = None,
               bt: Backtest | None = None) -> np.ndarray:
    """Over-dispersion ``phi`` per service of this forecaster's own misses at ``horizon_slots`` ahead on the
    recent working days before ``day``: a count's variance is ``mean * (1 + noise) + phi * mean^2 *
    (1 + noise_days)`` (``profile``), so each day's squared misses are weighed against its own profile's noise
    (a profile that learned from one day misses more than one that learned from twenty; the forecast's own
    noise is put back for the day forecast). Each service's moment
    estimate is shrunk toward the site's pooled one, and that toward ``DISPERSION_PRIOR``."""
    bt = backtest(arrivals, services, day, working, width) if bt is None else bt
    prior = DISPERSION_PRIOR * DISPERSION_PRIOR_WEIGHT
    if bt is None:
        return np.full(len(services), DISPERSION_PRIOR)
    y = bt.observed
    mu = _means(bt, horizon_slots, *(level or (LEVEL_HALF_LIFE_SLOTS, LEVEL_PSEUDO_COUNT)))
    excess = ((y - mu) ** 2 - mu * (1.0 + bt.noise)[:, None, None]).sum(axis=(0, 2))
    mu2 = (mu ** 2 * (1.0 + bt.noise_days)[:, None, None]).sum(axis=(0, 2))
    pooled = max(0.0, (excess.sum() + prior) / (mu2.sum() + DISPERSION_PRIOR_WEIGHT))
    return np.maximum(0.0, (excess + pooled * DISPERSION_PRIOR_WEIGHT) / (mu2 + DISPERSION_PRIOR_WEIGHT))


@dataclass(frozen=True)
class Predictive:
    """The count distribution of slots: negative binomial as (n, p) arrays for scipy's ``nbinom`` functions
    (a frozen distribution per call costs more than the arithmetic: the hub refreshes every site every
    few minutes)."""

    n: np.ndarray
    p: np.ndarray

    def cdf(self, k: np.ndarray) -> np.ndarray:
        return stats.nbinom.cdf(k, self.n, self.p)

    def pmf(self, k: np.ndarray) -> np.ndarray:
        return stats.nbinom.pmf(k, self.n, self.p)

    def ppf(self, q: float) -> np.ndarray:
        return stats.nbinom.ppf(q, self.n, self.p)

    def median(self) -> np.ndarray:
        return self.ppf(0.5)


def predictive(mean: np.ndarray, phi: np.ndarray | float, noise: float, noise_days: float = 0.0) -> Predictive:
    """Negative binomial with variance ``mean * (1 + noise) + phi * (1 + noise_days) * mean^2`` (``phi`` per
    row or one; the noises are the profile's, ``profile``)."""
    mean = np.maximum(np.asarray(mean, dtype=float), 1e-9)
    phi = np.asarray(phi, dtype=float)
    if phi.ndim == 1 and mean.ndim == 2:
        phi = phi[:, None]
    extra = np.maximum(noise / mean + (1.0 + noise_days) * phi, 1e-9)   # var = mean + extra * mean^2
    r = 1.0 / extra
    return Predictive(np.broadcast_to(r, mean.shape), r / (r + mean))


def interval(dist: Predictive, coverage: float = COVERAGE) -> tuple[np.ndarray, np.ndarray]:
    """The 80 % interval of whole-number counts: the likeliest counts, as many as hold at most ``coverage``
    together (at least the likeliest one), from the lowest to the highest of them (for a unimodal count,
    one run). A set of whole numbers seldom holds exactly 80 %: taking the nearest set, or the usual
    equal-tailed quantiles (which round outward), claims more on average and covers far more than 80 %
    on small counts; where even the likeliest count alone holds more (a mean under about 0.2: [0, 0]),
    that count is the interval, so small services still cover more than 80 %."""
    shape = np.shape(dist.p)
    top = int(np.max(dist.ppf(0.9999), initial=0)) + 2
    ks = np.arange(top + 1).reshape((-1,) + (1,) * len(shape))
    pmf = dist.pmf(ks)                                           # (counts, ...) over every slot at once
    order = np.argsort(-pmf, axis=0, kind="stable")
    cum = np.cumsum(np.take_along_axis(pmf, order, axis=0), axis=0)
    n_in = np.maximum((cum <= coverage + 1e-12).sum(axis=0) - 1, 0)   # index of the last count taken
    rank = np.argsort(order, axis=0)                             # each count's place in that order
    inside = rank <= n_in[None]
    lo = np.where(inside, ks, top).min(axis=0)
    hi = np.where(inside, ks, 0).max(axis=0)
    return lo.astype(float), hi.astype(float)


@dataclass
class DayModel:
    """What the forecast of one local day needs from the history before it; built once a day per site."""

    day: date
    services: list[str]
    profile: np.ndarray                  # (services, slots)
    noise: float
    source: str
    phi_intraday: np.ndarray             # per service
    phi_day_ahead: np.ndarray
    working: set[int] = field(default_factory=set)
    width: float = DEFAULT_WIDTH         # the smoothing kernel's, chosen on the history
    noise_days: float = 0.0
    level: tuple[float, float] = (LEVEL_HALF_LIFE_SLOTS, LEVEL_PSEUDO_COUNT)   # half-life, pseudo count

    @classmethod
    def build(cls, arrivals: Arrivals, services: list[str], day: date, working: set[int]) -> "DayModel":
        pool, _ = _pool(arrivals, day, working)
        width = choose_width(stack(arrivals, services, pool)) if pool else DEFAULT_WIDTH
        prof, noise, noise_days, source = profile(arrivals, services, day, working, width)
        bt = backtest(arrivals, services, day, working, width)
        return cls(day, services, prof, noise, source, dispersion(arrivals, services, day, working, 2, width, bt=bt),
                   dispersion(arrivals, services, day, working, SLOTS_PER_DAY, width, bt=bt), working, width,
                   noise_days)


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
    lv = levels(today_counts[:, :completed], model.profile[:, :completed], *model.level)[:, -1] if completed else \
        np.ones(len(model.services))
    start = completed
    horizon = np.arange(SLOTS_PER_DAY) - completed
    mean = model.profile * fade(lv[:, None], np.maximum(horizon, 0)[None, :])
    phi = model.phi_intraday if completed else model.phi_day_ahead
    mean[:, :start] = today_counts[:, :start]
    dist = predictive(mean, phi, model.noise, model.noise_days)     # every service at once: one scipy call each
    med = dist.median()
    lo, hi = interval(dist)
    med[:, :start] = lo[:, :start] = hi[:, :start] = mean[:, :start]
    return [Forecast(s, model.day, mean[i], med[i], lo[i], hi[i], model.source) for i, s in enumerate(model.services)]
