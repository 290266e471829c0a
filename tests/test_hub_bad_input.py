"""Bad input of every kind, over MQTT and HTTP: rejected with a reason, counted, and the hub keeps serving."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from edge.clock import ManualClock
from edge.contract import OccupancyMessage, StatusMessage, CameraState, iso_ts, occupancy_topic, status_topic
from hub.api import create_app
from hub.service import Hub
from hub.storage import Storage

from test_hub_scenario import T0, Edge, connected, wait_until
from test_hub_site import hall_site

OCC = OccupancyMessage("hall-1", "cam1", "entrance", iso_ts(T0), 3, 3, 5)
GOOD = json.loads(OCC.to_json())
TOPIC = occupancy_topic("hall-1", "cam1", "entrance")

BAD_OCCUPANCY = [   # (topic, payload, part of the reason)
    (TOPIC, b"\xff\xfe", "not JSON"),
    (TOPIC, b"[1,2]", "not a JSON object"),
    (TOPIC, json.dumps({**GOOD, "v": 3}), "unsupported version"),
    (TOPIC, json.dumps({k: v for k, v in GOOD.items() if k != "count"}), "'count' is missing"),
    (TOPIC, json.dumps({**GOOD, "count": "3"}), "'count' has the wrong type"),
    (TOPIC, json.dumps({**GOOD, "count": -1}), "'count' = -1 is outside 0.."),
    (TOPIC, json.dumps({**GOOD, "seq": 9 * 10**18}), "'seq' = 9000000000000000000 is outside 0.."),
    (TOPIC, json.dumps({**GOOD, "seq": 9e18}), "'seq' has the wrong type"),
    (TOPIC, json.dumps({**GOOD, "epoch": 2**52}), "epoch 4503599627370496 is later than the hub's clock"),
    (TOPIC, json.dumps({**GOOD, "camera": "c" * 100}), "'camera' is not an id"),
    (TOPIC, json.dumps({**GOOD, "ts": "08:00"}), "not an ISO 8601"),
    (TOPIC, json.dumps({**GOOD, "capacity": -4}), "capacity"),
    (TOPIC, json.dumps({**GOOD, "site": "hall-9"}), "reached the hub of"),
    (occupancy_topic("hall-1", "cam1", "roof"), json.dumps({**GOOD, "zone": "roof"}), "not in site"),
    (occupancy_topic("hall-1", "cam1", "kiosk"), OCC.to_json(), "topic names cam1/kiosk"),
]
BAD_OCCUPANCY_TOPICS = [(t, p) for t, p, _ in BAD_OCCUPANCY]
BAD_TICKETS = [
    (b"not json", "not JSON"),
    (json.dumps({"event": "teleported", "ticket": "A1"}), "unknown event"),
    (json.dumps({"event": "issued", "service": "billing"}), "'ticket' is missing"),
    (json.dumps({"event": "issued", "ticket": "A1", "service": "gold"}), "unknown service 'gold'"),
    (json.dumps({"event": "called", "ticket": "A1", "counter": "99"}), "unknown counter '99'"),
    (json.dumps({"event": "called", "ticket": "A1"}), "'counter' is missing"),
    (json.dumps({"event": "VISIT_CALL", "parameters": "x"}), "'parameters' is not an object"),
    (json.dumps({"event": "issued", "ticket": "A1", "service": "billing", "site": "hall-2"}), "sent to site"),
]


def test_bad_input_is_rejected_with_reasons_and_the_hub_keeps_serving(broker, db_url):
    hub = Hub([hall_site()], Storage(db_url), clock=ManualClock(T0),
              mqtt_url=broker.url, evaluate_on_message=True)
    hub.start()
    edge = Edge(broker)
    peer = connected(broker, "hub")     # only a hub account may publish alerts (the broker's ACL)
    try:
        for topic, payload in BAD_OCCUPANCY_TOPICS:
            edge.raw(topic, payload)
        for payload, _ in BAD_TICKETS:
            edge.raw("hallgrid/hall-1/tickets", payload, edge.tickets)
        edge.raw(status_topic("hall-1", "cam1"), b'{"v":1,"state":"melting","ts":"x"}')
        edge.raw(status_topic("hall-1", "cam7"), StatusMessage(CameraState.ONLINE, iso_ts(T0)).to_json())
        edge.raw(status_topic("hall-1", "cam1"), b'{"v":1,"state":"online","ts":"2026-01-01T00:00:00Z","fps":"x"}')
        edge.raw("hallgrid/hall-1/alerts/x", b"{broken", peer)
        wait_until(lambda: len(hub.drops) >= edge.sent, what="all bad messages")
        reasons = [d["reason"] for d in hub.drops]
        for _, _, why in BAD_OCCUPANCY:
            assert any(why in r for r in reasons), why
        for _, why in BAD_TICKETS:
            assert any(why in r for r in reasons), why
        assert any("unknown state 'melting'" in r for r in reasons)
        assert any("no camera 'cam7'" in r for r in reasons)
        assert any("field 'fps' must be a number" in r for r in reasons)
        assert any("retained alert refused: alert is not JSON" in r for r in reasons)
        assert hub.stats["occupancy_rejected"] == len(BAD_OCCUPANCY)
        assert hub.stats["ticket_rejected"] == len(BAD_TICKETS)
        assert hub.stats["errors"] == 0
        # still serving: good messages after the bad ones are taken, old seq ignored, the API answers
        edge.raw(TOPIC, OCC.to_json())
        edge.raw(TOPIC, OCC.to_json())                               # same seq again: ignored, not an error
        edge.ticket(T0, "issued", ticket="A1", service="billing")
        wait_until(lambda: hub.stats["ticket_ok"] == 1 and hub.stats["occupancy_old"] == 1, what="good messages")
        with TestClient(create_app(hub)) as client:
            zones = {z["zone"]: z["count"] for z in client.get("/api/sites/hall-1/zones").json()}
            assert zones["entrance"] == 3
            assert client.get("/api/sites/hall-1/queues").json()[0]["waiting_tickets"] == 1
            drops = client.get("/api/stats").json()["recent_drops"]
            assert len(drops) == min(50, edge.sent - 3)
    finally:
        hub.stop()
        edge.close()
        peer.loop_stop()
