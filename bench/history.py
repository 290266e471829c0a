"""History queries at scale: ``plan`` and ``review`` on a year of generated history for 50 sites, and the hub's
forecast refresh for 100 sites.

The history is made by the demo's ticket simulator (``hub/simulator.py``, seeded) driven through
the live hub (``Hub`` with a ``ManualClock``, so the stored alerts are the ones the rules really
raise): ``--templates`` distinct days of a hall, each simulated once, then written for every site
and day of the year with the times shifted by whole days and the load varied per weekday, in bulk
inserts straight into the database (SQLite file, and PostgreSQL with ``--pg URL``). 50 more sites
get the five weeks of history the forecast reads, for the 100-site refresh.

Figures (one run, machine shared with other work): median of ``--repeat`` runs; as the reference
from the same run, the time to read one site's stored year of ticket events with a plain SELECT. The
first refresh of the day is timed once, wall and CPU (the CPU time of all threads moves less with other
work's load; the refresh reads two sites' histories at once).

Run: .venv/bin/python bench/history.py [--sites 50] [--days 365] [--load 1.0] [--pg postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.site import RuleSettings, load_site  # noqa: E402
from edge.clock import ManualClock  # noqa: E402

from hub.simulator import ElasticCounter, Scenario, ServiceLoad, TicketSimulator  # noqa: E402
from hub.tickets import from_dict  # noqa: E402

SITE_FILE = Path(__file__).resolve().parents[1] / "calibration" / "examples" / "demo-hall.yaml"
OPEN_H, CLOSE_H = 9, 17


def hall_day(load: float = 1.0) -> Scenario:
    """A hall's working day (8 h, real seconds): billing peaks at midday and outgrows counter 1; ``load``
    scales the arrivals (1.0: about 340 tickets a day)."""
    return Scenario(cycle_s=(CLOSE_H - OPEN_H) * 3600.0,
                    loads=(ServiceLoad("billing", 0.9 * load, 150.0, "A"), ServiceLoad("newline", 0.25 * load, 240.0, "B"),
                           ServiceLoad("vip", 0.05 * load, 300.0, "V", base_share=0.2)),
                    always_open={"1": ("billing",), "3": ("newline",)},
                    elastic=(ElasticCounter("2", "billing", 4, 600.0), ElasticCounter("5", "vip", 1, 300.0)))


def simulate_templates(site, n: int, seed: int, load: float):
    """``n`` days of events and alerts of the live hub, as offsets from the day's local midnight."""
    from hub.service import Hub
    from hub.storage import Storage

    tz = ZoneInfo(site.timezone)
    out = []
    for i in range(n):
        t0 = datetime(2026, 1, 5 + i, OPEN_H, tzinfo=tz).timestamp()
        midnight = datetime(2026, 1, 5 + i, tzinfo=tz).timestamp()
        clock = ManualClock(t0)
        hub = Hub([site], Storage("sqlite://"), clock=clock, evaluate_on_message=False)
        events = []

        def send(d, hub=hub, events=events):
            e = from_dict(d, clock.now())
            events.append(e)
            hub.ingest_ticket(site.id, e)

        sim = TicketSimulator(hall_day(load), clock, send, seed=seed + i)
        t = t0
        while t < t0 + (CLOSE_H - OPEN_H) * 3600:
            clock.set(t)
            sim.step()
            if int(t - t0) % 30 == 0:
                hub.tick(t)
            t += 10.0
        for c in list(sim.desks):
            clock.set(t)
            send({"event": "counter_close", "counter": c, "ts": t})
        alerts = hub.alerts(site.id, active_only=False)
        hub.stop()
        out.append(([(e.ts - midnight, e.kind, e.ticket, e.to_dict()) for e in events],
                    [(a.to_dict(), midnight) for a in alerts]))
    return out


