"""Hubs sharing a real PostgreSQL claim the sites among themselves and take over a dead hub's.

In process first (the claiming loop with real advisory locks), then three real
``hallgrid hub`` processes on one Mosquitto serving six sites, one killed with
SIGKILL while tickets keep coming.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select, text

from conftest import REPO, free_port
from edge.clock import ManualClock
from hub.cluster.claims import SITE_SPACE, SiteClaims, site_key
from hub.service import Hub
from hub.storage import Storage, alerts, ticket_events
from hub.tickets import parse, tickets_topic

from test_hub_cluster import api_up
from test_hub_scenario import T0, wait_until
from test_hub_site import HALL_YAML, hall_site

SITES = [f"hall-{i}" for i in range(1, 7)]


def served(claimers) -> list[list[str]]:
    return [sorted(c.hub.sites) for c in claimers]


def test_claims_share_the_sites_and_a_lost_session_hands_them_over(postgres_url):
    sites = [hall_site(sid, min_duration_s=0) for sid in SITES]
    clock = ManualClock(T0)
    seed = Hub([sites[0]], Storage(postgres_url), clock=clock, evaluate_on_message=False)
    seed.ingest_ticket("hall-1", parse({"event": "issued", "ticket": "A1", "service": "billing"}, T0))
    (raised,) = [a for a in seed.tick() if a.key == "long_wait:billing"]     # an open alert in storage
    hubs = [Hub([], Storage(postgres_url), clock=clock, evaluate_on_message=False) for _ in range(3)]
    claimers = [SiteClaims(h, sites, postgres_url, name=f"hub-{i}", interval_s=0.2) for i, h in enumerate(hubs)]
    try:
        claimers[0].start()
        wait_until(lambda: served(claimers)[0] == SITES, what="one hub serving every site")
        for c in claimers[1:]:
            c.start()
        # bounded share: ceil(6 / 3) = 2 each, every site served exactly once
        wait_until(lambda: [len(s) for s in served(claimers)] == [2, 2, 2], timeout=20, what="an even split")
        assert sorted(s for group in served(claimers) for s in group) == SITES
        owner = next(c for c in claimers if "hall-1" in c.hub.sites)
        assert owner.hub.active_keys()["long_wait:billing"] == raised.id           # restored, not raised again
        assert "A1" in owner.hub.sites["hall-1"].book.tickets
        # the session holding hall-1's lock dies (as when its process is killed): the others take its sites
        admin = Storage(postgres_url)
        with admin.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                                     "AND classid = :space AND objid = :key"),
                                {"space": SITE_SPACE, "key": site_key("hall-1")}).scalar_one()
        admin.close()
        others = [c for c in claimers if c is not owner]
        wait_until(lambda: sorted(s for c in others for s in c.hub.sites) == SITES, timeout=20,
                   what="the survivors serving every site")
        new_owner = next(c for c in others if "hall-1" in c.hub.sites)
        assert new_owner.hub.active_keys()["long_wait:billing"] == raised.id
        assert [a.key for a in new_owner.hub.tick() if a.key == "long_wait:billing"] == []   # no second alert
        # the hub that lost its session stopped serving, opened a new one and got a share again
        wait_until(lambda: owner.hub.stats["sites_released"] >= 2, what="the lost hub giving its sites up")
        wait_until(lambda: [len(s) for s in served(claimers)] == [2, 2, 2], timeout=20, what="the split again")
        assert sorted(s for group in served(claimers) for s in group) == SITES
    finally:
        for c in claimers:
            c.stop()
    assert all(not c.hub.sites for c in claimers)        # stopping gives every site up


def ticket(pub, sid: str, name: str) -> None:
    pub.publish(tickets_topic(sid), json.dumps({"event": "issued", "ticket": name, "service": "billing"}),
                qos=1).wait_for_publish(10)


@pytest.mark.parametrize("site_sessions", [False, True], ids=["hub-session", "site-sessions"])
def test_serve_and_release_a_site_at_runtime(broker, db_url, site_sessions):
    """A hub takes a site on and gives it up while running; with a session per site, what is sent while
    nobody serves the site waits in the broker and reaches the next to serve it."""
    hub = Hub([hall_site("hall-1")], Storage(db_url), mqtt_url=broker.url, site_sessions=site_sessions,
              client_id="runtime-sites-test")
    pub = broker.login(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2), "tickets")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        hub.start()
        hub.serve_site(hall_site("hall-2"))
        ticket(pub, "hall-2", "B1")
        wait_until(lambda: "B1" in hub.sites["hall-2"].book.tickets, what="the new site's ticket")
        hub.release_site("hall-2")
        assert sorted(hub.sites) == ["hall-1"]
        ticket(pub, "hall-2", "B2")            # nobody serves hall-2 now
        ticket(pub, "hall-1", "A1")
        wait_until(lambda: "A1" in hub.sites["hall-1"].book.tickets, what="the kept site's ticket")
        assert hub.stats["mqtt_rejected"] == 0          # no longer subscribed: nothing for hall-2 came
        hub.serve_site(hall_site("hall-2"))              # B1 comes back from storage
        assert "B1" in hub.sites["hall-2"].book.tickets
        if site_sessions:
            wait_until(lambda: "B2" in hub.sites["hall-2"].book.tickets, what="the ticket kept by the broker")
        else:
            time.sleep(0.5)
            assert "B2" not in hub.sites["hall-2"].book.tickets     # the hub's session had unsubscribed hall-2
    finally:
        pub.loop_stop()
        pub.disconnect()
        hub.stop()
        hub.storage.close()


def start_hub(site_files, broker, db: str, port: int, log) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from hub.cli import main; main()", "hub", "--no-auth", "--tick", "0.5",
           "--mqtt", broker.url, "--db", db, "--http", f"127.0.0.1:{port}"]
    for f in site_files:
        cmd += ["--site", str(f)]
    return subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


def sites_of(port: int) -> list[str] | None:
    try:
        return sorted(s["id"] for s in httpx.get(f"http://127.0.0.1:{port}/api/sites", timeout=1).json())
    except httpx.HTTPError:
        return None


@pytest.mark.timeout(180)
def test_three_hubs_one_killed_its_sites_served_again(broker, postgres_url, tmp_path):
    files = []
    for sid in SITES:
        f = tmp_path / f"{sid}.yaml"
        f.write_text(HALL_YAML.replace("id: hall-1", f"id: {sid}", 1).replace("min_duration_s: 60", "min_duration_s: 0"))
        files.append(f)
    ports = [free_port() for _ in range(3)]
    logs = [open(tmp_path / f"hub{i}.log", "w") for i in range(3)]
    procs = [start_hub(files, broker, postgres_url, ports[i], logs[i]) for i in range(3)]
    pub = broker.login(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2), "tickets")
    published: Counter[str] = Counter()
    stop_pub = threading.Event()

    def publish(sid: str, ticket: str) -> None:
        pub.publish(tickets_topic(sid), json.dumps({"event": "issued", "ticket": ticket, "service": "billing"}),
                    qos=1).wait_for_publish(10)
        published[sid] += 1

    def keep_publishing() -> None:         # tickets keep coming through the failover
        n = 0
        while not stop_pub.is_set():
            n += 1
            for sid in SITES:
                publish(sid, f"{sid}-{n}")
            stop_pub.wait(0.1)

    def layout(live):
        return {i: sites_of(ports[i]) for i in live}

    try:
        wait_until(lambda: all(api_up(p) for p in ports), timeout=60, what="three hubs' APIs")
        wait_until(lambda: sorted(len(s or []) for s in layout(range(3)).values()) == [2, 2, 2], timeout=60,
                   what="six sites split two per hub")
        assert sorted(s for group in layout(range(3)).values() for s in group) == SITES
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        for sid in SITES:     # no counter open: a waiting billing ticket is a long wait at once, on every site
            publish(sid, f"{sid}-0")

        def long_waits(live) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for i in live:
                for a in httpx.get(f"http://127.0.0.1:{ports[i]}/api/alerts", timeout=2).json():
                    if a["kind"] == "long_wait":
                        out.setdefault(a["site"], []).append(a["id"])
            return out

        wait_until(lambda: len(long_waits(range(3))) == 6, timeout=20, what="a long-wait alert on every site")
        before = long_waits(range(3))
        assert all(len(ids) == 1 for ids in before.values())
        feeder = threading.Thread(target=keep_publishing, daemon=True)
        feeder.start()
        time.sleep(1.5)
        victim = 0
        lost = layout([victim])[victim]
        procs[victim].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        procs[victim].wait(10)
        survivors = [1, 2]

        def all_served() -> bool:
            groups = [s or [] for s in layout(survivors).values()]
            return sorted(s for g in groups for s in g) == SITES

        while not all_served():
            assert time.monotonic() - killed_at < 15, f"sites {lost} not served again: {layout(survivors)}"
            time.sleep(0.05)
        failover_s = time.monotonic() - killed_at
        print(f"\nfailover: sites {lost} served again {failover_s:.2f} s after SIGKILL")
        assert failover_s < 10
        assert sorted(len(s) for s in layout(survivors).values()) == [3, 3]       # ceil(6 / 2)
        time.sleep(1.5)
        stop_pub.set()
        feeder.join(20)

        def queued(i: int, sid: str) -> int:
            q = httpx.get(f"http://127.0.0.1:{ports[i]}/api/sites/{sid}/queues", timeout=2).json()
            return next(s for s in q if s["service"] == "billing")["waiting_tickets"]

        owners = {sid: i for i, group in layout(survivors).items() for sid in group}
        # no ticket lost: every published ticket is in its site's live queue and stored once
        wait_until(lambda: all(queued(owners[sid], sid) == published[sid] for sid in SITES), timeout=20,
                   what=f"every ticket in its queue ({dict(published)})")
        storage = Storage(postgres_url)
        with storage.engine.connect() as conn:
            stored = dict(conn.execute(select(ticket_events.c.site, func.count(func.distinct(ticket_events.c.ticket)))
                                       .group_by(ticket_events.c.site)).all())
            rows = dict(conn.execute(select(ticket_events.c.site, func.count()).group_by(ticket_events.c.site)).all())
            stored_alerts = conn.execute(select(alerts.c.site, alerts.c.id, alerts.c.state)
                                         .where(alerts.c.key == "long_wait:billing")).all()
        storage.close()
        assert stored == dict(published) and rows == dict(published)
        # no alert lost or duplicated: the same one alert per site, open on its new owner
        assert long_waits(survivors) == before
        assert sorted((s, i) for s, i, _ in stored_alerts) == sorted((s, ids[0]) for s, ids in before.items())
        assert all(state != "resolved" for _, _, state in stored_alerts)
        for i in survivors:
            counters = httpx.get(f"http://127.0.0.1:{ports[i]}/api/stats", timeout=2).json()["counters"]
            assert counters.get("mqtt_rejected", 0) == 0 and counters.get("errors", 0) == 0
    finally:
        stop_pub.set()
        pub.loop_stop()
        pub.disconnect()
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()
