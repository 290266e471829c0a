"""How long a CSV ticket import keeps the hub's lock, and how long a request that needs the lock waits.

A generated day of tickets (``--tickets`` issued/called/served triples, about 44 bytes a row) is imported
through ``Hub.import_csv`` into a real SQLite file while another thread asks for the queue view (which
takes the lock) over and over. Baseline from the same run: the same import with the whole log as one
batch (``CSV_BATCH`` = every event), i.e. the lock held for the whole import as before batching.

    .venv/bin/python bench/hub_import_lock.py [--tickets 3500]
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import click

import hub.service
from calibration.site import parse_site
from edge.contract import iso_ts
from hub.service import Hub
from hub.storage import Storage

SITE = """
id: bench-hall
name: Bench hall
cameras:
  - {id: cam1, source: rtsp://cam1, zones: [{id: waiting, name: Waiting, type: waiting, grid_cell: A,
     capacity: 20, polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]}]}
services: [{id: billing, waiting_zones: [waiting]}]
counters: [{id: "1", services: [billing]}]
"""


def log_text(tickets: int, now: float) -> str:
    rows = ["ts,event,ticket,service,counter"]
    for i in range(tickets):
        t = now - 80000 + i * 20
        rows += [f"{iso_ts(t)},issued,T{i:05d},billing,", f"{iso_ts(t + 300)},called,T{i:05d},,1",
                 f"{iso_ts(t + 500)},served,T{i:05d},,1"]
    return "\n".join(rows) + "\n"


def run(folder: Path, text: str, batch: int) -> tuple[float, float, int]:
    """Import ``text``; returns (seconds, longest wait of a queue view during it, views answered)."""
    h = Hub([parse_site(SITE)], Storage(f"sqlite:///{folder / f'hub-{batch}.db'}"))
    stop, waits = threading.Event(), []

    def view() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            with h.lock:
                h.sites["bench-hall"].queues(h.clock.now())
            waits.append(time.perf_counter() - t0)
            time.sleep(0.002)

    hub.service.CSV_BATCH = batch
    viewer = threading.Thread(target=view)
    viewer.start()
    t0 = time.perf_counter()
    h.import_csv("bench-hall", text)
    took = time.perf_counter() - t0
    stop.set()
    viewer.join()
    return took, max(waits), len(waits)


@click.command()
@click.option("--tickets", default=3500, show_default=True, help="Tickets in the log (3 events each).")
def main(tickets: int) -> None:
    text = log_text(tickets, time.time())
    events = 3 * tickets
    batched = hub.service.CSV_BATCH
    with tempfile.TemporaryDirectory() as d:
        for name, batch in (("one hold (baseline)", events), (f"batches of {batched}", batched)):
            took, longest, n = run(Path(d), text, batch)
            print(f"{name:>20}: {len(text) / 1000:.0f} KB, {events} events in {took:.2f} s; "
                  f"queue view waited at most {longest * 1000:.0f} ms ({n} views)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
