"""Operating the hub: a broker that starts late, readiness vs liveness, Prometheus metrics, JSON logs, offline /docs.

The hub runs as ``hallgrid hub`` in a subprocess, configured through the
environment as a container configures it, against a real Mosquitto; /docs is
loaded in real Chromium with every request off 127.0.0.1 blocked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from conftest import DEMO_SITE, REPO, Broker, demo_site_without_users, free_port

HALLGRID = REPO / ".venv" / "bin" / "hallgrid"
TOKEN = "ops-test-token-0123456789"


def wait_for(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = fn()
            if got:
                return got
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def metrics(url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_hub_waits_for_a_late_broker_is_ready_only_when_subscribed_and_exports_metrics(tmp_path):
    broker = Broker(tmp_path)          # not started yet: the hall's broker is still booting
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HALLGRID_")},
           "HALLGRID_SITE": str(demo_site_without_users(tmp_path)), "HALLGRID_MQTT": broker.url, "HALLGRID_HTTP": f"127.0.0.1:{port}",
           "HALLGRID_STATE_DIR": str(tmp_path / "state"), "HALLGRID_TOKEN": TOKEN, "HALLGRID_LOG_FORMAT": "json"}
    proc = subprocess.Popen([str(HALLGRID), "hub"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: httpx.get(f"{url}/livez").status_code == 200, 30, "liveness")
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"mqtt": "not connected", "database": "ok"}
        time.sleep(11)                 # the old hub gave up after 10 s
        assert proc.poll() is None, "the hub keeps retrying while the broker is down"
        assert httpx.get(f"{url}/readyz").status_code == 503
        broker.start()
        assert wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, 30, "readiness after the broker")

        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{url}/metrics").status_code == 401, "metrics need a login like the API"
        ok = httpx.post(f"{url}/api/sites/demo-hall/tickets", headers=auth, timeout=10,
                        json={"event": "issued", "ticket": "A001", "service": "billing"})
        assert ok.status_code == 202, ok.text
        bad = httpx.post(f"{url}/api/sites/demo-hall/tickets", headers=auth, json={"event": "bogus"}, timeout=10)
        assert bad.status_code == 422
        got = metrics(url)
        assert got[("hallgrid_hub_build_info", (("version", "0.1.0"),))] == 1
        assert got[("hallgrid_hub_messages_total", (("result", "ok"), ("source", "ticket")))] == 1
        assert got[("hallgrid_hub_messages_total", (("result", "rejected"), ("source", "ticket")))] == 1
        assert got[("hallgrid_hub_queue_waiting_tickets", (("service", "billing"), ("site", "demo-hall")))] == 1
        assert got[("hallgrid_hub_queue_waiting_tickets", (("service", "newline"), ("site", "demo-hall")))] == 0
        assert got[("hallgrid_hub_evaluation_seconds_count", ())] >= 1
        assert got[("hallgrid_hub_ready", ())] == 1
        stats = httpx.get(f"{url}/api/stats", headers=auth).json()
        assert stats["version"] == "0.1.0" and stats["ready"] is True
        assert (tmp_path / "state" / "hub.db").is_file() and not list(tmp_path.glob("*.db"))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        broker.stop()
    assert proc.returncode == 0, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("{") for line in lines if not line.startswith("warning: no broker account")), lines
    logs = [json.loads(line) for line in lines if line.startswith("{")]
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in logs)
    assert any(r["level"] == "WARNING" and "unreachable; retrying" in r["message"] for r in logs)
    assert TOKEN not in out + err, "no credential in the log"


@pytest.fixture
def open_hub(tmp_path):
    from calibration.site import load_site
    from hub.api import create_app
    from hub.service import Hub
    from hub.storage import Storage

    hub = Hub([load_site(DEMO_SITE)], Storage(f"sqlite:///{tmp_path / 'hub.db'}"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(hub, None), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, "uvicorn")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_docs_load_in_a_browser_with_every_outside_request_blocked(open_hub, browser):
    outside: list[str] = []
    page = browser.new_page()

    def route(r):
        if r.request.url.startswith(open_hub):
            return r.continue_()
        outside.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    page.goto(f"{open_hub}/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "hallgrid hub" in page.inner_text(".swagger-ui .info .title")
    page.locator(".opblock-summary-path", has_text="/api/sites/{site}/tickets").first.wait_for(timeout=30_000)
    page.close()
    assert outside == [], f"/docs reached outside the hub: {outside}"
    assert httpx.get(f"{open_hub}/redoc").status_code == 404, "ReDoc (CDN only) is off"


def test_readyz_names_an_unreachable_database(tmp_path):
    from hub.ops.health import database_problem
    from hub.storage import Storage

    storage = Storage(f"sqlite:///{tmp_path / 'hub.db'}")
    assert database_problem(storage) is None
    storage.engine.dispose()
    (tmp_path / "hub.db").unlink()
    (tmp_path / "hub.db").mkdir()      # the database file is gone and its path is a folder: no connection
    problem = database_problem(storage)
    assert problem and problem.startswith("OperationalError")


@pytest.mark.usefixtures("need_footage")
def test_edge_readiness_names_the_camera_that_delivers_nothing_without_its_password(tmp_path, broker):
    from conftest import EXAMPLE_SITE

    closed = free_port()
    site = tmp_path / "site.yaml"
    site.write_text(EXAMPLE_SITE.read_text().replace("sample://vtest.avi", f"rtsp://admin:s3cret@127.0.0.1:{closed}/l"))
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HALLGRID_")},
           "HALLGRID_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen([str(HALLGRID), "edge", "--site", str(site), "--mqtt", broker.url, "--metrics-port",
                             str(port), "--stall", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: httpx.get(f"{url}/livez").status_code == 200, 60, "edge liveness")

        def refused():
            got = httpx.get(f"{url}/readyz")
            return got if "cannot open" in got.json()["checks"]["camera cam1"] else None

        ready = wait_for(refused, 60, "the camera's failure in /readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["mqtt cam1"] == "ok"
        assert "admin:***@" in ready.text and "s3cret" not in ready.text
        assert "hallgrid_edge_build_info" in httpx.get(f"{url}/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert "s3cret" not in out + err, "no camera password in the log"
