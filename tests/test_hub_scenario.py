"""A compressed day in a hall, through a real Mosquitto, on a ManualClock.

Occupancy is published as contract JSON on the edge topics and ticket events on the
tickets topic; every scripted minute the test waits until the hub has taken all of
it, then ticks. The alert changes must be exactly the expected ones at the expected
minutes, including escalation, acknowledgement, flapping (one alert) and a hub
restart in the middle (no alert lost, none duplicated).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
import pytest

from edge.clock import ManualClock
from edge.contract import OccupancyMessage, iso_ts, occupancy_topic
from hub.service import Hub
from hub.storage import Storage
from hub.tickets import tickets_topic

from test_hub_site import hall_site

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc).timestamp()
CAMERA_OF = {"entrance": "cam1", "kiosk": "cam1", "waiting-a": "cam1", "waiting-b": "cam1", "self-service": "cam1",
             "vip-room": "cam1", "counter-1": "cam2", "counter-2": "cam2"}


def wait_until(pred, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def processed(hub: Hub) -> int:
    return sum(v for k, v in hub.stats.items() if k.startswith(("occupancy_", "ticket_", "status_")))


class Edge:
    """The edge box and the ticket system of the scripted hall: one MQTT publisher each, with its own account."""

    def __init__(self, broker, site: str = "hall-1"):
        self.site, self.seq, self.sent = site, {"cam1": 0, "cam2": 0}, 0
        self.client = connected(broker, f"edge-{site}")
        self.tickets = connected(broker, f"tickets-{site}")

    def occupancy(self, now: float, counts: dict[str, int], silent: tuple[str, ...] = ()) -> None:
        for zone, count in counts.items():
            cam = CAMERA_OF[zone]
            if cam in silent:
                continue
            self.seq[cam] += 1
            msg = OccupancyMessage(self.site, cam, zone, iso_ts(now), count, count, self.seq[cam])
            self.client.publish(occupancy_topic(self.site, cam, zone), msg.to_json(), qos=1, retain=True).wait_for_publish()
            self.sent += 1

    def ticket(self, now: float, event: str, **fields) -> None:
        payload = json.dumps({"event": event, "ts": iso_ts(now), **fields})
        self.tickets.publish(tickets_topic(self.site), payload, qos=1).wait_for_publish()
        self.sent += 1

    def raw(self, topic: str, payload: bytes | str, client=None) -> None:
        (client or self.client).publish(topic, payload, qos=1).wait_for_publish()
        self.sent += 1

    def close(self) -> None:
        for c in (self.client, self.tickets):
            c.loop_stop()
            c.disconnect()


def connected(broker, account: str) -> mqtt.Client:
    """A paho client logged in as ``account``, connected, its loop running."""
    client = broker.login(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2), account)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


class AlertWatcher:
    """Collects the retained alert topic, as a dashboard would."""

    def __init__(self, broker, site: str = "hall-1"):
        self.latest: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.client = broker.login(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2), "hub")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(f"hallgrid/{site}/alerts/+", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.latest[msg.topic.rsplit("/", 1)[1]] = json.loads(msg.payload)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


BASE = {"entrance": 1, "kiosk": 0, "waiting-a": 2, "waiting-b": 1, "self-service": 0, "vip-room": 0,
        "counter-1": 1, "counter-2": 1}


def script(m: int, edge: Edge, now: float, counts: dict[str, int]) -> None:
    """The day's ticket events and occupancy changes by minute (see the expected list below)."""
    t = lambda event, **kw: edge.ticket(now, event, **kw)   # noqa: E731
    if m == 0:
        t("counter_open", counter="1")
        t("counter_open", counter="2")
    if m == 1:                               # morning rush on billing
        for i in range(1, 11):
            t("issued", ticket=f"B{i:03d}", service="billing")
        t("called", ticket="B001", counter="1")
        t("called", ticket="B002", counter="2")
        counts["waiting-a"] = 9
    if m in (4, 7, 10):                      # 3-minute transactions on counters 1 and 2
        a, b = {4: (1, 3), 7: (3, 5), 10: (5, 8)}[m]
        t("served", ticket=f"B{a:03d}")
        t("served", ticket=f"B{a + 1:03d}")
        t("called", ticket=f"B{b:03d}", counter="1")
        t("called", ticket=f"B{b + 1:03d}", counter="2")
        counts["waiting-a"] -= 2
    if m == 8:                               # the manager opens counter 4 as suggested
        t("counter_open", counter="4")
        t("called", ticket="B007", counter="4")
    if m == 11:
        t("served", ticket="B007")
        t("called", ticket="B010", counter="4")
    if m == 12:                              # clerk of counter 2 walks away after calling B011
        for tk in ("B008", "B009", "B010"):
            t("served", ticket=tk)
        t("issued", ticket="B011", service="billing")
        t("called", ticket="B011", counter="2")
        counts["counter-2"] = 0
        counts["waiting-a"] = 1
    if m == 15:
        counts["counter-2"] = 1
    if m == 16:
        t("served", ticket="B011")
    # waiting area B (10 seats; raise at 11, clear at 8): a blip, then flapping around both thresholds
    flaps = {18: 11, 19: 10, 20: 12, 21: 11, 22: 10, 23: 12, 24: 9, 25: 11, 26: 10, 27: 8, 28: 12, 29: 12, 30: 7,
             31: 3}
    if m in flaps:
        counts["waiting-b"] = flaps[m]
    if m == 35:
        counts["entrance"] = 9               # a crowd the ticket flow does not explain
    if m == 40:
        counts["entrance"] = 2
    if m == 42:
        t("issued", ticket="V001", service="vip")
        counts["vip-room"] = 1
    if m == 45:
        t("counter_open", counter="5")
        t("called", ticket="V001", counter="5")
        counts["vip-room"] = 0
    if m == 76:
        t("issued", ticket="B012", service="billing")


