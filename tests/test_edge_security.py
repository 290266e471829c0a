"""Issue 13 on the real ``hallgrid edge`` process: epochs, redaction, and no silent loss when the disk is full."""

from __future__ import annotations

import logging
import re
import resource

import httpx
import pytest
from fastapi.testclient import TestClient
from ruamel.yaml import YAML

from calibration.site import load_site
from conftest import PETS_VIDEO, free_port
from edge.clock import SystemClock
from edge.contract import CameraState
from hub.api import create_app
from hub.service import Hub
from hub.storage import Storage
from test_edge_service import Edge, Subscriber, write_site
from test_hub_scenario import wait_until

pytestmark = pytest.mark.timeout(150)
CAMERA_PASSWORD = "S3cretPass"


def site_with_a_password_camera(tmp_path):
    """The sample clip as cam1, and cam2 an RTSP camera with a password (from the environment) that is down."""
    path = write_site(tmp_path / "site.yaml", str(PETS_VIDEO))
    yaml = YAML(typ="safe")
    doc = yaml.load(path.read_text())
    doc["cameras"].append({"id": "cam2", "source": f"rtsp://admin:${{CAM2_PASSWORD}}@127.0.0.1:{free_port()}/ch1",
                           "zones": []})
    with path.open("w") as fh:
        yaml.dump(doc, fh)
    return path


def test_a_replaced_edge_box_is_taken_and_no_password_leaks(tmp_path, broker, monkeypatch, caplog, need_footage):
    monkeypatch.setenv("CAM2_PASSWORD", CAMERA_PASSWORD)
    caplog.set_level(logging.INFO)
    path = site_with_a_password_camera(tmp_path)
    site = load_site(path)
    assert CAMERA_PASSWORD in site.cameras[1].source       # substituted from the environment, not in the file
    assert CAMERA_PASSWORD not in path.read_text()
    hub = Hub([site], Storage(f"sqlite:///{tmp_path / 'hub.db'}"), clock=SystemClock(), mqtt_url=broker.url)
    hub.start()
    sub = Subscriber(broker)
    edges = []
    try:
        zones = hub.sites["demo-hall"].zones
        edges.append(Edge(tmp_path, path, broker, outbox=tmp_path / "box-1.db"))
        wait_until(lambda: max(z.seq for z in zones.values()) >= 8, timeout=60, what="counts of the first box")
        lost = sub.wait_for(lambda: [s for s in sub.statuses() if s.camera == "cam2"
                                     and s.state is CameraState.CAMERA_LOST], 30, "cam2 lost")
        assert "rtsp://admin:***@127.0.0.1" in lost[-1].detail, lost[-1].detail
        edges[0].stop()
        first_epoch, first_seq = max((z.epoch, z.seq) for z in zones.values())
        assert first_epoch > 0
        # the box is replaced: a new outbox, seq from 1 under a newer epoch, and the hub takes it
        edges.append(Edge(tmp_path, path, broker, outbox=tmp_path / "box-2.db"))
        wait_until(lambda: any(z.epoch > first_epoch for z in zones.values()), timeout=60, what="the new box's counts")
        reading = next(z for z in zones.values() if z.epoch > first_epoch)
        assert reading.seq < first_seq and hub.stats["occupancy_new_epoch"] >= 1
        wait_until(lambda: "admin:***@" in hub.sites["demo-hall"].camera_detail.get("cam2", ""), timeout=30,
                   what="the new box's cam2 status")
        with TestClient(create_app(hub)) as client:
            health = client.get("/api/sites/demo-hall/health").json()
            cams = {c["camera"]: c for c in health["cameras"]}
            assert "admin:***@" in cams["cam2"]["detail"] and not cams["cam2"]["ok"]
            seen_by_api = client.get("/api/stats").text + str(health)
    finally:
        for e in edges:
            e.stop()
        sub.close()
        hub.stop()
    secrets = [CAMERA_PASSWORD, *(a.password for a in broker.files.accounts)]
    texts = {"MQTT": b"\n".join(p for _, p, _ in sub.messages).decode(), "API": seen_by_api,
             "hub log": caplog.text, "broker log": broker.log.read_text(errors="replace"),
             **{f"edge log {i}": e.path.read_text(errors="replace") for i, e in enumerate(edges)}}
    assert "rtsp://admin:***@" in texts["edge log 0"]     # the failure is logged, redacted
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a password appears in the {where}"


def test_a_full_disk_marks_the_camera_degraded_counts_it_and_loses_no_zone(tmp_path, broker, need_footage):
    site = write_site(tmp_path / "site.yaml", str(PETS_VIDEO))
    port = free_port()
    sub = Subscriber(broker)
    edge = Edge(tmp_path, site, broker, "--metrics-port", str(port))
    try:
        sub.wait_state(CameraState.ONLINE, 60)
        sub.wait_for(lambda: len(sub.occupancy()) >= 4, 30, "counts")
        listening = open("/proc/net/tcp").read()
        assert re.search(rf"^\s*\d+: 0100007F:{port:04X} 00000000:0000 0A", listening, re.M), \
            "metrics listen on 127.0.0.1 by default"
        soft, hard = resource.prlimit(edge.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(edge.proc.pid, resource.RLIMIT_FSIZE, (1, hard))    # the disk is full: no write succeeds
        n = len(sub.statuses())
        degraded = sub.wait_state(CameraState.DEGRADED, 30, after=n)
        assert degraded.detail.startswith("outbox write failed") and degraded.camera == "cam1"
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        failures = float(re.search(r'hallgrid_outbox_write_failures_total\{camera="cam1"\} (\S+)', metrics)[1])
        assert failures >= 1
        later = sub.wait_for(lambda: [s for s in sub.statuses()[n:] if s.outbox_failed >= 2], 30, "failures counted")
        assert later[-1].state is CameraState.DEGRADED
        resource.prlimit(edge.proc.pid, resource.RLIMIT_FSIZE, (soft, hard))  # space again
        m = len(sub.statuses())
        sub.wait_state(CameraState.ONLINE, 30, after=m)
        counted = len(sub.occupancy())
        sub.wait_for(lambda: len(sub.occupancy()) > counted, 30, "counts again once the outbox can be written")
    finally:
        edge.stop()
        sub.close()


def test_check_reports_a_failing_camera_without_its_password(tmp_path, monkeypatch, need_footage):
    import subprocess

    from test_edge_service import HALLGRID

    monkeypatch.setenv("CAM2_PASSWORD", CAMERA_PASSWORD)
    path = site_with_a_password_camera(tmp_path)
    got = subprocess.run([str(HALLGRID), "check", str(path), "--camera", "cam2", "--out", str(tmp_path / "c.png")],
                         capture_output=True, text=True, timeout=120)
    assert got.returncode != 0 and "no snapshot from its source" in got.stderr, got.stderr
    assert "rtsp://admin:***@127.0.0.1" in got.stderr and CAMERA_PASSWORD not in got.stdout + got.stderr
    # the calibration editor's snapshot error (a 503 page) is the same text, redacted before it leaves
    from edge.snapshots import SnapshotSource

    source = SnapshotSource(load_site(path).cameras[1].source, live_timeout_s=2)
    try:
        with pytest.raises(OSError) as err:
            source.grab()
        assert "admin:***@" in str(err.value) and CAMERA_PASSWORD not in str(err.value)
    finally:
        source.close()
