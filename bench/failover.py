"""Failover time of hubs sharing one PostgreSQL: how long a SIGKILLed hub's sites stay unserved.

Three ``hallgrid hub`` processes claim six sites on a throw-away Mosquitto and
PostgreSQL (the test fixtures' own, ``tests/conftest.py``). Each round kills one
hub with SIGKILL and times, polling every 20 ms: (a) until PostgreSQL has dropped
the dead session's site locks, (b) until the survivors' APIs list every site again.
The killed hub is then started again and the six sites spread back before the
next round (that restart is timed too).

Baseline, from the same run: the static split's best case, where a person moves
the sites by restarting a hub: a ``hallgrid hub --sites ...`` process's start until
its API lists its sites (not counting the time to notice and edit the lists).

Run: .venv/bin/python bench/failover.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import Broker, PostgresCluster, free_port  # noqa: E402
from hub.cluster.claims import SITE_SPACE  # noqa: E402
from test_hub_site import HALL_YAML  # noqa: E402

SITES = [f"hall-{i}" for i in range(1, 7)]


def sites_of(port: int) -> list[str]:
    try:
        return [s["id"] for s in httpx.get(f"http://127.0.0.1:{port}/api/sites", timeout=1).json()]
    except httpx.HTTPError:
        return []


def start(files, broker, db, port, log, only=None) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from hub.cli import main; main()", "hub", "--no-auth", "--mqtt", broker.url,
           "--db", db, "--http", f"127.0.0.1:{port}", *(["--sites", only] if only else [])]
    for f in files:
        cmd += ["--site", str(f)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def until(pred, timeout=60.0, step=0.02) -> float:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise RuntimeError("timed out")
        time.sleep(step)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hallgrid-failover-"))
    broker, pg = Broker(work), PostgresCluster()
    broker.start()
    pg.start()
    pg.execute("CREATE DATABASE bench")
    db = pg.url("bench")
    files = []
    for sid in SITES:
        f = work / f"{sid}.yaml"
        f.write_text(HALL_YAML.replace("id: hall-1", f"id: {sid}", 1))
        files.append(f)
    log = open(work / "hubs.log", "w")
    engine = sa.create_engine(db)
    ports = [free_port() for _ in range(3)]
    procs = [start(files, broker, db, p, log) for p in ports]
    lock_s, served_s, rejoin_s, cold_s = [], [], [], []

    def locks() -> int:
        with engine.connect() as c:
            return c.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                                     "AND classid = :s"), {"s": SITE_SPACE}).scalar_one()

    def layout(live) -> list[str]:
        return sorted(s for i in live for s in sites_of(ports[i]))

    def even() -> bool:
        return sorted(len(sites_of(p)) for p in ports) == [2, 2, 2] and layout(range(3)) == SITES

    try:
        until(even, timeout=120)
        for r in range(args.rounds):
            victim = r % 3
            survivors = [i for i in range(3) if i != victim]
            mine = len(sites_of(ports[victim]))
            procs[victim].send_signal(signal.SIGKILL)
            t0 = time.monotonic()
            until(lambda: locks() == 6 - mine, step=0.005)
            lock_s.append(time.monotonic() - t0)
            until(lambda: layout(survivors) == SITES, step=0.02)
            served_s.append(time.monotonic() - t0)
            procs[victim].wait()
            procs[victim] = start(files, broker, db, ports[victim], log)
            rejoin_s.append(until(even, timeout=120))
        for p in procs:
            p.terminate()
            p.wait(20)
        procs = []
        # baseline: the static split, a hub restarted with its --sites list (cold start to serving)
        for r in range(args.rounds):
            port = free_port()
            t0 = time.monotonic()
            p = start(files, broker, db, port, log, only="hall-1,hall-2")
            until(lambda: sorted(sites_of(port)) == ["hall-1", "hall-2"], timeout=120)
            cold_s.append(time.monotonic() - t0)
            p.terminate()
            p.wait(20)
    finally:
        for p in procs:
            p.kill()
        log.close()
        engine.dispose()
        broker.stop()
        pg.stop()

    def fmt(xs):
        return f"median {statistics.median(xs):.2f} s, max {max(xs):.2f} s (n={len(xs)})"

    print(f"SIGKILL -> site locks free in PostgreSQL:      {fmt(lock_s)}")
    print(f"SIGKILL -> every site served by the survivors: {fmt(served_s)}")
    print(f"killed hub restarted -> 2/2/2 split again:     {fmt(rejoin_s)}")
    print(f"baseline, static split: hub start -> serving:  {fmt(cold_s)}")


if __name__ == "__main__":
    main()
