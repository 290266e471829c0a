"""The HTTP API with FastAPI's TestClient: tickets in, alerts out, acknowledge/resolve, history, SSE."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient

from edge.clock import ManualClock
from edge.contract import OccupancyMessage, iso_ts
from hub.api import create_app
from hub.service import Hub
from hub.storage import Storage

from test_hub_site import hall_site

T0 = 1_795_420_800.0


@pytest.fixture
def hub(db_url):
    h = Hub([hall_site()], Storage(db_url), clock=ManualClock(T0),
            evaluate_on_message=False)
    yield h
    h.stop()


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub)) as c:
        yield c


def occ(zone: str, count: int, seq: int, camera: str = "cam1") -> str:
    return OccupancyMessage("hall-1", camera, zone, iso_ts(T0), count, count, seq).to_json()


def test_openapi_documents_the_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/sites/{site}/zones", "/api/sites/{site}/queues", "/api/alerts", "/api/alerts/{alert_id}/acknowledge",
              "/api/alerts/{alert_id}/resolve", "/api/alerts/{alert_id}/history", "/api/sites/{site}/tickets",
              "/api/stream"):
        assert p in paths


def test_ticket_intake_and_reasons(client, hub):
    ok = client.post("/api/sites/hall-1/tickets", json={"event": "issued", "ticket": "A1", "service": "billing"})
    assert ok.status_code == 202 and ok.json()["accepted"] is True
    assert ok.json()["event"]["ts"] == iso_ts(T0)                       # no ts: time of receipt
    dup = client.post("/api/sites/hall-1/tickets", json={"event": "issued", "ticket": "A1", "service": "billing"})
    assert dup.status_code == 202 and dup.json()["duplicate"] is True
    qm = client.post("/api/sites/hall-1/tickets?format=qmatic",
                     json={"event": "SERVICE_POINT_OPEN", "parameters": {"servicePointId": "1"}})
    assert qm.status_code == 202
    bad = client.post("/api/sites/hall-1/tickets", json={"event": "issued", "ticket": "A2", "service": "gold"})
    assert bad.status_code == 422 and "unknown service 'gold'" in bad.json()["detail"]
    assert client.post("/api/sites/hall-1/tickets", content=b"{nope").status_code == 422
    assert client.post("/api/sites/nowhere/tickets", json={"event": "issued"}).status_code == 404
    csv = client.post("/api/sites/hall-1/tickets.csv",
                      content="ts,event,ticket,service,counter\n,issued,A3,billing,\n,called,A3,,7\n")
    assert csv.json()["accepted"] == 1 and "unknown counter '7'" in csv.json()["rejected"][0]
    queues = {q["service"]: q for q in client.get("/api/sites/hall-1/queues").json()}
    assert queues["billing"]["waiting_tickets"] == 2 and queues["billing"]["open_counters"] == ["1"]
    # the wait in words in both languages beside the figures; a service nobody serves says so
    assert queues["billing"]["wait_reason"] in ("ok", "overloaded") and "∞" not in queues["billing"]["wait_text"]["en"]
    assert queues["vip"]["wait_reason"] == "no_counter"
    assert queues["vip"]["wait_text"] == {"zh": "无窗口开放", "en": "no counter open"}
    stats = client.get("/api/stats").json()
    assert stats["counters"]["ticket_rejected"] == 3 and stats["counters"]["ticket_ok"] == 3


def test_alert_lifecycle_over_http(client, hub):
    for i in range(3):                                                   # no counter open for billing
        client.post("/api/sites/hall-1/tickets", json={"event": "issued", "ticket": f"A{i}", "service": "billing"})
    hub.ingest_occupancy(occ("waiting-a", 3, 1), "hall-1")
    hub.tick()
    # the long-wait figure is a forecast (tickets wait, no counter serves them): raised at once
    assert [a["key"] for a in client.get("/api/alerts").json()] == ["long_wait:billing"]
    hub.clock.advance(60)
    hub.tick()
    alerts = client.get("/api/alerts", params={"site": "hall-1"}).json()
    assert [a["key"] for a in alerts] == ["long_wait:billing"]
    a = alerts[0]
    assert a["state"] == "open" and a["owner"] == "B" and a["figures"]["waiting_tickets"] == 3
    assert a["suggestion"] == "Waiting area A: 3 people, 3 tickets for Billing, no counter open: open counter 1"
    assert a["lang"] == "en" and a["v"] == 2
    assert a["texts"]["zh"] == {"where": "Waiting area A", "detail": "3人、3张票等候Billing，无窗口开放",
                                "action": "开启1号窗口", "suggestion": "Waiting area A：3人、3张票等候Billing，无窗口开放，开启1号窗口"}
    hub.clock.advance(30)
    r = client.post(f"/api/alerts/{a['id']}/acknowledge", json={"who": "wang"})
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "wang"
    assert client.post(f"/api/alerts/{a['id']}/acknowledge", json={"who": "wang"}).status_code == 409
    assert client.post(f"/api/alerts/{a['id']}/acknowledge", json={}).status_code == 422
    assert client.post("/api/alerts/nope/resolve", json={"who": "x"}).status_code == 404
    hub.clock.advance(600)
    assert [x for x in hub.tick() if x.key == "long_wait:billing"] == []   # acknowledged: no escalation
    r = client.post(f"/api/alerts/{a['id']}/resolve", json={"who": "wang"})
    assert r.json()["state"] == "resolved" and r.json()["resolved_by"] == "wang"
    hist = client.get(f"/api/alerts/{a['id']}/history").json()
    assert [(h["state"], h["who"]) for h in hist] == [("open", None), ("acknowledged", "wang"), ("resolved", "wang")]
    assert "long_wait:billing" not in [x["key"] for x in client.get("/api/alerts").json()]
    assert a["id"] in [x["id"] for x in client.get("/api/alerts", params={"state": "all"}).json()]
    hub.clock.advance(60)
    assert [x for x in hub.tick() if x.key == "long_wait:billing"] == []   # still waiting, but in the cooldown


def test_sse_stream_sends_zone_and_alert_updates(client, hub):
    stop = threading.Event()

    def produce():
        seq = 0
        while not stop.wait(0.05):
            seq += 1
            hub.ingest_occupancy(occ("entrance", seq % 3, seq), "hall-1")

    threading.Thread(target=produce, daemon=True).start()
    events = []
    try:
        with client.stream("GET", "/api/stream", params={"limit": 2}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in r.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    events.append((kind, json.loads(line.split(":", 1)[1])))
    finally:
        stop.set()
    assert events[0] == ("snapshot", [])
    assert [k for k, _ in events[1:]] == ["zone", "zone"] and events[1][1]["zone"] == "entrance"


def test_zones_view(client, hub):
    hub.ingest_occupancy(occ("waiting-b", 4, 1), "hall-1")
    zones = {z["zone"]: z for z in client.get("/api/sites/hall-1/zones").json()}
    assert zones["waiting-b"]["count"] == 4 and zones["waiting-b"]["grid_cell"] == "B"
    assert zones["entrance"]["age_s"] is None
    assert client.get("/api/sites/other/zones").status_code == 404
