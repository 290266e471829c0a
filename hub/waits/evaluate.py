"""``eval-waits``: ticket logs played through the live hub, each ticket's prediction at its issue scored
against the wait it actually had, beside the standard delay predictors, and long-wait alerts judged
against the stretches in which customers actually waited too long.

The hub is the one ``hallgrid replay`` runs (``hub.replay.timeline.play``: a ``ManualClock`` set to
each event's instant, no MQTT, rules on every event, at every tick and at the instants a condition
said it would cross its threshold, as a hub ticking every second would evaluate it: ``wake``). Days
before ``score_from`` are history the hub may learn from (its trainer retrains once a service day
from what it stored); only tickets issued on later days are scored. A ticket that left before its call (no-show) has no
wait: it is counted as abandoned, never scored as a wait of 0.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from calibration.site import Site
from edge.contract import iso_ts

from hub.replay import timeline as tl
from hub.tickets import RANK, TicketEvent, read_csv
from hub.waits.features import QueueState

PREDICTION_COLUMNS = ("ticket", "service", "issued_at", "predicted_wait_s", "low_s", "high_s", "reason")
ALERT_COLUMNS = ("service", "raised_at", "resolved_at")
EPISODE_GAP_S = 300.0
WITHIN_S = 120.0


def baselines(s: QueueState) -> dict[str, float]:
    """The standard single-customer delay predictors, from the same state the hub sees.

    zero: always 0. LES: the wait of the last ticket of the service to be called. HOL: how long the
    ticket at the head of the service's line has waited so far (0 with none waiting). last-10: the
    mean wait of the last 10 called tickets of the service. QL: (tickets waiting ahead + 1) x mean
    service time / open counters of the service.
    """
    return {"zero": 0.0, "LES": s.les_s, "HOL": s.hol_s, "last-10": s.recent_wait_s,
            "QL": (s.ahead + 1) * s.service_time_s / s.counters if s.counters else math.nan}


@dataclass
class Issued:
    """One ticket issued on a scored day: what the hub said then and what happened."""

    ticket: str
    service: str
    issued: float
    busy: bool                          # a ticket of the service was already waiting
    hub: float | None
    low: float | None
    high: float | None
    reason: str
    base: dict[str, float]
    called: float | None = None
    left: float | None = None           # no-show before a call


@dataclass
class Run:
    site: Site
    tickets: list[Issued] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    end: float = 0.0


def read_logs(paths: list[str]) -> tuple[list[TicketEvent], list[str]]:
    """Every good event of the logs; one 'FILE: line N: reason' per bad row (skipped, not fatal)."""
    events, errors = [], []
    for p in paths:
        good, bad = read_csv(Path(p).read_text(encoding="utf-8"), 0.0)
        events += good
        errors += [f"{p}: {e}" for e in bad]
    return events, errors


def run(site: Site, paths: list[str], score_from: date | None, tick_s: float = 60.0) -> Run:
    """Play the logs through the live hub and collect each scored ticket's prediction and outcome."""
    events, errors = read_logs(paths)
    out = Run(site, errors=errors)
    if not events:
        return out
    events.sort(key=lambda e: (e.ts, RANK[e.kind]))
    start, end = events[0].ts, events[-1].ts
    out.end = end
    first_day = score_from.toordinal() if score_from else None
    open_tickets: dict[tuple[int, str], Issued] = {}

    def on_ticket(hub, e: TicketEvent) -> None:
        st = hub.sites[site.id]
        day = st.book.day_of(e.ts)
        if first_day is not None and day < first_day:
            return
        key = (day, e.ticket)
        if e.kind == "issued":
            if e.service not in st.book.known_services:     # the hub refuses it (a bad row, counted)
                return
            f = st.service_figures(e.service, e.ts)
            s = st.waits.states(e.ts)[e.service]
            item = Issued(e.ticket, e.service, e.ts, s.ahead > 0, f["predicted_wait_s"], f["wait_low_s"],
                          f["wait_high_s"], f["wait_reason"], baselines(s))
            open_tickets[key] = item
            out.tickets.append(item)
        elif key in open_tickets:
            item = open_tickets[key]
            if e.kind == "called" and item.called is None and item.left is None:
                item.called = e.ts
            elif e.kind == "no_show" and item.called is None:
                item.left = e.ts
            elif e.kind == "transferred":        # a new wait for another service: this one is over
                open_tickets.pop(key)

    timeline = tl.order(site, [], events, start, end, tick_s)
    record = tl.play(timeline, on_ticket=on_ticket, wake=True)
    for a in sorted(record.alerts, key=lambda a: a.raised_at):
        if a.kind != "long_wait":
            continue
        raised = datetime.fromisoformat(a.raised_at.replace("Z", "+00:00")).timestamp()
        if first_day is not None and local_day(site, raised) < first_day:
            continue
        resolved = datetime.fromisoformat(a.resolved_at.replace("Z", "+00:00")).timestamp() if a.resolved_at else None
        out.alerts.append({"service": a.key.split(":", 1)[1], "raised": raised, "resolved": resolved})
    return out


