"""Two `hallgrid hub` processes split two sites on one Mosquitto by configuration (--sites)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import paho.mqtt.client as mqtt
import pytest

from conftest import REPO, free_port
from hub.tickets import tickets_topic

from test_hub_site import HALL_YAML
from test_hub_scenario import wait_until


def start_hub(site_files, only: str, broker, db: str, port: int, log) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from hub.cli import main; main()", "hub", "--no-auth", "--sites", only,
           "--mqtt", f"mqtt://127.0.0.1:{broker.port}", "--db", db, "--http", f"127.0.0.1:{port}"]
    for f in site_files:
        cmd += ["--site", str(f)]
    env = {**os.environ, "HALLGRID_MQTT_USERNAME": "hub", "HALLGRID_MQTT_PASSWORD": broker.password("hub")}
    return subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)


def api_up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/sites", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.timeout(90)
def test_two_hubs_split_two_sites(broker, tmp_path, db_url):
    """Each hub its own SQLite file, or both on one shared PostgreSQL database (the cluster layout)."""
    files = []
    for sid in ("hall-1", "hall-2"):
        f = tmp_path / f"{sid}.yaml"
        f.write_text(HALL_YAML.replace("id: hall-1", f"id: {sid}", 1).replace("min_duration_s: 60", "min_duration_s: 0"))
        files.append(f)
    ports = [free_port(), free_port()]
    logs = [open(tmp_path / f"hub{i}.log", "w") for i in range(2)]
    dbs = [f"sqlite:///{tmp_path / f'hub{i}.db'}" for i in range(2)] if db_url.startswith("sqlite") else [db_url] * 2
    procs = [start_hub(files, f"hall-{i + 1}", broker, dbs[i], ports[i], logs[i]) for i in range(2)]
    pubs = {sid: broker.login(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2), f"tickets-{sid}")
            for sid in ("hall-1", "hall-2")}
    try:
        wait_until(lambda: all(api_up(p) for p in ports), timeout=30, what="both hubs' APIs")
        assert [[s["id"] for s in httpx.get(f"http://127.0.0.1:{p}/api/sites").json()] for p in ports] == \
            [["hall-1"], ["hall-2"]]
        for sid, pub in pubs.items():   # no counter open: a waiting billing ticket is a long wait at once
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            pub.publish(tickets_topic(sid), json.dumps({"event": "issued", "ticket": f"{sid}-1", "service": "billing"}),
                        qos=1).wait_for_publish()

        def long_waits(port):
            return [(a["site"], a["key"]) for a in httpx.get(f"http://127.0.0.1:{port}/api/alerts").json()
                    if a["kind"] == "long_wait"]

        wait_until(lambda: long_waits(ports[0]) and long_waits(ports[1]), timeout=15, what="an alert on each hub")
        assert long_waits(ports[0]) == [("hall-1", "long_wait:billing")]
        assert long_waits(ports[1]) == [("hall-2", "long_wait:billing")]
        stats = [httpx.get(f"http://127.0.0.1:{p}/api/stats").json()["counters"] for p in ports]
        assert stats[0]["ticket_ok"] == 1 and stats[1]["ticket_ok"] == 1      # each saw only its own site
        assert "mqtt_rejected" not in stats[0] and "mqtt_rejected" not in stats[1]
    finally:
        for pub in pubs.values():
            pub.loop_stop()
            pub.disconnect()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()
