"""Information ceiling of the per-ticket wait prediction (issue 12) on the Anonymous Bank call centre.

Is the hub's MAE limited by its model or by what the ticket feed says? The same kind of model (LightGBM
median of the square root of the wait, ``hub.waits.training.PARAMS``) is trained on the hub's own causal
features (``QueueHistory.states`` folded over the logs exactly as ``hub.waits.training.training_rows``
does), learning from 1-7 Feb only and scored on the tickets served 8-14 Feb, with:

- (a)  the hub's features, the hub's settings;
- (b1) + the tickets of each priority class waiting ahead (own service, and at shared counters weighted as
       ``ahead_shared``): information a ticket system with VIP tickets has at the issue;
- (b2) + the ticket's own priority and the tickets ahead at or above it;
- (c)  stronger learners on (a): more trees and leaves, an L1 loss on the wait itself, scikit-learn's
       histogram boosting with its own early stopping;
- (d)  an oracle, not a predictor: (a) plus whether the ticket will be queued at all (truth ``queued``),
       to show how much of the error is the "will it wait at all" question;
- (e)  an oracle of the future: (a) plus how many other tickets its counters took before calling it
       (what priority callers jumping ahead, abandonment ahead and the service order decide). What is left
       is when those counters free up: what no predictor of the queue state can be expected to beat.

The truth file is read here for ANALYSIS only (priority, queued); the product never reads it. Its
``priority`` is in effect recorded for calls that entered the queue (of the priority-0 calls 29 % were
queued, of priority 1 and 2 96-98 %: the printed cross-table), so the ticket's own priority partly
encodes the outcome and (b2) flatters it; (b1) uses only the priority of tickets already waiting, which
is free of that leak.

``--design`` runs step 3 of the study instead: two model changes on (a)'s features, designed on learn
1-4 Feb / score 5-7 Feb (with the paired difference to (a) and its standard error); ``--final M1``
adds the one that won there, scored on 8-14 Feb (learnt 1-7 Feb).

Every setting below is fixed in advance (nothing is chosen on 8-14 Feb). One run: under 1 min on one
core (the fold of the 14 days, then a dozen small models with num_threads=1).

Run: .venv/bin/python bench/waits_ceiling.py [--data ../shared/queue-data/anonymous-bank-1999-02]
     [--rows /tmp/waits-ceiling-rows.pkl] [--design [--final M1]]
     (the folded rows are cached in --rows, outside the repository: a second run only trains)
"""

from __future__ import annotations

import argparse
import bisect
import csv
import pickle
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.site import load_site  # noqa: E402

from hub.tickets import RANK, TicketBook, TicketError  # noqa: E402
from hub.waits.evaluate import read_logs  # noqa: E402
from hub.waits.features import FEATURE_NAMES, QueueHistory  # noqa: E402
from hub.waits.training import PARAMS, ROUNDS, fit  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "queue-data" / "anonymous-bank-1999-02"
LEARN_TO, SCORE_FROM = date(1999, 2, 7).toordinal(), date(1999, 2, 8).toordinal()
PRIORITY_NAMES = ("wait_p0", "wait_p1", "wait_p2", "shared_p0", "shared_p1", "shared_p2")
OWN_NAMES = ("priority", "ahead_at_or_above", "shared_at_or_above")


@dataclass
class Row:
    """One issued ticket: the hub's features just before its issue, the priority view of the same
    instant (truth priority of the tickets then waiting), and what happened."""

    day: int
    ticket: str
    service: str
    issued: float
    x: list[float]                    # QueueState.features()
    busy: bool                        # a ticket of its service was already waiting
    prio: list[float]                 # PRIORITY_NAMES
    own: list[float]                  # OWN_NAMES
    queued: int                       # truth: it entered the queue (analysis oracle only)
    counters: tuple[str, ...]         # the open counters that served its service at the issue
    wait: float | None = None         # called - issued; None: left before a call (censored)
    released: int = 0                 # oracle: other tickets called at those counters before its call


