"""Forecast designs compared on the first week of the shared call-centre data only (1-7 Feb 1999).

The hub's forecaster as ``eval-forecast`` runs it, rebuilt offline from the same functions: for each scored
working day a ``DayModel`` learned from the days before it, and for each slot of its opening hours the
forecast made two slots (30 min) before the slot. Two design sets, both before 8 Feb (the official score):
learn 1-3 Feb and score 4 and 7 Feb, and learn 1-2 Feb and score 3, 4 and 7 Feb (Sunday-Thursday working
days; 5-6 Feb are short days, history only). The first week has no week before it, so the baseline is the
previous working day's same slot. Each variant changes one thing of the forecaster (below) and keeps the
rest; none has a constant chosen on these days.

Run: .venv/bin/python bench/forecast_design.py
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.site import load_site  # noqa: E402
from hub.planning import forecast as F  # noqa: E402
from hub.planning.evaluate import opening_slots, read_logs  # noqa: E402
from hub.planning.history import Arrivals, slot_of  # noqa: E402

BANK = Path(__file__).resolve().parents[2] / "shared" / "queue-data" / "anonymous-bank-1999-02"
DESIGN_SETS = {"learn 1-3 Feb, score 4, 7 Feb": [date(1999, 2, 4), date(1999, 2, 7)],
               "learn 1-2 Feb, score 3, 4, 7 Feb": [date(1999, 2, 3), date(1999, 2, 4), date(1999, 2, 7)]}
HORIZON = 2          # slots: 30 minutes


def before(arr: Arrivals, day: date) -> Arrivals:
    out = Arrivals(arr.tz)
    out.days = {d for d in arr.days if d < day}
    out.counts = {s: {d: v for d, v in rows.items() if d < day} for s, rows in arr.counts.items()}
    return out


# --- variants: each returns (model hook, levels function) ----------------------------------------------------
def level_prior_moments(bt: F.Backtest, half_life: float) -> float:
    """Empirical Bayes: the level's prior weight 1/tau^2, tau^2 the variance of the site's discounted level on the
    backtest less its Poisson part (method of moments)."""
    decay = 0.5 ** (1.0 / half_life)
    o = signal.lfilter([1.0], [1.0, -decay], bt.observed.sum(axis=1), axis=-1)
    e = signal.lfilter([1.0], [1.0, -decay], bt.profile.sum(axis=1), axis=-1)
    v = signal.lfilter([1.0], [1.0, -decay ** 2], bt.profile.sum(axis=1), axis=-1)
    m = e >= 1.0
    tau2 = float(np.mean((o[m] / e[m] - 1.0) ** 2) - np.mean(v[m] / e[m] ** 2))
    return float(np.clip(1.0 / max(tau2, 1e-3), 1.0, 1e3))


def service_levels(weight: float):
    """Each service's level shrunk toward the site's with ``weight`` expected arrivals (inf: the site's level
    for every service, top-down)."""
    def levels(observed, expected, half_life=F.LEVEL_HALF_LIFE_SLOTS, pseudo=F.LEVEL_PSEUDO_COUNT):
        decay = 0.5 ** (1.0 / half_life)
        o = signal.lfilter([1.0], [1.0, -decay], observed, axis=-1)
        e = signal.lfilter([1.0], [1.0, -decay], expected, axis=-1)
        site = (o.sum(axis=-2, keepdims=True) + pseudo) / (e.sum(axis=-2, keepdims=True) + pseudo)
        lv = np.broadcast_to(site, o.shape) if np.isinf(weight) else (o + weight * site) / (e + weight)
        return np.concatenate([np.ones(lv.shape[:-1] + (1,)), lv], axis=-1)
    return levels


def profile_variant(kind: str):
    """The profile with per-service smoothing widths (leave-one-day-out per service), top-down (the site's total
    profile times each service's share, the share smoothed with a width chosen the same way), or from days
    each scaled to the pool's mean day total (within-day proportions)."""
    base = F.profile

    def loo(h):
        return (h.sum(axis=0, keepdims=True) - h) / (len(h) - 1)

    def profile(arrivals, services, day, working, width=None):
        pool, full_day = F._pool(arrivals, day, working)
        out, noise, noise_days, source = base(arrivals, services, day, working, width)
        if not pool or len(pool) < 2 or kind == "days":
            return out, noise, noise_days, source
        hist = F.stack(arrivals, services, pool)
        same = np.array([d.weekday() == day.weekday() for d in pool])
        wts = ((same + F.SAME_WEEKDAY_WEIGHT / len(pool)) / (same.sum() + F.SAME_WEEKDAY_WEIGHT) if full_day
               else np.full(len(pool), 1.0 / len(pool)))
        mean = np.tensordot(wts, hist, axes=1)
        held = loo(hist)
        if kind == "per-service width":
            errs = np.array([((F.smooth(held, w) - hist) ** 2).sum(axis=(0, 2)) for w in F.SMOOTH_WIDTHS])
            ws = np.array(F.SMOOTH_WIDTHS)[errs.argmin(axis=0)]
            return np.array([F.smooth(mean[i], ws[i]) for i in range(len(services))]), noise, noise_days, source
        widths = (1.0, 2.0, 4.0, 8.0, 16.0)            # top-down: the share's width
        wt = F.choose_width(hist.sum(axis=1, keepdims=True))
        total = F.smooth(held.sum(axis=1), wt)
        errs = []
        for w in widths:
            share = F.smooth(held, w) / np.maximum(F.smooth(held.sum(axis=1, keepdims=True), w), 1e-12)
            errs.append(((share * total[:, None, :] - hist) ** 2).sum(axis=(0, 2)))
        ws = np.array(widths)[np.argmin(np.array(errs), axis=0)]
        tot = F.smooth(mean.sum(axis=0), wt)
        prof = [F.smooth(mean[i], ws[i]) / np.maximum(F.smooth(mean.sum(axis=0), ws[i]), 1e-12) * tot
                for i in range(len(services))]
        return np.array(prof), noise, noise_days, source

    if kind == "days":
        stack = F.stack

        def scaled(arrivals, services, days):
            h = stack(arrivals, services, days)
            if len(days) < 2:
                return h
            tot = h.sum(axis=(1, 2), keepdims=True)
            return np.where(tot > 0, h * tot.mean(axis=0, keepdims=True) / np.maximum(tot, 1e-9), h)

        def profile_days(arrivals, services, day, working, width=None):
            F.stack = scaled
            try:
                return base(arrivals, services, day, working, width)
            finally:
                F.stack = stack
        return profile_days
    return profile


VARIANTS = {
    "the hub's forecaster (unchanged)": {},
    "level prior by empirical Bayes (method of moments)": {"eb": True},
    "service level = site level (top-down)": {"levels": service_levels(np.inf)},
    "service level toward site level, weight 30": {"levels": service_levels(30.0)},
    "profile: per-service smoothing width (LOO-CV)": {"profile": "per-service width"},
    "profile: site total x smoothed share (top-down)": {"profile": "top-down"},
    "profile: days scaled to the mean day total": {"profile": "days"},
    # not forecasts: where the error is (they read the scored day's own counts)
    "oracle: each service's true level of the whole day": {"oracle": "day"},
    "oracle: the site's true level of the two hours around the slot": {"oracle": "local"},
}


def oracle_median(model: F.DayModel, today: np.ndarray, k: int, span: tuple[int, int], kind: str) -> np.ndarray:
    """The median of the forecaster's predictive distribution with the profile scaled by a level it cannot know."""
    prof = model.profile
    if kind == "day":
        a, b = span[0], span[1] + 1
        level = today[:, a:b].sum(axis=1) / np.maximum(prof[:, a:b].sum(axis=1), 1e-9)
    else:
        a, b = max(k - 4, 0), min(k + 5, F.SLOTS_PER_DAY)
        level = today[:, a:b].sum() / max(prof[:, a:b].sum(), 1e-9)
    dist = F.predictive((prof[:, k] * level)[:, None], model.phi_intraday, model.noise, model.noise_days)
    return dist.median()[:, 0]


def run(events, site, days, variant) -> dict:
    tz = ZoneInfo(site.timezone)
    services = [s.id for s in site.services]
    arrivals = Arrivals.from_times(tz, [(e.ts, e.service) for e in events if e.kind == "issued"],
                                   [slot_of(e.ts, tz)[0] for e in events])
    span = opening_slots(events, tz)
    saved = (F.levels, F.profile)
    if "levels" in variant:
        F.levels = variant["levels"]
    if "profile" in variant:
        F.profile = profile_variant(variant["profile"])
    err, base, cov = [], [], []
    try:
        for d in days:
            hist = before(arrivals, d)
            working = F.working_weekdays(hist, d, site.planning.working_days)
            model = F.DayModel.build(hist, services, d, working)
            if variant.get("eb"):
                bt = F.backtest(hist, services, d, working, model.width)
                if bt is not None:
                    model = dataclasses.replace(model, level=(F.LEVEL_HALF_LIFE_SLOTS,
                                                              level_prior_moments(bt, F.LEVEL_HALF_LIFE_SLOTS)))
            today = np.array([arrivals.day(s, d) for s in services])
            prev = max(x for x in hist.days if x.weekday() in working)
            for k in range(span[d][0], span[d][1] + 1):
                y = today[:, k]
                if "oracle" in variant:
                    err.extend(np.abs(oracle_median(model, today, k, span[d], variant["oracle"]) - y))
                else:
                    fs = F.forecast_day(model, today, max(k - HORIZON, 0))
                    err.extend(np.abs(np.array([f.median[k] for f in fs]) - y))
                    cov.extend([f.low[k] <= y[i] <= f.high[k] for i, f in enumerate(fs)])
                base.extend(np.abs(np.array([arrivals.day(s, prev)[k] for s in services]) - y))
    finally:
        F.levels, F.profile = saved
    return {"ratio": float(np.mean(err) / np.mean(base)), "coverage": float(np.mean(cov)) if cov else None,
            "mae": float(np.mean(err))}


def main() -> None:
    if not BANK.is_dir():
        sys.exit(f"the shared data is missing: {BANK}")
    site = load_site(BANK / "anonymous-bank.yaml")
    events = read_logs([str(BANK / f"tickets-1999-02-{d:02d}.csv") for d in range(1, 8)])   # the first week only
    print("| variant | " + " | ".join(f"{k}: MAE / prev. working day, coverage" for k in DESIGN_SETS) + " |")
    print("|---|" + "---|" * len(DESIGN_SETS))
    for name, variant in VARIANTS.items():
        cells = [run(events, site, days, variant) for days in DESIGN_SETS.values()]
        print(f"| {name} | " + " | ".join(f"{c['ratio']:.3f} x" + (f", {100 * c['coverage']:.1f} %" if c["coverage"]
                                                                      is not None else "") for c in cells) + " |",
              flush=True)


if __name__ == "__main__":
    main()
