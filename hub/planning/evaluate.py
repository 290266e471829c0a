"""``hallgrid eval-forecast``: the hub's own forecast backtested on ticket logs, against the naive baselines.

The logs are played through the live ``Hub`` (a SQLite file, a ``ManualClock``, no MQTT): every
event is ingested when its time comes, the rules tick every minute and, in between, at the instants
the alert manager says a condition may raise (``tick_when_due``: the long-wait alert comes seconds
before a wait passes the limit, which a live hub ticking every second sees), and the hub's forecaster
refreshes every five minutes, as in a hall. The forecast scored for a slot is the one
the hub held ``horizon`` before the slot started. Days before ``score_from`` are only
history; on scored days the hub keeps learning from the days already over (never from the
one being forecast).
"""

from __future__ import annotations

import csv
import io
import statistics
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from calibration.site import Site
from edge.clock import ManualClock
from edge.contract import iso_ts, parse_ts

from hub.planning.forecast import working_weekdays
from hub.planning.history import Arrivals, slot_of, slot_start
from hub.replay.timeline import tick_when_due
from hub.tickets import TicketError, TicketEvent, read_csv

TICK_S = 60.0
REFRESH_S = 300.0


class LogError(ValueError):
    """Bad rows of ticket logs, each 'file:line N: reason'."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid ticket log:\n  " + "\n  ".join(problems[:50]))


def read_logs(paths: list[str]) -> list[TicketEvent]:
    """Every event of the logs in time order; LogError naming each bad line (nothing is half-read)."""
    events, problems = [], []
    for p in paths:
        try:
            text = Path(p).read_text(encoding="utf-8")
        except OSError as exc:
            raise LogError([f"{p}: cannot read: {exc.strerror}"]) from None
        evs, errors = read_csv(text, 0.0)
        problems += [f"{p}:{e}" for e in errors]
        events += evs
    if problems:
        raise LogError(problems)
    return sorted(events, key=lambda e: e.ts)


@dataclass
class SlotRow:
    service: str
    start: float
    actual: int
    forecast: float
    low: float
    high: float


def opening_slots(events: list[TicketEvent], tz: ZoneInfo) -> dict[date, list[int]]:
    """Per local day, its first and last slot of opening hours: from the first counter opening to the last
    closing (a counter event tells when the hall works; a late call from the evening before does not),
    or from the first to the last issued ticket in a log without counter events."""
    span: dict[date, list[int]] = {}
    for kinds in (("counter_open", "counter_close"), ("issued",)):
        for e in events:
            if e.kind in kinds:
                d, k = slot_of(e.ts, tz)
                span.setdefault(d, [k, k])
                span[d] = [min(span[d][0], k), max(span[d][1], k)]
        if span:
            return span
    return span


def waits(events: list[TicketEvent], tz: ZoneInfo) -> dict[tuple[str, date, int], list[tuple[float, float]]]:
    """(service, day, slot issued) -> [(issued, waited)] of tickets that were called or left."""
    issued: dict[tuple[date, str], tuple[float, str]] = {}
    out: dict[tuple[str, date, int], list[tuple[float, float]]] = {}
    for e in events:
        key = (slot_of(e.ts, tz)[0], e.ticket)
        if e.kind == "issued":
            issued[key] = (e.ts, e.service)
        elif e.kind in ("called", "no_show") and key in issued:
            t0, svc = issued.pop(key)
            d, k = slot_of(t0, tz)
            out.setdefault((svc, d, k), []).append((t0, e.ts - t0))
    return out


def evaluate(site: Site, events: list[TicketEvent], score_from: date, horizon_s: float = 1800.0,
             progress: bool = False) -> dict[str, Any]:
    """Play the events through the hub; score forecasts, baselines, intervals and shortfall warnings."""
    from tqdm import tqdm

    from hub.service import Hub
    from hub.storage import Storage

    tz = ZoneInfo(site.timezone)
    services = [s.id for s in site.services]
    arrivals = Arrivals.from_times(tz, [(e.ts, e.service) for e in events if e.kind == "issued"],
                                   [slot_of(e.ts, tz)[0] for e in events])
    working = working_weekdays(arrivals, score_from, site.planning.working_days)
    span = opening_slots(events, tz)
    scored = sorted(d for d in span if d >= score_from and d.weekday() in working)
    wanted: dict[float, list[tuple[date, int]]] = {}     # refresh time -> slots it forecasts
    for d in scored:
        for k in range(span[d][0], span[d][1] + 1):
            wanted.setdefault(slot_start(d, k, tz) - horizon_s, []).append((d, k))

    rows: list[SlotRow] = []
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock(events[0].ts)
        storage = Storage(f"sqlite:///{tmp}/eval.db")
        hub = Hub([site], storage, clock=clock, evaluate_on_message=False)    # the rules tick every minute
        t = (events[0].ts // TICK_S) * TICK_S
        end = events[-1].ts + TICK_S
        i = 0
        with tqdm(total=int((end - t) // TICK_S), unit="tick", desc="eval-forecast", disable=not progress) as bar:
            while t <= end:
                while i < len(events) and events[i].ts <= t:
                    tick_when_due(hub, site.id, clock, events[i].ts)
                    clock.set(events[i].ts)
                    try:
                        hub.ingest_ticket(site.id, events[i])
                    except TicketError as exc:
                        hub._drop("ticket", site.id, str(exc))
                    i += 1
                tick_when_due(hub, site.id, clock, t)
                clock.set(t)
                if t % REFRESH_S == 0 or t in wanted:
                    hub.forecaster.refresh(t)
                    la = hub.sites[site.id].lookahead
                    for d, k in wanted.get(t, ()):
                        j = la.slot_at(slot_start(d, k, tz))
                        for s in services:
                            rows.append(SlotRow(s, float(la.starts[j]), int(arrivals.day(s, d)[k]),
                                                float(la.median[s][j]), float(la.low[s][j]), float(la.high[s][j])))
                hub.tick(t)
                t += TICK_S
                bar.update()
        alerts = hub.alerts(site.id, active_only=False)
        hub.stop()
        storage.close()
    return score(site, rows, arrivals, working, events, alerts, horizon_s, tz)


def _previous_working(d: date, days: set[date], working: set[int]) -> date | None:
    earlier = [x for x in days if x < d and x.weekday() in working]
    return max(earlier) if earlier else None


def score(site: Site, rows: list[SlotRow], arrivals: Arrivals, working: set[int], events: list[TicketEvent],
          alerts: list, horizon_s: float, tz: ZoneInfo) -> dict[str, Any]:
    """MAE of the forecast and both baselines per slot, interval coverage, and the shortfall warnings."""
    err = {"forecast": [], "seasonal_naive": [], "previous_working_day": []}
    covered = []
    per_service: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        d, k = slot_of(r.start, tz)
        week = arrivals.day(r.service, d - timedelta(days=7))[k]
        prev_day = _previous_working(d, arrivals.days, working)
        prev = arrivals.day(r.service, prev_day)[k] if prev_day else 0.0
        for name, value in (("forecast", r.forecast), ("seasonal_naive", week), ("previous_working_day", prev)):
            err[name].append(abs(value - r.actual))
            per_service.setdefault(r.service, {}).setdefault(name, []).append(abs(value - r.actual))
        covered.append(r.low <= r.actual <= r.high)
        per_service[r.service].setdefault("coverage_80", []).append(float(covered[-1]))
    mae = {k: float(np.mean(v)) if v else None for k, v in err.items()}
    best = min(mae["seasonal_naive"], mae["previous_working_day"]) if rows else None
    # slots in which tickets actually waited longer than max_wait_s, and what warned of them
    max_wait = site.rules.max_wait_s
    scored_days = {slot_of(r.start, tz)[0] for r in rows}

    def intervals(kind: str, service: str) -> list[tuple[float, float]]:
        out = []
        for a in alerts:
            if a.kind != kind:
                continue
            if kind == "forecast_shortfall" and service not in a.figures.get("pool", []):
                continue
            if kind == "long_wait" and a.key != f"long_wait:{service}":
                continue
            out.append((parse_ts(a.raised_at), parse_ts(a.resolved_at) if a.resolved_at else float("inf")))
        return out

    long_slots = []
    for (svc, d, k), ws in sorted(waits(events, tz).items()):
        if d not in scored_days:
            continue
        long = [(t0, w) for t0, w in ws if w > max_wait]
        if not long:
            continue
        start = slot_start(d, k, tz)
        crossed = min(t0 + max_wait for t0, _ in long)
        fs = [(r0, r1) for r0, r1 in intervals("forecast_shortfall", svc) if r0 <= start < r1]
        any_alert = [(r0, r1) for kind in ("forecast_shortfall", "long_wait")
                     for r0, r1 in intervals(kind, svc) if r0 <= crossed < r1]
        lw = [(r0, r1) for r0, r1 in intervals("long_wait", svc) if r0 <= crossed < r1]
        long_slots.append({"service": svc, "slot_start": iso_ts(start), "long_waits": len(long),
                           "shortfall_ahead": bool(fs), "lead_s": max(start - r0 for r0, _ in fs) if fs else None,
                           "long_wait_before_crossing": bool(lw), "warned_before_crossing": bool(any_alert)})
    leads = [s["lead_s"] for s in long_slots if s["lead_s"] is not None]
    precision = shortfall_precision(site, rows, long_slots, alerts, scored_days, tz)
    return {
        "site": site.id, "horizon_s": horizon_s, "slots": len(rows), "days": sorted(str(d) for d in scored_days),
        "working_weekdays": sorted(working), "mae": mae,
        "ratio_to_best_baseline": mae["forecast"] / best if best else None,
        "coverage_80": float(np.mean(covered)) if covered else None,
        "per_service": {s: {k: float(np.mean(v)) for k, v in d.items()} for s, d in sorted(per_service.items())},
        "long_wait_slots": len(long_slots),
        "shortfall_ahead": sum(s["shortfall_ahead"] for s in long_slots),
        "long_wait_before_crossing": sum(s["long_wait_before_crossing"] for s in long_slots),
        "warned_before_crossing": sum(s["warned_before_crossing"] for s in long_slots),
        "median_shortfall_lead_s": statistics.median(leads) if leads else None,
        "shortfall_alerts": sum(1 for a in alerts if a.kind == "forecast_shortfall" and
                                slot_of(parse_ts(a.raised_at), tz)[0] in scored_days),
        "shortfall_precision": precision,
        "long_wait_detail": long_slots,
        "rows": rows,
    }


def shortfall_precision(site: Site, rows: list[SlotRow], long_slots: list[dict], alerts: list,
                        scored_days: set[date], tz: ZoneInfo) -> dict[str, Any]:
    """How often ``forecast_shortfall`` was right, so a rule that fires always shows as such.

    Per pool (services sharing counters) and slot of the scored opening hours: whether an alert was open
    when the slot started, and whether any of the pool's services had a ticket wait over ``max_wait_s``
    in it. ``slot_precision`` is the share of alerted slots with a long wait, against ``base_rate``, the
    share of all slots with one (what an alert open all day would score); ``alerts_on_long_waits`` counts
    the alerts (raised on a scored day) open during at least one long-wait slot of their pool."""
    from hub.planning.staffing import pools

    starts = sorted({r.start for r in rows})
    long_at = {(s["service"], parse_ts(s["slot_start"])) for s in long_slots}
    fs = [a for a in alerts if a.kind == "forecast_shortfall"]
    span = [(a, parse_ts(a.raised_at), parse_ts(a.resolved_at) if a.resolved_at else float("inf")) for a in fs]
    slots = alerted = alerted_long = any_long = 0
    for p in pools(site):
        mine = [(r0, r1) for a, r0, r1 in span if set(a.figures.get("pool", [])) & set(p.services)]
        for t in starts:
            long = any((s, t) in long_at for s in p.services)
            on = any(r0 <= t < r1 for r0, r1 in mine)
            slots += 1
            any_long += long
            alerted += on
            alerted_long += on and long
    raised = [(a, r0, r1) for a, r0, r1 in span if slot_of(r0, tz)[0] in scored_days]
    useful = sum(1 for a, r0, r1 in raised
                 if any(r0 < t + 900 and t < r1 for s, t in long_at if s in a.figures.get("pool", [])))
    return {"pool_slots": slots, "alerted_slots": alerted, "alerted_slots_with_long_wait": alerted_long,
            "slot_precision": alerted_long / alerted if alerted else None,
            "base_rate": any_long / slots if slots else None,
            "alerts": len(raised), "alerts_on_long_waits": useful,
            "median_alert_minutes": statistics.median(
                [(min(r1, r0 + 86400) - r0) / 60 for _, r0, r1 in raised]) if raised else None}


def write_csv(rows: list[SlotRow], path: Path) -> None:
    """forecast.csv: exactly service,slot_start,actual,forecast,low,high."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["service", "slot_start", "actual", "forecast", "low", "high"])
    for r in sorted(rows, key=lambda r: (r.start, r.service)):
        w.writerow([r.service, iso_ts(r.start), r.actual, f"{r.forecast:g}", f"{r.low:g}", f"{r.high:g}"])
    path.write_text(buf.getvalue(), encoding="utf-8")