def read_truth(path: Path) -> dict[tuple[int, str], tuple[int, int]]:
    """(local day ordinal, ticket) -> (priority, queued)."""
    out = {}
    with path.open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            out[(date.fromisoformat(r["local_date"]).toordinal(), r["ticket"])] = (int(r["priority"]), int(r["queued"]))
    return out


def fold(data: Path) -> list[Row]:
    """The logs folded in time order through a TicketBook and QueueHistory set up as the hub's
    ``SiteState`` does; at every issue the states of that instant (as ``training_rows``)."""
    site = load_site(data / "anonymous-bank.yaml")
    truth = read_truth(next(data.glob("truth-*.csv")))
    events, errors = read_logs(sorted(str(p) for p in data.glob("tickets-*.csv")))
    assert not errors, errors[:3]
    book = TicketBook([s.id for s in site.services], {c.id: list(c.services) for c in site.counters},
                      prior_s=site.rules.service_time_prior_s, window_s=site.rules.arrival_window_s,
                      timezone=site.timezone)
    hist = QueueHistory(book)
    rows: dict[tuple[int, str], Row] = {}
    calls: list[tuple[float, str]] = []          # every call (ts, counter), in time order
    missing = 0                                  # issued tickets without a truth row (priority 0 assumed)
    for e in sorted(events, key=lambda e: (e.ts, RANK[e.kind])):
        day = book.day_of(e.ts)
        visit = (day, e.ticket)
        if e.kind == "issued":
            st = hist.states(e.ts)[e.service]
            missing += visit not in truth
            own_p, queued = truth.get(visit, (0, 0))
            _, shares, _ = hist._layout()
            by = [0.0] * 6
            above = [0.0, 0.0]
            for other, share in shares[e.service]:
                for t in book.waiting(other):
                    p = truth.get((t.day, t.ticket), (0, 0))[0]
                    by[3 + p] += share
                    above[1] += share * (p >= own_p)
                    if other == e.service:
                        by[p] += 1
                        above[0] += p >= own_p
            rows[visit] = Row(day, e.ticket, e.service, e.ts, st.features(), st.ahead > 0, by, [own_p, *above], queued,
                              tuple(hist.counters_of(e.service)))
        try:
            book.apply(e, e.ts)
        except TicketError:
            continue
        r = rows.get(visit)
        if e.kind == "called" and r is not None and r.wait is None:
            r.wait = max(0.0, e.ts - r.issued)
            mine = set(r.counters)
            r.released = sum(1 for ts, c in calls[bisect.bisect_right(calls, (r.issued, "\uffff")):] if c in mine)
        if e.kind == "called":
            calls.append((e.ts, e.counter))
    print(f"{len(rows)} tickets issued, {missing} without a truth row", file=sys.stderr)
    return list(rows.values())


# --- learners ------------------------------------------------------------------------------------------
BIG = {**PARAMS, "num_leaves": 63, "learning_rate": 0.03}          # (c1): 4x the leaves, 10x the rounds
BIG_ROUNDS = 1000


def lgb_median(params: dict, rounds: int, sqrt: bool = True):
    """A LightGBM model of the median wait (of its square root, as the hub, or of the wait itself)."""
    def learn(x: np.ndarray, y: np.ndarray):
        import lightgbm as lgb

        p = {**params, "alpha": 0.5} if params.get("objective") == "quantile" else params
        model = lgb.train(p, lgb.Dataset(x, np.sqrt(y) if sqrt else y), rounds)
        return lambda z: np.clip(model.predict(z, num_threads=1), 0.0, None) ** (2 if sqrt else 1)
    return learn