def fill(url: str, site_ids: list[str], days: list[date], templates, tz: ZoneInfo) -> int:
    """Bulk-insert every site's days (template ``(site + day) % n``), returns the ticket rows written."""
    from sqlalchemy import insert

    from edge.contract import iso_ts, parse_ts
    from hub.storage import Storage, alerts, ticket_events

    storage = Storage(url)
    rows = 0
    for si, sid in enumerate(site_ids):
        tickets, alert_rows = [], []
        for di, day in enumerate(days):
            events, day_alerts = templates[(si + di) % len(templates)]
            midnight = datetime.combine(day, datetime.min.time(), tz).timestamp()
            keep = 1.0 if day.weekday() < 4 else 0.8          # Fridays lighter: a weekday profile to learn
            for k, (off, kind, ticket, event) in enumerate(events):
                if kind == "issued" and keep < 1 and (k * 7919) % 10 >= keep * 10:
                    continue
                ts = midnight + off
                tickets.append({"site": sid, "kind": kind, "ticket": ticket, "ts": ts, "received_at": ts,
                                "event": {**event, "ts": iso_ts(ts), "site": sid}, "service": event.get("service")})
            for a, m0 in day_alerts:
                shift = midnight - m0
                moved = {k: (iso_ts(parse_ts(v) + shift) if k.endswith("_at") and v else v) for k, v in a.items()}
                moved.update(id=f"{a['id']}-{sid}-{day.isoformat()}", site=sid)
                alert_rows.append({"id": moved["id"], "site": sid, "key": a["key"], "state": a["state"],
                                   "raised_at": parse_ts(moved["raised_at"]),
                                   "resolved_at": parse_ts(moved["resolved_at"]) if moved["resolved_at"] else None,
                                   "alert": moved})
        with storage.engine.begin() as conn:
            for i in range(0, len(tickets), 20000):
                conn.execute(insert(ticket_events), tickets[i:i + 20000])
            if alert_rows:
                conn.execute(insert(alerts), alert_rows)
        rows += len(tickets)
    storage.close()
    return rows


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(url: str, site, site_ids: list[str], refresh_ids: list[str], day: date, repeat: int) -> dict:
    from sqlalchemy import select

    from hub.planning.lookahead import Lookahead
    from hub.planning.plan import make_plan
    from hub.review.summary import review
    from hub.storage import Storage, ticket_events

    tz = ZoneInfo(site.timezone)
    storage = Storage(url)
    noon = datetime.combine(day, datetime.min.time(), tz).timestamp() + 12 * 3600
    one = site.model_copy(update={"id": site_ids[0]})
    start = datetime.combine(day - timedelta(days=365), datetime.min.time(), tz).timestamp()

    def read_year():
        with storage.engine.connect() as conn:
            return conn.execute(select(ticket_events.c.ts, ticket_events.c.event).where(
                ticket_events.c.site == one.id, ticket_events.c.ts >= start)).all()

    out = {"read_year_of_one_site_s": timed(read_year, repeat), "rows_one_site": len(read_year()),
           "plan_s": timed(lambda: make_plan(one, storage, day, noon), repeat),
           "review_30d_s": timed(lambda: review(storage, one.id, noon - 30 * 86400, noon), repeat),
           "review_year_s": timed(lambda: review(storage, one.id, start, noon), repeat)}

    class FakeHub:    # what Lookahead reads of a hub: sites with their ticket book, storage, lock, clock
        pass

    from threading import RLock

    from hub.fusion import SiteState
    hub = FakeHub()
    hub.sites = {sid: SiteState(site.model_copy(update={"id": sid})) for sid in refresh_ids}
    hub.storage, hub.lock, hub.clock = storage, RLock(), ManualClock(noon)
    la = Lookahead(hub)
    t, cpu = time.perf_counter(), time.process_time()
    la.refresh(noon)
    out["refresh_cold_s"] = time.perf_counter() - t     # the day's first: reads each site's history
    out["refresh_cold_cpu_s"] = time.process_time() - cpu    # all threads; less sensitive to other work's load
    out["refresh_warm_s"] = timed(lambda: la.refresh(noon + 300), repeat)
    out["refresh_sites"] = len(refresh_ids)
    storage.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--refresh-sites", type=int, default=100)
    ap.add_argument("--templates", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--load", type=float, default=1.0, help="Arrivals scale (1.0: about 340 tickets a day).")
    ap.add_argument("--pg", help="Also a PostgreSQL database (an empty one: SQLAlchemy URL).")
    ap.add_argument("--db", help="SQLite file (default: a temporary one).")
    args = ap.parse_args()
    # the demo hall's rules are in demo seconds (alerts within minutes): a real hall's defaults here
    site = load_site(SITE_FILE).model_copy(update={"rules": RuleSettings()})
    tz = ZoneInfo(site.timezone)
    t = time.perf_counter()
    templates = simulate_templates(site, args.templates, seed=11, load=args.load)
    print(f"simulated {args.templates} template days through the hub in {time.perf_counter() - t:.1f} s "
          f"({sum(len(e) for e, _ in templates) / args.templates:.0f} events, "
          f"{sum(len(a) for _, a in templates) / args.templates:.1f} alerts per day)")
    today = date(2026, 11, 30)
    year = [today - timedelta(days=i) for i in range(args.days, 0, -1) if (today - timedelta(days=i)).weekday() < 5]
    recent = [d for d in year if d >= today - timedelta(days=42)]
    year_ids = [f"hall-{i:03d}" for i in range(args.sites)]
    extra_ids = [f"hall-{i:03d}" for i in range(args.sites, max(args.sites, args.refresh_sites))]
    with tempfile.TemporaryDirectory() as tmp:
        urls = [("sqlite", args.db and f"sqlite:///{args.db}" or f"sqlite:///{tmp}/history.db")]
        if args.pg:
            urls.append(("postgresql", args.pg))
        for name, url in urls:
            t = time.perf_counter()
            rows = fill(url, year_ids, year, templates, tz) + fill(url, extra_ids, recent, templates, tz)
            print(f"{name}: {rows} ticket rows for {len(year_ids)} sites x {len(year)} working days "
                  f"(+{len(extra_ids)} sites x {len(recent)} days) written in {time.perf_counter() - t:.0f} s")
            m = measure(url, site, year_ids, year_ids + extra_ids, today, args.repeat)
            print(f"{name}: plan one site and day {m['plan_s']:.2f} s; review 30 days {m['review_30d_s']:.2f} s, "
                  f"a year {m['review_year_s']:.2f} s; forecast refresh {m['refresh_sites']} sites: "
                  f"first of the day {m['refresh_cold_s']:.2f} s ({m['refresh_cold_cpu_s']:.2f} s CPU), then "
                  f"{m['refresh_warm_s']:.2f} s; reference: "
                  f"SELECT of one site's year ({m['rows_one_site']} rows) {m['read_year_of_one_site_s']:.2f} s")


if __name__ == "__main__":
    main()
