"""Issue 13, HTTP side, against a real `hallgrid hub` process (uvicorn on a free port, real Mosquitto, a real
SQLite file): body limits, ticket validation, roles, cookies, logout, SSE streams, the lock during an import
and a /series query, and a storage failure that must leave memory as it was. Each test also checks that the
hub went on serving good input."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from conftest import REPO, free_port
from edge.contract import iso_ts
from hub.access import hash_password
from hub.tickets import tickets_topic

from test_hub_scenario import Edge, wait_until
from test_hub_site import HALL_YAML

DUTY_TOKEN = "duty-token-0123456789abcdef"
VIEWER_TOKEN = "viewer-token-0123456789abc"
FEED_TOKEN = "feed-token-0123456789abcdef"
PASSWORD = "correct horse battery"
DUTY = {"authorization": f"Bearer {DUTY_TOKEN}"}
VIEWER = {"authorization": f"Bearer {VIEWER_TOKEN}"}
FEED = {"authorization": f"Bearer {FEED_TOKEN}"}
TICKETS = "/api/sites/hall-1/tickets"


def site_text() -> str:
    users = (f"access:\n  users:\n"
             f"    - {{name: li, role: duty_manager, password_hash: \"{hash_password(PASSWORD, n=2 ** 10)}\"}}\n"
             f"    - {{name: duty-api, role: duty_manager, token: {DUTY_TOKEN}}}\n"
             f"    - {{name: wall, role: viewer, token: {VIEWER_TOKEN}}}\n")
    return HALL_YAML + users


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class HubProcess:
    """`hallgrid hub` as an operator runs it, with a duty manager, a viewer and a ticket-feed token."""

    def __init__(self, broker, tmp_path: Path):
        self.site = tmp_path / "hall.yaml"
        self.site.write_text(site_text())
        self.db = tmp_path / "hub.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.broker = broker
        self.log_path = tmp_path / "hub.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "HALLGRID_TICKET_TOKEN": FEED_TOKEN}
        env.pop("HALLGRID_USERS", None)
        env.pop("HALLGRID_TOKEN", None)
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from hub.cli import main; main()", "hub", "--site", str(self.site),
             "--mqtt", self.broker.url, "--db", f"sqlite:///{self.db}", "--http", f"127.0.0.1:{self.port}"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self.up, timeout=60, what=f"the hub (log: {self.log_path})")

    def up(self) -> bool:
        assert self.proc.poll() is None, self.log_path.read_text()
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200     # subscribed: nothing is lost
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def client(self, headers: dict | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers or {}, timeout=30)

    def serves_good_input(self, ticket: str) -> None:
        """A good ticket is accepted and shows in the queue: the hub is still doing its job."""
        with self.client(DUTY) as c:
            r = c.post(TICKETS, json={"event": "issued", "ticket": ticket, "service": "billing"})
            assert r.status_code == 202, r.text
            billing = next(q for q in c.get("/api/sites/hall-1/queues").json() if q["service"] == "billing")
            assert billing["waiting_tickets"] >= 1


@pytest.fixture
def hub(broker, tmp_path):
    h = HubProcess(broker, tmp_path)
    h.start()
    yield h
    h.stop()


def test_oversized_bodies_are_refused_before_they_are_read(hub):
    with hub.client(DUTY) as c:
        c.get("/api/sites")                                  # a warm connection, as a ticket system keeps
        body = json.dumps({"event": "issued", "ticket": "x" * 2_000_000, "service": "billing"}).encode()
        before = rss_kib(hub.proc.pid)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            r = c.post(TICKETS, content=body, headers={"content-type": "application/json"})
            times.append(time.perf_counter() - t0)
            assert r.status_code == 413 and "limit of 16384 bytes" in r.json()["detail"]
        print(f"2 MB ticket body -> 413 in {min(times) * 1000:.1f} ms (best of 3; "
              f"{', '.join(f'{t * 1000:.1f}' for t in times)} ms)")
        assert min(times) < 0.050
        # the same without a Content-Length (chunked): counted as it arrives, refused past the limit
        r = c.post(TICKETS, content=(body[i:i + 65536] for i in range(0, len(body), 65536)),
                   headers={"content-type": "application/json"})
        assert r.status_code == 413

    def hundred_mb():
        chunk = b"name=li&password=" + b"x" * (1024 * 1024 - 17)
        for _ in range(100):
            yield chunk
            chunk = b"x" * (1024 * 1024)

    for headers in ({"content-length": str(100 * 1024 * 1024)}, {}):      # declared, then chunked
        with hub.client({**headers, "content-type": "application/x-www-form-urlencoded"}) as anon:
            t0 = time.perf_counter()
            r = anon.post("/login", content=hundred_mb())
            print(f"100 MB unauthenticated POST /login ({'declared' if headers else 'chunked'}) -> "
                  f"{r.status_code} after {time.perf_counter() - t0:.2f} s (client sending included)")
            assert r.status_code == 413
    grown = (rss_kib(hub.proc.pid) - before) / 1024
    print(f"hub RSS: {before / 1024:.0f} MiB before, grew {grown:.1f} MiB over 3x2 MB + 2 MB + 2x100 MB bodies")
    assert grown < 20
    with hub.client(DUTY) as c:
        assert not [t for t in c.get("/api/sites/hall-1/queues").json() if t["waiting_tickets"]]   # nothing stored
    hub.serves_good_input("A001")


BAD_TIMES = [("NaN", "not a time between 1970 and 9999"), ("Infinity", "not a time between 1970 and 9999"),
             ("-Infinity", "not a time between 1970 and 9999"), ("1e20", "not a time between 1970 and 9999"),
             ("1" + "0" * 400, "not a time between 1970 and 9999"), ("-5", "not a time between 1970 and 9999"),
             ('"2026-13-01T00:00:00Z"', "not an ISO 8601"), ('{"a": 1}', "must be epoch seconds or an ISO")]


def test_bad_ticket_times_and_ids_get_422_with_a_reason_never_500(hub, broker):
    with hub.client(DUTY) as c:
        for raw_ts, reason in BAD_TIMES:
            body = '{"event": "issued", "ticket": "B1", "service": "billing", "ts": %s}' % raw_ts
            r = c.post(TICKETS, content=body, headers={"content-type": "application/json"})
            assert r.status_code == 422 and reason in r.json()["detail"], (raw_ts, r.text)
        now = time.time()
        ahead = c.post(TICKETS, json={"event": "counter_open", "counter": "1", "ts": iso_ts(now + 2 * 86400)})
        assert ahead.status_code == 422 and "after its receipt" in ahead.json()["detail"]
        old = c.post(TICKETS, json={"event": "issued", "ticket": "B2", "service": "billing",
                                    "ts": iso_ts(now - 3 * 86400)})
        assert old.status_code == 422 and "before its receipt" in old.json()["detail"]
        bad_ids = [('"\\ud800"', "unpaired surrogate"), ('"A\\u0000"', "control"), ('"A\\n1"', "control"),
                   ('"' + "7" * 65 + '"', "at most 64"), ("1" * 70, "longer than 64"), ("[1]", "must be a string")]
        for raw_id, reason in bad_ids:
            body = '{"event": "issued", "ticket": %s, "service": "billing"}' % raw_id
            r = c.post(TICKETS, content=body, headers={"content-type": "application/json"})
            assert r.status_code == 422 and reason in r.json()["detail"], (raw_id, r.text)
        queues = c.get("/api/sites/hall-1/queues").json()
        assert all(q["waiting_tickets"] == 0 and q["open_counters"] == [] for q in queues)   # memory unchanged
        stats = c.get("/api/stats").json()["counters"]
        assert stats["ticket_rejected"] == len(BAD_TIMES) + 2 + len(bad_ids) and "ticket_ok" not in stats
        assert max(len(d["reason"]) for d in c.get("/api/stats").json()["recent_drops"]) < 300   # ids cut short
    # over MQTT: a 30 KB ticket id (under the broker's packet limit, which disconnects a 1 MB publisher:
    # tests/test_broker_security.py) is refused by size, counted and logged, and MQTT ingest goes on
    edge = Edge(broker)
    try:
        edge.raw(tickets_topic("hall-1"), json.dumps({"event": "issued", "ticket": "x" * 30_000,
                                                      "service": "billing"}), client=edge.tickets)
        edge.ticket(time.time(), "issued", ticket="M1", service="billing")
        with hub.client(DUTY) as c:
            wait_until(lambda: c.get("/api/stats").json()["counters"].get("ticket_ok") == 1, timeout=20,
                       what="the good MQTT ticket")
            drops = c.get("/api/stats").json()["recent_drops"]
            assert any("payload is 300" in d["reason"] and "at most 16384" in d["reason"] for d in drops)
    finally:
        edge.close()
    with sqlite3.connect(hub.db) as db:     # storage agrees with memory: only the good event is stored
        assert db.execute("select ticket from ticket_events").fetchall() == [("M1",)]
    hub.serves_good_input("B100")


def test_a_viewer_only_reads_and_a_ticket_feed_only_writes_tickets(hub):
    csv = "ts,event,ticket,service,counter\n,issued,C1,billing,\n"
    with hub.client(VIEWER) as v, hub.client(FEED) as f, hub.client(DUTY) as d:
        assert v.get("/api/sites/hall-1/queues").status_code == 200
        for r in (v.post(TICKETS, json={"event": "issued", "ticket": "V1", "service": "billing"}),
                  v.post(TICKETS, json={"event": "counter_close", "counter": "1"}),
                  v.post(TICKETS + ".csv", content=csv)):
            assert r.status_code == 403 and "wall is a viewer" in r.json()["detail"], r.text
        assert f.post(TICKETS, json={"event": "counter_open", "counter": "1"}).status_code == 202
        assert f.post(TICKETS + ".csv", content=csv).json()["accepted"] == 1
        for path in ("/api/sites", "/api/sites/hall-1/queues", "/api/alerts", "/api/stream", "/board"):
            assert f.get(path).status_code == 403, path                 # the feed reads nothing of the hall
        assert f.get("/healthz").status_code == 200
        assert d.post(TICKETS, json={"event": "issued", "ticket": "D1", "service": "newline"}).status_code == 202
        # the role is checked before the alert is looked up: the viewer is refused, the duty manager told
        assert v.post("/api/alerts/nope/acknowledge", json={"who": "x"}).status_code == 403
        assert d.post("/api/alerts/nope/acknowledge", json={"who": "x"}).status_code == 404
        stats = d.get("/api/stats").json()["counters"]
        assert stats["ticket_ok"] == 3                                 # the viewer's three were never applied
    hub.serves_good_input("C2")


def test_non_ascii_cookies_never_give_500(hub):
    bad = ["hallgrid_session=\u00e9t\u00e9".encode("utf-8"), b"hallgrid_session=\xff\xfe.\x80",
           "hallgrid_session=\u00e9.\u00e9".encode("latin-1"), b"hallgrid_session=W10.x; other=\xc3",
           b"hallgrid_session=" + b"a" * 300 + b"." + b"b" * 43]
    with httpx.Client(base_url=hub.url, timeout=10) as c:
        for cookie in bad:
            for path in ("/healthz", "/login", "/api/sites", "/board", "/api/stream"):
                r = c.get(path, headers=[(b"cookie", cookie)], follow_redirects=False)
                assert r.status_code in (200, 303, 401), (cookie, path, r.status_code)
            assert c.get("/healthz", headers=[(b"cookie", cookie)]).json()["ok"] is True
    hub.serves_good_input("E1")


def test_logout_revokes_the_cookie_also_after_a_restart(hub):
    def login() -> str:
        with httpx.Client(base_url=hub.url, timeout=30) as c:
            r = c.post("/login", data={"name": "li", "password": PASSWORD}, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/board"
            return r.cookies["hallgrid_session"]

    def me(cookie: str) -> int:
        with httpx.Client(base_url=hub.url, timeout=10, cookies={"hallgrid_session": cookie}) as c:
            return c.get("/api/me").status_code

    kept, other = login(), login()
    assert me(kept) == 200 and me(other) == 200
    with httpx.Client(base_url=hub.url, timeout=10, cookies={"hallgrid_session": kept}) as c:
        assert c.post("/logout", follow_redirects=False).status_code == 303
    assert me(kept) == 401                   # a copy of the cookie kept by someone else is refused too
    assert me(other) == 200                  # another session of the same user is not affected
    hub.stop()
    hub.start()
    assert me(kept) == 401 and me(other) == 200
    hub.serves_good_input("F1")


def test_a_chat_robot_link_survives_the_login_and_foreign_targets_are_refused(hub):
    """The link a WeCom/DingTalk message carries (/board?site=..&alert=..) opens that alert after the login,
    also after a wrong password first; a `next` pointing off the hub lands on the board instead."""
    link = "/board?site=hall-1&alert=a-42"
    with httpx.Client(base_url=hub.url, timeout=30) as c:
        r = c.get(link, follow_redirects=False)
        assert r.status_code == 303
        login_page = r.headers["location"]
        assert login_page.startswith("/login?") and parse_qs(urlsplit(login_page).query)["next"] == [link]
        r = c.post("/login", data={"name": "li", "password": "wrong", "next": link}, follow_redirects=False)
        assert r.status_code == 303 and parse_qs(urlsplit(r.headers["location"]).query)["next"] == [link]
        r = c.post("/login", data={"name": "li", "password": PASSWORD, "next": link}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == link
        for foreign in ("//evil.example/board", "https://evil.example/", "/\\evil.example", "/login?next=//x"):
            r = c.post("/login", data={"name": "li", "password": PASSWORD, "next": foreign}, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/board", foreign


def test_event_streams_are_limited_per_user(hub):
    with ExitStack() as stack, hub.client(VIEWER) as c:
        for _ in range(5):
            r = stack.enter_context(c.stream("GET", "/api/stream"))
            assert r.status_code == 200
        refused = c.get("/api/stream")
        assert refused.status_code == 429 and "5 event streams" in refused.json()["detail"]
        with hub.client(DUTY) as d, d.stream("GET", "/api/stream") as other:
            assert other.status_code == 200          # another user has streams of their own
        stack.close()                                # closing streams gives their slots back

        def opens() -> bool:
            with c.stream("GET", "/api/stream") as again:
                return again.status_code == 200
        wait_until(opens, timeout=10, what="a stream slot after the others closed")
    hub.serves_good_input("G1")


def _poll_latencies(hub, stop: threading.Event, out: list[float]) -> None:
    """Latency of a request that needs the hub's lock (the queue view), over and over."""
    with hub.client(VIEWER) as c:
        while not stop.is_set():
            t0 = time.perf_counter()
            assert c.get("/api/sites/hall-1/queues").status_code == 200
            out.append(time.perf_counter() - t0)