def hgb_median(x: np.ndarray, y: np.ndarray):
    """(c3) scikit-learn's histogram boosting, absolute-error loss on the square root, up to 2,000 rounds
    with its own early stopping on 15 % of the learning week."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):                   # one core, as the LightGBM models (a shared machine)
        model = HistGradientBoostingRegressor(loss="absolute_error", max_iter=2000, learning_rate=0.05,
                                              max_leaf_nodes=31, early_stopping=True, validation_fraction=0.15,
                                              n_iter_no_change=50, random_state=0).fit(x, np.sqrt(y))

    def predict(z: np.ndarray) -> np.ndarray:
        with threadpool_limits(1):
            return np.clip(model.predict(z), 0.0, None) ** 2
    return predict


LEVELS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def hurdle_median(x: np.ndarray, y: np.ndarray):
    """(M1) a mixture: P(wait > 0) (LightGBM binary) and the wait of those who wait (LightGBM quantiles of
    its square root at ``LEVELS``). The point figure is the mixture's median: 0 when P(wait > 0) <= 1/2,
    else the conditional quantile at 1 - 0.5 / P (interpolated between the levels)."""
    import lightgbm as lgb

    waited = y > 0.5
    clf = lgb.train({**PARAMS, "objective": "binary"}, lgb.Dataset(x, waited.astype(float)), ROUNDS)
    qs = [lgb.train({**PARAMS, "alpha": a}, lgb.Dataset(x[waited], np.sqrt(y[waited])), ROUNDS) for a in LEVELS]

    def predict(z: np.ndarray) -> np.ndarray:
        p = clf.predict(z, num_threads=1)
        cond = np.sort(np.clip(np.column_stack([m.predict(z, num_threads=1) for m in qs]), 0.0, None) ** 2, axis=1)
        level = 1.0 - 0.5 / np.maximum(p, 1e-9)
        out = np.array([np.interp(q, (0.0, *LEVELS), (0.0, *row)) for q, row in zip(level, cond)])
        return np.where(p > 0.5, out, 0.0)
    return predict


def intervals_median(x: np.ndarray, y: np.ndarray):
    """(M2) the count and the rate apart: the model learns the wait in release intervals (wait over
    ``frees_every_s``, the observed time between two of its counters freeing up; median of its square
    root, hub settings) and the figure is that count times the interval observed at the issue."""
    import lightgbm as lgb

    tau = np.maximum(x[:, FEATURE_NAMES.index("frees_every_s")], 1.0)
    model = lgb.train({**PARAMS, "alpha": 0.5}, lgb.Dataset(x, np.sqrt(y / tau)), ROUNDS)

    def predict(z: np.ndarray) -> np.ndarray:
        t = np.maximum(z[:, FEATURE_NAMES.index("frees_every_s")], 1.0)
        return np.clip(model.predict(z, num_threads=1), 0.0, None) ** 2 * t
    return predict


DESIGN = [("(a) hub model", lgb_median(PARAMS, ROUNDS)), ("(M1) P(wait>0) x wait if waiting", hurdle_median),
          ("(M2) releases needed x release interval", intervals_median)]


def design(served: list[Row], final: str | None) -> None:
    """Step 3's model changes on (a)'s features, designed on learn 1-4 Feb / score 5-7 Feb; ``final``
    names the one change (if any) that won there, scored once on 8-14 Feb (learnt 1-7 Feb)."""
    splits = [("design: learn 1-4, score 5-7 Feb", date(1999, 2, 4).toordinal(), date(1999, 2, 5).toordinal(),
               LEARN_TO)]
    if final:
        splits.append(("learn 1-7, score 8-14 Feb", LEARN_TO, SCORE_FROM, SCORE_FROM + 6))
    for title, last, first, end in splits:
        learn = [r for r in served if r.day <= last]
        score = [r for r in served if first <= r.day <= end]
        y = np.array([r.wait for r in learn])
        n_busy = sum(r.busy for r in score)
        print(f"\n{title:48s} {'MAE all':>8s} {'MAE busy':>9s}   ({len(score)} served, {n_busy} busy)")
        truth = np.array([r.wait for r in score])
        busy = np.array([r.busy for r in score])
        base = None
        for name, learner in DESIGN:
            if first == SCORE_FROM and not (name.startswith("(a)") or name.startswith(final)):
                continue
            err = np.abs(learner(columns(learn, ()), y)(columns(score, ())) - truth)
            base = err if base is None else base
            diff = "   vs (a): " + ", ".join(f"{d.mean():+.2f} +- {d.std(ddof=1) / np.sqrt(len(d)):.2f}"
                                           for d in (err - base, (err - base)[busy])) if err is not base else ""
            print(f"{name:48s} {err.mean():8.1f} {err[busy].mean():9.1f}{diff}")


def columns(rows: list[Row], parts: tuple[str, ...]) -> np.ndarray:
    """The feature matrix: the hub's features plus the named extras (prio, own, queued)."""
    out = []
    for r in rows:
        x = list(r.x)
        if "prio" in parts:
            x += r.prio
        if "own" in parts:
            x += r.own
        if "queued" in parts:
            x.append(r.queued)
        if "released" in parts:
            x.append(r.released)
        out.append(x)
    return np.array(out, dtype=np.float64)