EXPECTED = [
    (1, "long_wait:billing", "open", "warning"),             # a forecast: raised at once, no minimum duration
    (6, "long_wait:billing", "open", "critical"),          # not acknowledged within 5 min
    (8, "long_wait:billing", "acknowledged", "critical"),
    # calm from minute 11 (1 ticket ahead, 3 busy counters freeing every 100 s), held 2 min
    (13, "long_wait:billing", "resolved", "critical"),
    (13, "staff_missing:2", "open", "warning"),
    (15, "staff_missing:2", "resolved", "warning"),
    (21, "over_capacity:waiting-b", "open", "warning"),
    (26, "over_capacity:waiting-b", "open", "critical"),   # escalated by the restarted hub
    (27, "over_capacity:waiting-b", "resolved", "critical"),
    (36, "entrance_crowd:entrance", "open", "info"),
    (40, "entrance_crowd:entrance", "resolved", "info"),
    (42, "long_wait:vip", "open", "warning"),              # no VIP counter open at all
    (44, "vip_waiting:vip", "open", "warning"),
    (45, "vip_waiting:vip", "resolved", "warning"),
    (47, "long_wait:vip", "resolved", "warning"),          # calm from 45, held 2 min
    (51, "stale_camera:cam2", "open", "warning"),
    (53, "stale_camera:cam2", "resolved", "warning"),
    (75, "stale_tickets:feed", "open", "warning"),         # 30 min without a ticket event
    (76, "stale_tickets:feed", "resolved", "warning"),
]
RESTART_AT = 25


def make_hub(site, db: str, broker, clock: ManualClock, log: list) -> Hub:
    hub = Hub([site], Storage(db), clock=clock, mqtt_url=broker.url, evaluate_on_message=False)
    hub.alert_listeners.append(lambda a: log.append((round((clock.now() - T0) / 60), a.key, a.state, a.level, a.id)))
    hub.start()
    return hub


@pytest.mark.timeout(120)
def test_compressed_day(broker, db_url):
    site = hall_site(arrival_window_s=600)
    db = db_url
    clock, log = ManualClock(T0), []
    watcher = AlertWatcher(broker)
    edge = Edge(broker)
    hub = make_hub(site, db, broker, clock, log)
    counts = dict(BASE)
    offset = 0          # messages the current hub object did not see from this script (the one before a restart)
    suggestions = {}
    try:
        for m in range(0, 77):
            now = T0 + 60 * m
            clock.set(now)
            if m == RESTART_AT:                         # the hub process dies and comes back
                active_before = hub.active_keys()
                tickets_before = {k: (t.state, t.service) for k, t in hub.sites["hall-1"].book.tickets.items()}
                hub.stop()
                hub = make_hub(site, db, broker, clock, log)
                wait_until(lambda: hub.stats["occupancy_ok"] >= len(BASE), what="retained occupancy")
                assert hub.active_keys() == active_before
                assert {k: (t.state, t.service) for k, t in hub.sites["hall-1"].book.tickets.items()} == tickets_before
                offset = edge.sent - processed(hub)
            silent = ("cam2",) if 50 <= m < 53 else ()
            script(m, edge, now, counts)
            edge.occupancy(now, counts, silent)
            wait_until(lambda: processed(hub) + offset >= edge.sent, what=f"minute {m} messages")
            if m == 8:
                hub.acknowledge(hub.active_keys()["long_wait:billing"], "li.duty")
            for a in hub.tick():
                suggestions.setdefault(a.key, a.suggestion)
        got = [(m, k, s, lv) for m, k, s, lv, _ in log]
        assert got == EXPECTED
        # one alert per condition episode, and the restart neither lost nor repeated one
        ids = {}
        for _, key, state, _, aid in log:
            ids.setdefault((key, aid), []).append(state)
        assert sorted(k for k, _ in ids) == sorted({k for _, k, _, _ in EXPECTED})   # one id per condition
        # two counters open: a wait in minutes or "overloaded: 8 tickets, 2 counters", never "unbounded" or ∞
        assert suggestions["long_wait:billing"].startswith("Waiting area A: 9 people")
        assert "8 tickets" in suggestions["long_wait:billing"] and "∞" not in suggestions["long_wait:billing"]
        assert suggestions["long_wait:billing"].endswith(": open counter 4")
        assert "open counter 5" in suggestions["long_wait:vip"]
        assert "lobby manager" in suggestions["entrance_crowd:entrance"]
        assert hub.stats["occupancy_rejected"] == 0 and hub.stats["ticket_rejected"] == 0
        # storage: every alert resolved, the acknowledgement recorded with who and when
        stored = hub.storage.alerts()
        assert len(stored) == len(ids) and all(a.state == "resolved" for a in stored)
        billing = next(a for a in stored if a.key == "long_wait:billing")
        assert billing.acknowledged_by == "li.duty" and billing.acknowledged_at == iso_ts(T0 + 8 * 60)
        assert [h["state"] for h in hub.storage.history(billing.id)] == ["open", "open", "acknowledged", "resolved"]
        # the retained topics say the same as storage
        wait_until(lambda: {k: v["state"] for k, v in watcher.latest.items()} == {a.id: "resolved" for a in stored},
                   what="retained alert states")
    finally:
        hub.stop()
        edge.close()
        watcher.close()
