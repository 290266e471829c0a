"""Analysts' replay: footage + ticket log through the live edge and hub code, into series, alerts and a report.

One full-frame replay of the sample clip (module fixture) serves the output, report
and accuracy tests; the determinism and live-equivalence tests use 2 detections/s.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import paho.mqtt.client as mqtt
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from calibration.site import load_site
from edge.clock import ManualClock
from edge.contract import OccupancyMessage, occupancy_topic
from edge.counting import CameraCounter
from edge.detector import Detector
from edge.evaluation import evaluate
from hub.cli import cli
from hub.replay import timeline
from hub.replay.run import read_tickets
from hub.service import Hub
from hub.storage import Storage
from hub.tickets import tickets_topic

from conftest import PETS_GT, PETS_VIDEO, SCREENSHOTS

ZONES = """
      - {id: entrance, name: Entrance, type: entrance, grid_cell: A, capacity: 4, polygon: [[0.62, 0.24], [1.0, 0.24], [1.0, 0.62], [0.62, 0.62]]}
      - {id: waiting-a, name: Waiting area A, type: waiting, grid_cell: B, capacity: 1, polygon: [[0.0, 0.30], [0.34, 0.30], [0.34, 0.60], [0.0, 0.60]]}
      - {id: waiting-b, name: Waiting area B, type: waiting, grid_cell: B, capacity: 2, polygon: [[0.34, 0.30], [0.62, 0.30], [0.62, 0.62], [0.34, 0.62]]}
      - {id: self-service, name: Self-service corner, type: self_service, grid_cell: C, capacity: 2, polygon: [[0.0, 0.62], [1.0, 0.62], [1.0, 1.0], [0.0, 1.0]]}
    masks:
      - {id: signpost, polygon: [[0.535, 0.34], [0.585, 0.34], [0.585, 0.43], [0.535, 0.43]]}"""
# The pets09 example site with the hub's part: services waiting in the two waiting areas, two counters,
# and rules shortened so that an 80-second clip raises, escalates and resolves alerts.
SITE = f"""id: demo-hall
name: Demo hall (PETS09 walkway)
timezone: Asia/Shanghai
detector: {{model: yolox_nano_320, confidence: 0.45}}
smoothing: {{enter_s: 0.3, exit_s: 0.6}}
cameras:
  - id: cam1
    source: sample://vtest.avi
    detect_fps: 5
    zones:{ZONES}
services:
  - {{id: billing, name: Billing, waiting_zones: [waiting-a]}}
  - {{id: newline, name: New line, waiting_zones: [waiting-b]}}
counters:
  - {{id: "1", services: [billing, newline]}}
  - {{id: "2", services: [billing]}}
rules: {{min_duration_s: 3, cooldown_s: 10, escalate_after_s: 20, entrance_excess: 2, service_time_prior_s: 120,
        long_wait_hold_s: 5}}