VARIANTS = [
    # name, extra features, learner
    ("(a) hub features, hub model (learnt 1-7 Feb)", (), lgb_median(PARAMS, ROUNDS)),
    ("(b1) + tickets waiting per priority class", ("prio",), lgb_median(PARAMS, ROUNDS)),
    ("(b2) + own priority, ahead at/above it", ("prio", "own"), lgb_median(PARAMS, ROUNDS)),
    ("(b2) with the (c1) model", ("prio", "own"), lgb_median(BIG, BIG_ROUNDS)),
    ("(c1) (a), 63 leaves, 1000 rounds at 0.03", (), lgb_median(BIG, BIG_ROUNDS)),
    ("(c2) (a), L1 loss on the wait itself", (), lgb_median({**PARAMS, "objective": "l1"}, ROUNDS, sqrt=False)),
    ("(c3) (a), sklearn HGB, early stopping", (), hgb_median),
    ("(d) oracle: (a) + will it queue (truth)", ("queued",), lgb_median(PARAMS, ROUNDS)),
    ("(e) oracle: (a) + calls at its counters first", ("released",), lgb_median(PARAMS, ROUNDS)),
    ("(e) with the (c1) model", ("released",), lgb_median(BIG, BIG_ROUNDS)),
]


def mae(pred: np.ndarray, rows: list[Row]) -> tuple[float, float]:
    y = np.array([r.wait for r in rows])
    busy = np.array([r.busy for r in rows])
    err = np.abs(pred - y)
    return float(err.mean()), float(err[busy].mean())


def hub_daily(rows: list[Row]) -> np.ndarray:
    """(a, as eval-waits) ``training.fit`` retrained before each scored day on every earlier day (the
    hub's trainer), its median asked for that day's tickets: the check that this fold is the hub's."""
    by_day: dict[int, list[tuple[list[float], float]]] = {}
    for r in rows:
        by_day.setdefault(r.day, []).append((r.x, r.wait))
    scored = [r for r in rows if r.day >= SCORE_FROM]
    pred = np.empty(len(scored))
    for d in sorted({r.day for r in scored}):
        model = fit({k: v for k, v in by_day.items() if k < d}, 0.0)
        idx = [i for i, r in enumerate(scored) if r.day == d]
        x = np.array([scored[i].x for i in idx])
        pred[idx] = np.clip(model.models[1].predict(x, num_threads=1), 0.0, None) ** 2
    return pred


def leak_table(rows: list[Row]) -> str:
    """Priority against queued, all tickets and busy moments: how far own priority tells the outcome."""
    lines = ["truth priority vs queued (served and abandoned tickets): priority: queued share (n)"]
    for label, part in (("all", rows), ("busy", [r for r in rows if r.busy])):
        cells = []
        for p in (0, 1, 2):
            sel = [r for r in part if r.own[0] == p]
            cells.append(f"p{p}: {sum(r.queued for r in sel) / max(1, len(sel)):.3f} ({len(sel)})")
        lines.append(f"  {label:4s} " + "  ".join(cells))
    return "\n".join(lines)