def local_day(site: Site, ts: float) -> int:
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(ts, ZoneInfo(site.timezone)).date().toordinal()


# --- scores ---------------------------------------------------------------------------------------------
def errors_of(pairs: list[tuple[float, float]]) -> dict[str, Any]:
    """MAE, RMSE, median absolute error, bias (predicted - actual) and share within +-2 min."""
    if not pairs:
        return {"n": 0}
    err = [p - a for p, a in pairs]
    ae = [abs(e) for e in err]
    return {"n": len(pairs), "mae_s": round(statistics.fmean(ae), 1),
            "rmse_s": round(math.sqrt(statistics.fmean(e * e for e in err)), 1),
            "median_ae_s": round(statistics.median(ae), 1), "bias_s": round(statistics.fmean(err), 1),
            "within_2min": round(sum(a <= WITHIN_S for a in ae) / len(ae), 4)}


def predictor_names(items: list[Issued]) -> list[str]:
    return ["hub"] + (list(items[0].base) if items else [])


def scores(items: list[Issued]) -> dict[str, Any]:
    """Every predictor on served tickets (all, busy), with the hub's interval coverage."""
    served = [t for t in items if t.called is not None]
    out: dict[str, Any] = {}
    for name in predictor_names(served):
        def value(t):
            return t.hub if name == "hub" else t.base[name]
        rows = {"all": served, "busy": [t for t in served if t.busy]}
        out[name] = {k: errors_of([(value(t), t.called - t.issued) for t in v
                                   if value(t) is not None and not math.isnan(value(t))]) for k, v in rows.items()}
    with_interval = [t for t in served if t.low is not None]
    out["hub"]["coverage_80"] = (round(sum(t.low <= t.called - t.issued <= t.high for t in with_interval)
                                       / len(with_interval), 4) if with_interval else None)
    out["hub"]["no_prediction"] = sum(1 for t in served if t.hub is None)
    return out


def abandoned(items: list[Issued]) -> dict[str, Any]:
    """Tickets that left before a call: censored waits (they waited at least until they left)."""
    left = [t for t in items if t.left is not None]
    if not left:
        return {"n": 0}
    return {"n": len(left), "share": round(len(left) / len(items), 4),
            "mean_waited_before_leaving_s": round(statistics.fmean(t.left - t.issued for t in left), 1),
            "hub_predicted_at_least_that": round(sum(1 for t in left if t.hub is not None and t.hub >= t.left - t.issued)
                                                 / len(left), 4)}


def episodes(items: list[Issued], max_wait_s: float) -> dict[str, list[dict[str, float]]]:
    """Per service, stretches of issued tickets that actually waited longer than ``max_wait_s`` (gaps
    between their issues under 5 min merged). Each: start (first issue), end (last such ticket's call),
    first_called (its first ticket's call) and crossed (when that ticket's wait passed the limit)."""
    out: dict[str, list[dict[str, float]]] = {}
    for t in sorted(items, key=lambda t: t.issued):
        if t.called is None or t.called - t.issued <= max_wait_s:
            continue
        eps = out.setdefault(t.service, [])
        if eps and t.issued - eps[-1]["last_issue"] < EPISODE_GAP_S:
            eps[-1]["last_issue"] = t.issued
            eps[-1]["end"] = max(eps[-1]["end"], t.called)
        else:
            eps.append({"start": t.issued, "last_issue": t.issued, "end": t.called, "first_called": t.called,
                        "crossed": t.issued + max_wait_s})
    return out