def _while_polling(hub, work) -> tuple[float, list[float]]:
    stop, lat = threading.Event(), []
    poller = threading.Thread(target=_poll_latencies, args=(hub, stop, lat))
    poller.start()
    wait_until(lambda: len(lat) >= 3, timeout=20, what="the poller")
    lat.clear()
    t0 = time.perf_counter()
    try:
        work()
    finally:
        took = time.perf_counter() - t0
        stop.set()
        poller.join(30)
    return took, lat


def test_a_large_csv_import_and_a_day_of_series_do_not_stall_the_hub(hub):
    now = time.time()
    rows = ["ts,event,ticket,service,counter"]
    for i in range(3500):                                  # 460 KB: a busy day of tickets
        t = now - 80000 + i * 20
        rows += [f"{iso_ts(t)},issued,T{i:05d},billing,", f"{iso_ts(t + 300)},called,T{i:05d},,1",
                 f"{iso_ts(t + 500)},served,T{i:05d},,1"]
    text = "\n".join(rows) + "\n"
    assert len(text) > 450_000
    result = {}

    def import_log():
        with hub.client(DUTY) as c:
            result.update(c.post(TICKETS + ".csv", content=text, timeout=120).json())

    took, lat = _while_polling(hub, import_log)
    print(f"CSV import of {len(text) / 1000:.0f} KB ({result.get('accepted')} events): {took:.2f} s; "
          f"queue view during it: {len(lat)} requests, max {max(lat) * 1000:.0f} ms")
    assert result["accepted"] == 10500 and result["rejected_total"] == 0
    # before: the whole import under the lock (3.7 s for this log on the dev box), so the view waited as long;
    # now the lock is held a batch at a time (measured directly below); what is left is the parser's share of
    # the interpreter on a loaded 2-core box
    assert len(lat) >= 3 and max(lat) < 2.0

    # a day of stored counts (3 zones every second), then the board's one-day sparkline query
    hub.stop()
    with sqlite3.connect(hub.db) as db:
        db.executemany("insert into occupancy (site, camera, zone, ts, count, raw, seq) values (?,?,?,?,?,?,?)",
                       [("hall-1", "cam1", z, now - 86000 + s, s % 7, s % 7, s)
                        for s in range(86000) for z in ("entrance", "kiosk", "waiting-a")])
    hub.start()
    series = {}

    def one_day():
        with hub.client(VIEWER) as c:
            series.update(c.get("/api/sites/hall-1/series", params={"minutes": 1440, "step_s": 60},
                                timeout=120).json())

    took, lat = _while_polling(hub, one_day)
    print(f"/series over one day ({3 * 86000} rows): {took:.2f} s; queue view during it: {len(lat)} requests, "
          f"max {max(lat) * 1000:.0f} ms")
    assert set(series["zones"]) == {"entrance", "kiosk", "waiting-a"}
    assert took > 0.3, "the query must take long enough to show whether it holds the lock"
    assert max(lat) < 0.5 * took and max(lat) < 1.0
    hub.serves_good_input("H1")