"""
TICKETS = """ts,event,ticket,service,counter,to_service,services
2026-11-23T09:00:00+08:00,counter_open,,,1,,
2026-11-23T09:00:02+08:00,issued,B001,billing,,,
2026-11-23T09:00:04+08:00,issued,B002,billing,,,
2026-11-23T09:00:06+08:00,issued,B003,billing,,,
2026-11-23T09:00:08+08:00,issued,B004,billing,,,
2026-11-23T09:00:10+08:00,called,B001,,1,,
2026-11-23T09:00:12+08:00,issued,N001,newline,,,
2026-11-23T09:00:40+08:00,counter_open,,,2,,
2026-11-23T09:00:41+08:00,called,B002,,2,,
2026-11-23T09:00:50+08:00,served,B001,,,,
2026-11-23T09:00:51+08:00,called,B003,,1,,
2026-11-23T09:01:05+08:00,served,B002,,,,
2026-11-23T09:01:06+08:00,called,B004,,2,,
"""
START = "2026-11-23T09:00:00"       # site-local (Asia/Shanghai)
SERIES = ["zones.csv", "zones.parquet", "zone_intervals.csv", "zone_intervals.parquet", "queues.csv",
          "queues.parquet", "alerts.csv", "alerts.json", "accuracy.csv", "accuracy.parquet", "accuracy.json",
          "occupancy.jsonl", "summary.json"]


def write_inputs(folder: Path, site_text: str = SITE) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    site, tickets = folder / "site.yaml", folder / "tickets.csv"
    site.write_text(site_text)
    tickets.write_text(TICKETS)
    return site, tickets


def replay(out: Path, site: Path, tickets: Path, *extra: str, videos: tuple = (PETS_VIDEO,)) -> dict:
    args = ["replay", *map(str, videos), "--site", str(site), "--tickets", str(tickets), "--out", str(out),
            "--no-progress", *extra]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def full(tmp_path_factory, need_footage):
    """Every frame of the clip, with ground truth: the run the accuracy must match `hallgrid eval` on."""
    folder = tmp_path_factory.mktemp("replay-full")
    site, tickets = write_inputs(folder)
    out = folder / "out"
    replay(out, site, tickets, "--start", START, "--gt", str(PETS_GT), "--detect-fps", "10", "--interval", "20")
    return folder, site, out


def test_replay_writes_every_output(full):
    _, _, out = full
    for name in [*SERIES, "report.html"]:
        assert (out / name).stat().st_size > 0, name
    zones = pq.read_table(out / "zones.parquet").to_pylist()
    assert len(zones) == 795 * 4 and {r["zone"] for r in zones} == {"entrance", "waiting-a", "waiting-b",
                                                                     "self-service"}
    assert zones[0]["ts"] == "2026-11-23T01:00:00.000Z" and {"raw", "smoothed"} <= set(zones[0])
    intervals = pq.read_table(out / "zone_intervals.parquet").to_pylist()
    assert len(intervals) == 4 * 4          # 79.5 s in 20 s intervals, per zone
    assert all(r["min"] <= r["mean"] <= r["max"] for r in intervals)
    queues = pq.read_table(out / "queues.parquet").to_pylist()
    assert {r["service"] for r in queues} == {"billing", "newline"} and len(queues) == 2 * 80
    assert max(r["waiting_tickets"] for r in queues if r["service"] == "billing") == 4
    alerts = json.loads((out / "alerts.json").read_text())
    kinds = {a["kind"] for a in alerts["alerts"]}
    assert {"long_wait", "over_capacity", "entrance_crowd"} <= kinds
    billing = next(a for a in alerts["alerts"] if a["key"] == "long_wait:billing")
    assert billing["resolved_at"] and billing["escalations"] >= 1     # raised, escalated, resolved in footage time
    assert [c["state"] for c in alerts["changes"] if c["key"] == "long_wait:billing"] == ["open", "open", "resolved"]
    assert "acknowledged_at" in (out / "alerts.csv").read_text().splitlines()[0]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5       # occupancy, heat, waits, alerts, error
    assert "http" not in html.replace("http-equiv", "")    # self-contained


def test_report_opens_in_chromium(full, browser):
    _, _, out = full
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto((out / "report.html").as_uri())
    heads = page.locator("h2").all_inner_texts()
    assert heads == ["Occupancy per zone", "Heat by hour", "Waits per service", "Alerts",
                     "Counting error against ground truth"]
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert len(widths) == 5 and all(w > 300 for w in widths)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "replay-report.png"), full_page=True)
    page.close()


def test_error_figures_equal_hallgrid_eval(full):
    _, site_path, out = full
    site = load_site(site_path)
    counter = CameraCounter(Detector(_detector_config(site)), site.cameras[0], site.smoothing)
    expected = evaluate(counter, PETS_VIDEO, PETS_GT)
    for key in ("fps", "model", "confidence"):
        expected.pop(key)
    acc = json.loads((out / "accuracy.json").read_text())
    got = acc["cam1:vtest.avi"]
    assert got["overall"] == expected
    assert list(got["per_hour"].values()) == [expected]        # the clip lies within one hour
    html = (out / "report.html").read_text()
    assert f"<td>{expected['count_mae']}</td>" in html and f"<td>{expected['raw_count_mae']}</td>" in html


def _detector_config(site):
    from edge.cli import detector_config

    return detector_config(site, None, None, None, None)


TWO_CAMERAS = SITE.replace("""cameras:
  - id: cam1
    source: sample://vtest.avi
    detect_fps: 5
    zones:""" + ZONES, """cameras:
  - id: cam1
    source: sample://vtest.avi
    detect_fps: 5
    zones:""" + ZONES + """
  - id: cam2
    source: sample://vtest.avi
    detect_fps: 5
    zones:""" + ZONES.replace("id: entrance", "id: entrance-2").replace("id: waiting-a", "id: counter-zone")
    .replace("type: waiting, grid_cell: B, capacity: 1", "type: counter, grid_cell: E, capacity: 1")
    .replace("id: waiting-b", "id: waiting-c").replace("id: self-service", "id: self-service-2"))


def test_replay_is_byte_identical_and_parallel_changes_nothing(tmp_path, need_footage):
    site, tickets = write_inputs(tmp_path, TWO_CAMERAS)
    videos = (PETS_VIDEO, PETS_VIDEO)
    common = ("--camera", "cam1", "--camera", "cam2", "--start", START, "--detect-fps", "2")
    first = replay(tmp_path / "a", site, tickets, *common, "--jobs", "2", "--annotate", videos=videos)
    replay(tmp_path / "b", site, tickets, *common, "--jobs", "1", videos=videos)
    assert [r["camera"] for r in first["recordings"]] == ["cam1", "cam2"]
    for name in [n for n in SERIES if not n.startswith("accuracy")]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    seqs = [json.loads(line)["seq"] for line in (tmp_path / "a" / "occupancy.jsonl").read_text().splitlines()
            if '"camera":"cam2"' in line]
    assert seqs == list(range(1, len(seqs) + 1))
    cap = cv2.VideoCapture(str(tmp_path / "a" / "annotated-cam1-vtest.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == first["recordings"][0]["frames"]
    cap.release()


def test_replay_alerts_equal_a_live_hub_through_a_broker(tmp_path, broker, need_footage):
    """The same occupancy messages and ticket events, published over MQTT to a running hub on a ManualClock."""
    site_path, tickets_path = write_inputs(tmp_path)
    out = tmp_path / "out"
    summary = replay(out, site_path, tickets_path, "--start", START, "--detect-fps", "2")
    replayed = json.loads((out / "alerts.json").read_text())["changes"]
    assert len(replayed) >= 6

    site = load_site(site_path)
    messages = [OccupancyMessage.from_json(line) for line in (out / "occupancy.jsonl").read_text().splitlines()]
    tl = timeline.order(site, messages, read_tickets(str(tickets_path), summary["start_epoch"]),
                        summary["start_epoch"], summary["end_epoch"], summary["tick_s"])
    clock = ManualClock(tl.start)
    hub = Hub([site], Storage(f"sqlite:///{tmp_path / 'live.db'}"), clock=clock, mqtt_url=broker.url)
    changes = []
    hub.alert_listeners.append(lambda a: changes.append((clock.now(), a)))
    hub.start()
    edge = broker.login(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2), f"edge-{site.id}")
    feed = broker.login(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2), f"tickets-{site.id}")
    for c in (edge, feed):
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
    sent = 0

    def taken() -> int:
        return sum(v for k, v in hub.stats.items() if k.startswith(("occupancy_", "ticket_")))

    try:
        for step in tl.steps:
            clock.set(step.at)
            if step.kind == timeline.TICK:
                hub.tick(step.at)
                continue
            if step.kind == timeline.OCCUPANCY:
                m = step.occupancy
                edge.publish(occupancy_topic(site.id, m.camera, m.zone), m.to_json(), qos=1,
                             retain=True).wait_for_publish()
            else:
                feed.publish(tickets_topic(site.id), step.ticket.to_json(), qos=1).wait_for_publish()
            sent += 1
            deadline = time.monotonic() + 10
            while taken() < sent:
                assert time.monotonic() < deadline, "the hub did not take the message"
                time.sleep(0.001)
            with hub.lock:      # the MQTT thread has finished evaluating what it took
                pass
        live = timeline.alert_changes(timeline.HubRecord(changes=changes))
    finally:
        for c in (edge, feed):
            c.loop_stop()
            c.disconnect()
        hub.stop()
    assert hub.stats["occupancy_rejected"] == 0 and hub.stats["ticket_rejected"] == 0
    assert live == replayed
