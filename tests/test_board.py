"""The duty manager's board in real headless Chromium against a real hub (uvicorn) and a real Mosquitto,
and ``hallgrid demo`` end to end as a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
import uvicorn

from calibration.site import User
from conftest import REPO, SCREENSHOTS, free_port
from edge.contract import OccupancyMessage, iso_ts, occupancy_topic
from hub.access import Access, hash_password
from hub.api import create_app
from hub.service import Hub
from hub.storage import Storage
from hub.tickets import tickets_topic

from test_hub_scenario import connected, wait_until
from test_hub_site import hall_site

VIEWER_TOKEN = "viewer-token-0123456789"


class LiveHub:
    """A hub as ``hallgrid hub`` runs it (system clock, MQTT, uvicorn), with two users."""

    def __init__(self, broker, db_url: str):
        self.hub = Hub([hall_site(min_duration_s=0)], Storage(db_url),
                       mqtt_url=broker.url, client_id="board-test-hub")
        access = Access([User(name="li.duty", role="duty_manager", password_hash=hash_password("s3cret")),
                         User(name="wall", role="viewer", token=VIEWER_TOKEN)], b"test-secret")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.hub, access), host="127.0.0.1", port=self.port,
                                                    log_level="warning", timeout_graceful_shutdown=1, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.hub.start()
        self.thread.start()
        wait_until(lambda: self.server.started, what="uvicorn")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.hub.stop()


class Hall:
    """Edge boxes and the ticket system: contract JSON on the contract topics."""

    def __init__(self, broker):
        self.seq = 0
        self.client = connected(broker, "edge-hall-1")
        self.tickets = connected(broker, "tickets-hall-1")

    def count(self, zone: str, n: int, camera: str = "cam1") -> None:
        self.seq += 1
        msg = OccupancyMessage("hall-1", camera, zone, iso_ts(time.time()), n, n, self.seq)
        self.client.publish(occupancy_topic("hall-1", camera, zone), msg.to_json(), qos=1, retain=True).wait_for_publish()

    def ticket(self, event: str, **fields) -> None:
        payload = json.dumps({"event": event, "ts": iso_ts(time.time()), **fields})
        self.tickets.publish(tickets_topic("hall-1"), payload, qos=1).wait_for_publish()

    def close(self) -> None:
        for c in (self.client, self.tickets):
            c.loop_stop()
            c.disconnect()


@pytest.fixture
def live(broker, db_url):
    h = LiveHub(broker, db_url)
    h.start()
    hall = Hall(broker)
    yield h, hall
    hall.close()
    h.stop()


def login(page, url: str, name: str = "li.duty", password: str = "s3cret") -> None:
    page.goto(f"{url}/board")
    page.wait_for_url(re.compile(r"/login"))        # anonymous: sent to the login form
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("#signin")
    page.wait_for_url(re.compile(r"/board$"))
    page.wait_for_selector(".conn.up")               # the SSE stream is open


def test_anonymous_visitor_is_refused(live):
    h, _ = live
    assert httpx.get(f"{h.url}/board").status_code == 303 and httpx.get(f"{h.url}/board").headers["location"] == "/login"
    assert httpx.get(f"{h.url}/api/sites").status_code == 401
    assert httpx.get(f"{h.url}/api/stream").status_code == 401
    r = httpx.post(f"{h.url}/login", data={"name": "li.duty", "password": "wrong"})
    assert r.status_code == 303 and "failed" in r.headers["location"] and "set-cookie" not in r.headers
    assert httpx.get(f"{h.url}/api/sites", headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}).status_code == 200


def test_board_live_alert_acknowledge(live, browser):
    h, hall = live
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    hall.ticket("counter_open", counter="1")
    for i in range(1, 6):
        hall.ticket("issued", ticket=f"A{i:03d}", service="billing")
    hall.ticket("called", ticket="A001", counter="1")
    for zone, n in {"entrance": 2, "kiosk": 1, "waiting-a": 5, "self-service": 1, "vip-room": 0}.items():
        hall.count(zone, n)
    hall.count("counter-1", 1, camera="cam2")
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="en-US")
    page = ctx.new_page()
    try:
        login(page, h.url)
        page.wait_for_selector("#zone-waiting-a .zone-count")
        assert page.text_content("#zone-waiting-a .zone-count") == "5"
        assert page.get_attribute("#zone-waiting-b", "data-state") == "nodata"
        # live: a count published on the broker reaches the open board over SSE (no reload)
        hall.count("waiting-b", 6)
        page.wait_for_function("document.querySelector('#zone-waiting-b .zone-count').textContent === '6'")
        assert page.get_attribute("#zone-waiting-b", "data-state") == "ok"
        page.wait_for_selector("tr[data-service=billing] td:nth-child(2):text('4')")
        # the wait in words from the hub's catalogue: minutes with a range (or overload described), never ∞
        wait_en = page.text_content("tr[data-service=billing] td.wait")
        assert re.fullmatch(r"about \d+ min( \(\d+-\d+\))?|overloaded: 4 tickets, 1 counter.*", wait_en), wait_en
        assert page.text_content("tr[data-service=vip] td.wait") == "no counter open"
        # an alert: waiting area B over its 10 seats (billing's 4 tickets for one counter may raise a
        # long-wait alert beside it, in either order: pick the capacity card by its id)
        hall.count("waiting-b", 12)
        card = page.wait_for_selector(".alert[data-state=open][data-id^='hall-1-over_capacity-waiting-b']")
        alert_id = card.get_attribute("data-id")
        assert "12 people for 10 places" in card.text_content()
        assert page.get_attribute("#zone-waiting-b", "data-state") == "over"
        page.screenshot(path=str(SCREENSHOTS / "board-desktop-1920x1080.png"))
        # acknowledge on the board: recorded for the logged-in user, seen on the board and in the API
        page.click(f"#alert-{alert_id} button.ack")
        page.wait_for_selector(f"#alert-{alert_id}[data-state=acknowledged]")
        assert "li.duty" in page.text_content(f"#alert-{alert_id} .who")
        api = httpx.get(f"{h.url}/api/alerts", headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}).json()
        got = next(a for a in api if a["id"] == alert_id)
        assert got["state"] == "acknowledged" and got["acknowledged_by"] == "li.duty"
        assert [x["who"] for x in h.hub.storage.history(alert_id)] == [None, "li.duty"]
        # a viewer sees it but may not resolve it
        r = httpx.post(f"{h.url}/api/alerts/{alert_id}/resolve", json={"who": "wall"},
                       headers={"Authorization": f"Bearer {VIEWER_TOKEN}"})
        assert r.status_code == 403
        # the condition clears: the hub resolves it and the board shows it
        hall.count("waiting-b", 3)
        page.wait_for_selector(f"#alert-{alert_id}[data-state=resolved]")
    finally:
        ctx.close()
    # a tablet in Chinese, with a new alert open
    hall.count("self-service", 5)
    tablet = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = tablet.new_page()
    try:
        login(page, h.url)
        card = page.wait_for_selector(".alert[data-state=open][data-id^='hall-1-self_service_queue-self-service']")
        alert_id = card.get_attribute("data-id")
        assert page.text_content("h2 [data-i18n=alerts]") == "预警"
        # the hub's sentences in the board's language: the alert suggestion and the wait in words
        assert "5人排队使用3台自助机" in card.text_content()
        assert page.text_content("tr[data-service=vip] td.wait") == "无窗口开放"
        assert re.fullmatch(r"约\d+分钟(（\d+-\d+分钟）)?|超负荷：4张票，1个窗口.*", page.text_content("tr[data-service=billing] td.wait"))
        # the chat robot's "acknowledge on the board" link opens the board on that alert
        page.goto(f"{h.url}/board?site=hall-1&alert={alert_id}")
        page.wait_for_selector(f"#alert-{alert_id}.focus")
        page.screenshot(path=str(SCREENSHOTS / "board-tablet-1280x800.png"))
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280     # nothing cut off sideways
        page.click("#lang")                                                       # the switch: English
        assert page.text_content("h2 [data-i18n=alerts]") == "Alerts"
        assert "5 people at 3 kiosks: send a guide" in page.text_content(f"#alert-{alert_id} .suggestion")
        assert page.text_content("tr[data-service=vip] td.wait") == "no counter open"
        page.screenshot(path=str(SCREENSHOTS / "board-tablet-1280x800-en.png"))
    finally:
        tablet.close()


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (from /proc: no psutil needed)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(150)
def test_demo_command_end_to_end(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = open(tmp_path / "demo.log", "w+")
    proc = subprocess.Popen([sys.executable, "-c", "from hub.cli import main; main()", "demo", "--duration", "72",
                             "--speed", "8", "--http", f"127.0.0.1:{port}"], cwd=REPO, stdout=out,
                            stderr=subprocess.STDOUT)
    seen_counts, states, children = False, {}, set()
    try:
        client = httpx.Client(base_url=url, timeout=2)
        deadline = time.monotonic() + 120
        logged_in = False
        while proc.poll() is None and time.monotonic() < deadline:
            children |= _children(proc.pid)
            try:
                if not logged_in:
                    r = client.post("/login", data={"name": "duty", "password": "demo"})
                    logged_in = r.status_code == 303 and r.headers.get("location") == "/board"   # not ?failed=1
                if logged_in:
                    zones = client.get("/api/sites/demo-hall/zones").json()
                    seen_counts |= any(z["age_s"] is not None and z["seq"] > 0 for z in zones)
                    for a in client.get("/api/alerts", params={"state": "all"}).json():
                        states.setdefault(a["id"], set()).add(a["state"])
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
    out.seek(0)
    log = out.read()
    assert rc == 0, log
    assert "board: http://127.0.0.1:" in log and "login: duty / demo" in log
    assert seen_counts, "no live counts from the edge box"
    assert any({"open", "resolved"} <= s for s in states.values()), (states, log)     # raised, then cleared
    assert children and not [p for p in children if _alive(p)], f"left behind: {children}"