class TimedLock:
    """The hub's lock, recording how long each hold lasts."""

    def __init__(self, lock):
        self.lock, self.holds, self._t = lock, [], []

    def __enter__(self):
        self.lock.acquire()
        self._t.append(time.perf_counter())

    def __exit__(self, *exc):
        self.holds.append(time.perf_counter() - self._t.pop())
        self.lock.release()


def test_a_csv_import_holds_the_lock_one_batch_at_a_time(tmp_path):
    from fastapi.testclient import TestClient

    from hub.api import create_app
    from hub.service import CSV_BATCH, Hub
    from hub.storage import Storage
    from test_hub_site import hall_site

    h = Hub([hall_site()], Storage(f"sqlite:///{tmp_path / 'hub.db'}"))
    h.lock = TimedLock(h.lock)
    now = time.time()
    rows = ["ts,event,ticket,service,counter"] + [f"{iso_ts(now - 80000 + i * 8)},issued,T{i:05d},billing,"
                                                 for i in range(10000)]
    # the test process carries the heap of every earlier test (models, frames): frozen, so that a full garbage
    # collection over it (hundreds of ms in a whole-suite run) is not counted as the hub's lock hold
    gc.freeze()
    try:
        with TestClient(create_app(h)) as c:
            t0 = time.perf_counter()
            assert c.post(TICKETS + ".csv", content="\n".join(rows)).json()["accepted"] == 10000
            took = time.perf_counter() - t0
    finally:
        gc.unfreeze()
    print(f"CSV import of 10,000 events: {took:.2f} s, {len(h.lock.holds)} lock holds, longest "
          f"{max(h.lock.holds) * 1000:.0f} ms")
    assert len(h.lock.holds) >= 10000 // CSV_BATCH and max(h.lock.holds) < 0.25 * took


