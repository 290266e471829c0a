"""Cost of the ``forecast_shortfall`` rule per site and tick on the shared call-centre data.

Plays 1 Feb to 3 Feb 12:00 (local) of ``../shared/queue-data/anonymous-bank-1999-02`` through a live
``Hub`` (SQLite in a temporary folder, ``ManualClock``), refreshes the look-ahead once, then times the
rule (and its effective-counters sweep, and a whole ``hub.tick``) at 20 successive minutes. The first
call includes scipy's import and the uncached waiting-time tails; the figures after it are per tick.

    .venv/bin/python bench/shortfall_tick.py [--data ../shared/queue-data/anonymous-bank-1999-02]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from calibration.site import load_site
from edge.clock import ManualClock
from hub.planning.capacity import effective_counters
from hub.planning.evaluate import read_logs
from hub.planning.shortfall import forecast_shortfall
from hub.service import Hub
from hub.storage import Storage


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).parent.parent.parent / "shared/queue-data/anonymous-bank-1999-02"))
    args = ap.parse_args()
    data = Path(args.data)
    site = load_site(data / "anonymous-bank.yaml")
    events = read_logs([str(data / f"tickets-1999-02-0{d}.csv") for d in (1, 2, 3)])
    stop = datetime(1999, 2, 3, 12, 0, tzinfo=ZoneInfo(site.timezone)).timestamp()
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock(events[0].ts)
        hub = Hub([site], Storage(f"sqlite:///{tmp}/bench.db"), clock=clock, evaluate_on_message=False)
        try:
            for e in events:
                if e.ts > stop:
                    break
                clock.set(e.ts)
                hub.ingest_ticket(site.id, e)
            clock.set(stop)
            hub.forecaster.refresh(stop)
            st = hub.sites[site.id]
            t = time.perf_counter()
            forecast_shortfall(st, stop)
            print(f"first call: {(time.perf_counter() - t) * 1000:.0f} ms ({len(st.book.tickets)} visits in the book)")
            services = tuple(s.id for s in site.services)
            for name, fn in (("forecast_shortfall", lambda now: forecast_shortfall(st, now)),
                             ("effective_counters", lambda now: effective_counters(list(st.book.tickets.values()),
                                                                                   services, now)),
                             ("hub.tick", hub.tick)):
                t = time.perf_counter()
                for i in range(20):
                    fn(stop + 60 * i)
                print(f"{name}: {(time.perf_counter() - t) / 20 * 1000:.1f} ms per tick")
        finally:
            hub.stop()


if __name__ == "__main__":
    main()