def where_error(pred: np.ndarray, rows: list[Row]) -> str:
    """Where a predictor's absolute error lies: quiet moments (nobody of the service waiting) in which
    the ticket waited anyway, quiet ones in which it did not, and busy moments."""
    y = np.array([r.wait for r in rows])
    busy = np.array([r.busy for r in rows])
    err = np.abs(pred - y)
    lines = []
    for label, sel in (("quiet, waited", ~busy & (y > 0.5)), ("quiet, not waited", ~busy & (y <= 0.5)),
                       ("busy", busy)):
        lines.append(f"  {label:18s} n={sel.sum():5d}  mean wait {y[sel].mean():5.1f} s  predicted "
                     f"{pred[sel].mean():5.1f} s  share of the error {err[sel].sum() / err.sum():.2f}")
    return "\n".join(lines)


def waits_at_all(learn: list[Row], score: list[Row]) -> str:
    """How well (a)'s features tell whether a ticket will wait at all: ROC AUC of a LightGBM classifier
    (hub settings, binary loss) learnt 1-7 Feb, on all scored tickets and on quiet moments."""
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    y = np.array([r.wait > 0.5 for r in learn], dtype=float)
    model = lgb.train({**PARAMS, "objective": "binary"}, lgb.Dataset(columns(learn, ()), y), ROUNDS)
    p = model.predict(columns(score, ()), num_threads=1)
    waited = np.array([r.wait > 0.5 for r in score])
    quiet = ~np.array([r.busy for r in score])
    return (f"will it wait at all, from (a)'s features: ROC AUC {roc_auc_score(waited, p):.3f} "
            f"(quiet moments {roc_auc_score(waited[quiet], p[quiet]):.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--rows", type=Path, default=Path("/tmp/waits-ceiling-rows.pkl"),
                    help="cache of the folded rows (outside the repository)")
    ap.add_argument("--design", action="store_true", help="step 3: the model changes on the design split")
    ap.add_argument("--final", help="with --design: the change that won there (M1 or M2), scored once on 8-14 Feb")
    args = ap.parse_args()
    if args.rows.exists():
        rows = pickle.loads(args.rows.read_bytes())
    else:
        rows = fold(args.data)
        args.rows.write_bytes(pickle.dumps(rows))
    served = [r for r in rows if r.wait is not None]
    if args.design:
        design(served, args.final and f"({args.final})")
        return
    learn = [r for r in served if r.day <= LEARN_TO]
    score = [r for r in served if r.day >= SCORE_FROM]
    print(f"features ({len(FEATURE_NAMES)}): {', '.join(FEATURE_NAMES)}")
    print(f"learn 1-7 Feb: {len(learn)} served; score 8-14 Feb: {len(score)} served, "
          f"{sum(r.busy for r in score)} busy")
    print(leak_table([r for r in rows if r.day >= SCORE_FROM]))
    y = np.array([r.wait for r in learn])
    results = [("(a, as eval-waits) hub model retrained daily", *mae(hub_daily(served), score))]
    for name, parts, learner in VARIANTS:
        pred = learner(columns(learn, parts), y)(columns(score, parts))
        results.append((name, *mae(pred, score)))
        if name.startswith("(a)"):
            print(f"where the error of {name} lies (8-14 Feb):\n{where_error(pred, score)}")
            print(waits_at_all(learn, score))
    hol = [r.x[FEATURE_NAMES.index("hol_s")] for r in score]
    results.append(("HOL baseline", *mae(np.array(hol), score)))
    print(f"\n{'8-14 Feb, served':48s} {'MAE all':>8s} {'MAE busy':>9s}")
    for name, a, b in results:
        print(f"{name:48s} {a:8.1f} {b:9.1f}")


if __name__ == "__main__":
    main()