def alert_quality(run_: Run, max_wait_s: float) -> dict[str, Any]:
    """Precision (alerts overlapping an episode of their service), recall (episodes with an alert of
    that service raised before the episode's first long-waiting ticket was called and still open at
    the episode's start) and median lead (alert raised to the moment that ticket's wait crossed the limit)."""
    eps = episodes(run_.tickets, max_wait_s)
    alerts = run_.alerts
    end = run_.end

    def overlaps(a, e):
        return a["raised"] <= e["end"] and (a["resolved"] or end) >= e["start"]

    hits = sum(1 for a in alerts if any(overlaps(a, e) for e in eps.get(a["service"], [])))
    found, leads = 0, []
    for service, rows in eps.items():
        for e in rows:
            early = [a for a in alerts if a["service"] == service and a["raised"] <= e["first_called"]
                     and (a["resolved"] or end) >= e["start"]]
            if early:
                found += 1
                leads.append(e["crossed"] - min(a["raised"] for a in early))
    n_eps = sum(len(v) for v in eps.values())
    return {"max_wait_s": max_wait_s, "episodes": n_eps, "alerts": len(alerts),
            "precision": round(hits / len(alerts), 4) if alerts else None,
            "recall": round(found / n_eps, 4) if n_eps else None,
            "median_lead_s": round(statistics.median(leads), 1) if leads else None}


def report(run_: Run) -> dict[str, Any]:
    items = run_.tickets
    return {"site": run_.site.id, "tickets_scored": len(items),
            "served": sum(1 for t in items if t.called is not None),
            "overall": scores(items),
            "per_service": {s: scores([t for t in items if t.service == s])
                            for s in sorted({t.service for t in items})},
            "abandoned": abandoned(items),
            "alerts": alert_quality(run_, run_.site.rules.max_wait_s),
            "bad_rows": run_.errors}


def write_predictions(items: list[Issued], path: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(PREDICTION_COLUMNS)
        for t in items:
            w.writerow([t.ticket, t.service, iso_ts(t.issued), "" if t.hub is None else t.hub,
                        "" if t.low is None else t.low, "" if t.high is None else t.high, t.reason])


def write_alerts(alerts: list[dict[str, Any]], path: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(ALERT_COLUMNS)
        for a in alerts:
            w.writerow([a["service"], iso_ts(a["raised"]), "" if a["resolved"] is None else iso_ts(a["resolved"])])


def table(rep: dict[str, Any]) -> str:
    """The report as plain-text tables: every predictor on all served tickets and on busy moments,
    then MAE per service, then interval, abandonment and alert quality."""
    lines = [f"{'predictor':10s} {'tickets':>7s} {'MAE':>6s} {'RMSE':>6s} {'MedAE':>6s} {'bias':>6s} {'+-2min':>7s}"
             f"   {'busy n':>6s} {'MAE':>6s} {'RMSE':>6s} {'MedAE':>6s} {'bias':>6s} {'+-2min':>7s}"]
    for name, s in rep["overall"].items():
        a, b = s["all"], s["busy"]
        cols = []
        for part in (a, b):
            cols.append(f"{part['n']:>7d} " + " ".join(f"{part.get(k, float('nan')):6.1f}" for k in
                                                        ("mae_s", "rmse_s", "median_ae_s", "bias_s"))
                        + f" {part.get('within_2min', float('nan')) * 100:6.1f}%")
        lines.append(f"{name:10s} {cols[0]}  {cols[1]}")
    names = list(rep["overall"])
    lines.append("")
    lines.append("MAE per service (all served / busy): " + ", ".join(names))
    for svc, s in rep["per_service"].items():
        lines.append(f"  {svc:6s} n={s['hub']['all']['n']:<5d} " + "  ".join(
            f"{n} {s[n]['all'].get('mae_s', float('nan')):.1f}/{s[n]['busy'].get('mae_s', float('nan')):.1f}"
            for n in names))
    hub = rep["overall"]["hub"]
    lines.append("")
    lines.append(f"hub 80% interval coverage: {hub['coverage_80']}; served tickets without a prediction: "
                 f"{hub['no_prediction']}")
    lines.append(f"abandoned (censored, not scored): {rep['abandoned']}")
    lines.append(f"long-wait alerts: {rep['alerts']}")
    if rep["bad_rows"]:
        lines.append(f"bad log rows skipped: {len(rep['bad_rows'])}")
    return "\n".join(lines)