def test_a_storage_failure_leaves_memory_as_it_was(hub):
    hub.stop()
    with sqlite3.connect(hub.db) as db:            # a real SQLite refusal (as a full disk or a lock would)
        db.execute("create trigger refuse before insert on ticket_events when new.ticket like 'FAIL%' "
                   "begin select raise(abort, 'disk says no'); end")
    hub.start()
    with hub.client(DUTY) as c:
        r = c.post(TICKETS, json={"event": "issued", "ticket": "FAIL1", "service": "billing"})
        assert r.status_code == 503 and "nothing was changed" in r.json()["detail"]
        csv = "ts,event,ticket,service\n,issued,OK1,billing\n,issued,FAIL2,billing\n"
        assert c.post(TICKETS + ".csv", content=csv).status_code == 503      # one batch: none of it stored
        queues = c.get("/api/sites/hall-1/queues").json()
        assert all(q["waiting_tickets"] == 0 for q in queues)                       # memory agrees with storage
    with sqlite3.connect(hub.db) as db:
        assert db.execute("select count(*) from ticket_events").fetchone() == (0,)
    hub.serves_good_input("OK2")
    hub.stop()
    hub.start()                                    # and a restart rebuilds the same state from storage
    with hub.client(DUTY) as c:
        billing = next(q for q in c.get("/api/sites/hall-1/queues").json() if q["service"] == "billing")
        assert billing["waiting_tickets"] == 1


def test_hallgrid_hub_refuses_the_demo_users(tmp_path):
    demo = REPO / "calibration" / "examples" / "demo-hall.yaml"
    r = subprocess.run([sys.executable, "-c", "from hub.cli import main; main()", "hub", "--site", str(demo),
                        "--db", f"sqlite:///{tmp_path / 'hub.db'}", "--http", f"127.0.0.1:{free_port()}",
                        "--mqtt", "mqtt://127.0.0.1:1"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "user 'duty' has the demo's password hash" in r.stderr and "hash_password" in r.stderr
