"""Issue 13, the MQTT side: a real Mosquitto running the ACL `hallgrid broker-config` writes, the real hub.

Every finding of the review is reproduced against the real parts and must now be refused: the anonymous
retained "FIRE ALARM", a fake acknowledged alert hiding the real one, an alert id ``evil#1``, ``seq=9e18``,
a ticket lost while the hub restarts, a 1 MB payload; and the hub keeps serving good input throughout.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from calibration.site import SiteError, parse_site
from edge.clock import ManualClock, SystemClock
from edge.contract import MAX_PAYLOAD, OccupancyMessage, iso_ts, occupancy_topic
from edge.mqtt_url import parse_broker_url
from hub.cli import cli
from hub.service import Hub
from hub.storage import Storage, occupancy
from hub.tickets import tickets_topic
from conftest import Broker, free_port, mosquitto_binary
from test_hub_scenario import T0, wait_until
from test_hub_site import HALL_YAML, hall_site

pytestmark = pytest.mark.timeout(120)


class Client:
    """A paho client logged in as ``account`` (None: anonymous); records what it receives."""

    def __init__(self, broker: Broker, account: str | None, subscribe: str | None = None):
        self.refused: str | None = None
        self.messages: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if account:
            broker.login(self.client, account)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.subscribe = subscribe
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        wait_until(lambda: self.ready.is_set() or self.refused, what=f"{account or 'anonymous'} connecting")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.refused = str(reason_code)
            client.disconnect()
        elif self.subscribe:
            client.subscribe(self.subscribe, qos=1)
        else:
            self.ready.set()

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def alert_json(alert_id: str, hub: str, **over) -> str:
    now = iso_ts(time.time())
    data = dict(id=alert_id, site="hall-1", key="over_capacity:waiting-a", kind="over_capacity", level="critical",
                state="open", owner="hall", suggestion="FIRE ALARM: evacuate", figures={}, raised_at=now,
                updated_at=now, escalations=0, hub=hub, v=1)
    return json.dumps({**data, **over})


def test_broker_config_command_writes_a_config_mosquitto_runs_with_roles(tmp_path, monkeypatch):
    site = tmp_path / "hall.yaml"
    site.write_text(HALL_YAML)
    port = free_port()
    monkeypatch.setenv("HALLGRID_BROKER_PASSWORD_HUB", "given-through-the-environment")
    out = tmp_path / "broker"
    result = CliRunner().invoke(cli, ["broker-config", "--site", str(site), "--out", str(out),
                                      "--listen", f"127.0.0.1:{port}", "--no-persistence",
                                      "--edge", "box-a=hall-1:cam1", "--run-as", os.environ.get("USER", "root")])
    assert result.exit_code == 0, result.output
    creds = {p.stem: dict(line.split("=", 1) for line in p.read_text().splitlines() if "=" in line)
             for p in (out / "credentials").glob("*.env")}
    assert sorted(creds) == ["box-a", "hub", "tickets-hall-1"]
    assert creds["hub"]["HALLGRID_MQTT_PASSWORD"] == "given-through-the-environment"
    for c in creds.values():                              # nothing secret printed, files private
        assert c["HALLGRID_MQTT_PASSWORD"] not in result.output
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in [out / "passwd", *(out / "credentials").glob("*")])
    assert "allow_anonymous false" in (out / "mosquitto.conf").read_text()
    assert "given-through" not in (out / "passwd").read_text()    # only PBKDF2 hashes

    proc = subprocess.Popen([mosquitto_binary(), "-c", str(out / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        broker = Generated(port, {name: c["HALLGRID_MQTT_PASSWORD"] for name, c in creds.items()})
        wait_until(lambda: _port_open(port), what="mosquitto")
        hub = Client(broker, "hub", subscribe="hallgrid/hall-1/#")
        assert Client(broker, None).refused == "Not authorized"
        assert Client(Generated(port, {"tickets-hall-1": "a guess"}), "tickets-hall-1").refused == "Not authorized"
        box, feed = Client(broker, "box-a"), Client(broker, "tickets-hall-1")
        box.publish("hallgrid/hall-1/cam1/entrance/occupancy", "mine")
        box.publish("hallgrid/hall-1/cam2/counter-1/occupancy", "not my camera")
        box.publish("hallgrid/hall-1/tickets", "not my role")
        box.publish("hallgrid/hall-1/alerts/fire", "not my role")
        feed.publish("hallgrid/hall-1/cam1/entrance/occupancy", "not my role")
        feed.publish("hallgrid/hall-1/tickets", "ticket")
        Client(broker, "hub").publish("hallgrid/hall-1/alerts/a1", "alert")
        wait_until(lambda: len(hub.messages) >= 3, what="the allowed messages")
        time.sleep(0.5)                                   # anything denied would have arrived by now
        assert sorted(p.decode() for _, p in hub.messages) == ["alert", "mine", "ticket"]
    finally:
        proc.terminate()
        proc.wait(10)


class Generated:
    """The accounts of a generated configuration, in the shape ``Client`` expects of the broker fixture."""

    def __init__(self, port: int, passwords: dict[str, str]):
        self.port, self.passwords = port, passwords

    def login(self, client, account: str):
        client.username_pw_set(account, self.passwords[account])
        return client


def _ready(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _port_open(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_forged_alerts_are_refused_by_the_broker_and_the_hub(broker, tmp_path, caplog):
    hub = Hub([hall_site(min_duration_s=0)], Storage(f"sqlite:///{tmp_path / 'hub.db'}"), clock=SystemClock(),
              mqtt_url=broker.url, hub_id="hub-a", peers=("hub-b",), evaluate_on_message=False)
    hub.start()
    watcher = Client(broker, "hub", subscribe="hallgrid/hall-1/alerts/+")
    intruder_box = Client(broker, "edge-hall-1")             # a stolen edge box password
    peer = Client(broker, "hub")                             # a hub account (the ACL lets only hubs write alerts)
    feed = Client(broker, "tickets-hall-1")
    try:
        # 1. anonymous: refused at the door; an edge box's retained alert is dropped by the ACL
        assert Client(broker, None).refused == "Not authorized"
        intruder_box.publish("hallgrid/hall-1/alerts/fire-1", alert_json("fire-1", "hub-b"), retain=True)
        # 2. a hub account that is not a configured peer; a fake acknowledged long wait; 'evil#1'
        peer.publish("hallgrid/hall-1/alerts/fire-2", alert_json("fire-2", "rogue"), retain=True)
        peer.publish("hallgrid/hall-1/alerts/fake-ack", alert_json(
            "fake-ack", "rogue", key="long_wait:billing", kind="long_wait", state="acknowledged",
            acknowledged_by="duty", acknowledged_at=iso_ts(time.time()), suggestion="all fine"), retain=True)
        peer.publish("hallgrid/hall-1/alerts/evil-1", alert_json("evil#1", "hub-b"), retain=True)
        hub.handle("hallgrid/hall-1/alerts/evil#1", alert_json("evil#1", "hub-b").encode())
        peer.publish("hallgrid/hall-1/alerts/late", alert_json("late", "hub-b", raised_at="2099-01-01T00:00:00Z",
                                                               updated_at="2099-01-01T00:00:00Z"), retain=True)
        # 3. a configured peer's well-formed alert is adopted (the sentinel: everything before it was handled)
        peer.publish("hallgrid/hall-1/alerts/peer-1", alert_json("peer-1", "hub-b", suggestion="Waiting area full"),
                     retain=True)
        wait_until(lambda: hub.stats["alerts_adopted"] == 1, what="the peer's alert adopted")
        wait_until(lambda: hub.stats["alert_rejected"] == 5, what="the forged alerts refused")
        reasons = [d["reason"] for d in hub.drops]
        assert sum("not a configured peer" in r for r in reasons) == 2
        assert sum("is not letters, digits" in r for r in reasons) == 2
        assert any("is in the future" in r for r in reasons)
        assert "fire-1" not in {t.rsplit("/", 1)[1] for t, _ in watcher.messages}   # the broker dropped it
        assert [a.id for a in hub.alerts()] == ["peer-1"]

        # the real condition still raises: the fake acknowledged alert hid nothing
        feed.publish(tickets_topic("hall-1"), json.dumps({"event": "issued", "ticket": "A1", "service": "billing"}))
        wait_until(lambda: hub.stats["ticket_ok"] == 1, what="the ticket")
        hub.tick()                                           # never fails on what was refused (evil#1)
        real = hub.alerts()
        long_wait = next(a for a in real if a.key == "long_wait:billing")
        assert long_wait.state == "open" and long_wait.hub == "hub-a" and hub.stats["errors"] == 0
        # an adopted copy never changes an alert this hub owns: a retained "acknowledged" copy of it is ignored
        forged = json.loads(long_wait.to_json()) | {"state": "acknowledged", "acknowledged_by": "duty",
                                                     "acknowledged_at": iso_ts(time.time())}
        peer.publish(f"hallgrid/hall-1/alerts/{long_wait.id}", json.dumps(forged), retain=True)
        peer.publish("hallgrid/hall-1/alerts/peer-2", alert_json("peer-2", "hub-b", key="long_wait:billing",
                                                                 kind="long_wait", state="acknowledged"), retain=True)
        wait_until(lambda: any(json.loads(p).get("state") == "acknowledged" for t, p in watcher.messages
                               if t.endswith("/peer-2")), what="the copies on the broker")
        time.sleep(0.5)
        hub.tick()
        assert hub.active_keys()["long_wait:billing"] == long_wait.id
        assert hub.alerts(active_only=False)[-1].id != "peer-2"
        assert hub.storage.alerts(state="acknowledged") == [] and hub.stats["alerts_adopted"] == 1
    finally:
        for c in (watcher, intruder_box, peer, feed):
            c.close()
        hub.stop()


def test_a_ticket_published_while_the_hub_restarts_is_applied(broker, tmp_path):
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    clock = ManualClock(time.time())
    first = Hub([hall_site()], Storage(db), clock=clock, mqtt_url=broker.url, hub_id="hub-a")
    first.start()
    first.stop()
    feed = Client(broker, "tickets-hall-1")
    try:
        feed.publish(tickets_topic("hall-1"), json.dumps({"event": "issued", "ticket": "A7", "service": "billing",
                                                          "ts": iso_ts(clock.now())}))
        again = Hub([hall_site()], Storage(db), clock=clock, mqtt_url=broker.url, hub_id="hub-a")
        again.start()
        try:
            wait_until(lambda: again.stats["ticket_ok"] == 1, what="the ticket sent while the hub was away")
            assert [t.ticket for t in again.sites["hall-1"].book.waiting("billing")] == ["A7"]
        finally:
            again.stop()
    finally:
        feed.close()


def test_seq_and_epoch_bounds_never_freeze_a_zone_and_a_new_epoch_is_taken(broker, tmp_path):
    clock = ManualClock(T0 + 600)
    hub = Hub([hall_site()], Storage(f"sqlite:///{tmp_path / 'hub.db'}"), clock=clock, mqtt_url=broker.url)
    hub.start()
    box = Client(broker, "edge-hall-1")
    topic = occupancy_topic("hall-1", "cam1", "entrance")

    def send(count: int, seq: int, epoch: int, ts: float = T0) -> None:
        box.publish(topic, OccupancyMessage("hall-1", "cam1", "entrance", iso_ts(ts), count, count, seq,
                                            epoch=epoch).to_json())

    try:
        old_box = int(T0 * 1000) - 86_400_000
        send(4, 1000, old_box)
        box.publish(topic, json.dumps(json.loads(OccupancyMessage("hall-1", "cam1", "entrance", iso_ts(T0), 9, 9, 1,
                                                                  epoch=old_box).to_json()) | {"seq": 9 * 10**18}))
        send(9, 5, 2**52)                                    # an epoch far beyond the hub's clock
        send(5, 1001, old_box)
        wait_until(lambda: hub.stats["occupancy_ok"] == 2 and hub.stats["occupancy_rejected"] == 2,
                   what="the good readings and the refusals")
        assert hub.sites["hall-1"].zones["entrance"].count == 5        # not frozen by seq=9e18
        send(6, 1, int(T0 * 1000))                           # a replaced box: new epoch, seq from 1
        send(7, 1002, old_box)                               # the old box's late message: old now
        wait_until(lambda: hub.stats["occupancy_new_epoch"] == 1 and hub.stats["occupancy_old"] == 1,
                   what="the new epoch")
        reading = hub.sites["hall-1"].zones["entrance"]
        assert (reading.count, reading.seq, reading.epoch) == (6, 1, int(T0 * 1000))
        hub.tick()                                           # the storage flush takes every accepted row
        with hub.storage.engine.connect() as conn:
            rows = conn.execute(occupancy.select()).fetchall()
        assert [r.count for r in rows] == [4, 5, 6] and {r.ts for r in rows} == {T0}   # stored at frame time
        # a payload over the limit: the broker disconnects the sender, the hub refuses it before parsing
        hub.handle(topic, b"{" + b" " * MAX_PAYLOAD + b"}")
        assert any("exceeds 65536" in d["reason"] for d in hub.drops)
        big = Client(broker, "edge-hall-1")
        big.client.publish(topic, json.dumps({"camera": "c" * 1_000_000}), qos=1)
        wait_until(lambda: not big.client.is_connected(), what="the broker to drop the 1 MB publisher")
        big.close()
        send(8, 2, int(T0 * 1000))                           # and good input is still served
        wait_until(lambda: hub.sites["hall-1"].zones["entrance"].count == 8, what="a good reading after all that")
        assert hub.stats["errors"] == 0
    finally:
        box.close()
        hub.stop()


def test_a_hub_with_a_wrong_password_says_refused_never_the_password(broker, tmp_path, caplog):
    """The receiver process logs the broker's refusal (through the hub's log) and keeps trying; the start
    gives up with the redacted URL, and the password is in no log line."""
    wrong = "not-the-hub-password-4711"
    hub = Hub([hall_site()], Storage(f"sqlite:///{tmp_path / 'hub.db'}"), clock=ManualClock(T0),
              mqtt_url=f"mqtt://hub:{wrong}@127.0.0.1:{broker.port}")
    with pytest.raises(RuntimeError, match=r"cannot reach the MQTT broker at mqtt://hub:\*\*\*@127.0.0.1"):
        hub.start(wait_s=3)
    hub.stop()
    assert "MQTT connect refused" in caplog.text
    assert wrong not in caplog.text and broker.password("hub") not in caplog.text


def test_site_file_takes_credentials_from_the_environment():
    text = HALL_YAML.replace("source: rtsp://cam1", "source: rtsp://admin:${CAM1_PASSWORD}@10.0.0.7/ch1", 1)
    assert "${CAM1_PASSWORD}" in text, "the test hall's first camera source changed"
    site = parse_site(text, "hall.yaml", env={"CAM1_PASSWORD": "S3cret#: x"})
    assert site.cameras[0].source == "rtsp://admin:S3cret#: x@10.0.0.7/ch1"
    with pytest.raises(SiteError) as err:
        parse_site(text, "hall.yaml", env={})
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "CAM1_PASSWORD" in t)
    assert f"hall.yaml:{line}: cameras[0].source: ${{CAM1_PASSWORD}} is not set" in str(err.value)
    assert parse_site(text.replace("${CAM1", "$${CAM1"), "h", env={}).cameras[0].source.startswith(
        "rtsp://admin:${CAM1_PASSWORD}@")


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder) -> None:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate, with the openssl CLI."""
    folder.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=hallgrid-test-ca", cwd=folder)
    (folder / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, extra in (("server", ["-extfile", "ext"]), ("client", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", *extra, cwd=folder)


def test_hub_over_mqtts_with_a_client_certificate_from_the_environment(tmp_path):
    import sys

    import httpx

    from conftest import REPO
    from hub.broker.config import plan_accounts, write_broker_config

    if not __import__("shutil").which("openssl"):
        pytest.fail("openssl is not installed: run .ci/setup")
    certs = tmp_path / "certs"
    make_certificates(certs)
    site = tmp_path / "hall.yaml"
    site.write_text(HALL_YAML)
    port, http = free_port(), free_port()
    files = write_broker_config(tmp_path / "broker", plan_accounts([parse_site(HALL_YAML)]), port=port,
                                persistence=False, tls_cert=str(certs / "server.crt"),
                                tls_key=str(certs / "server.key"), tls_ca=str(certs / "ca.crt"),
                                run_as=__import__("getpass").getuser(), env={})
    broker = subprocess.Popen([mosquitto_binary(), "-c", str(files.conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    env = {**os.environ, "HALLGRID_MQTT": f"mqtts://127.0.0.1:{port}", "HALLGRID_MQTT_USERNAME": "hub",
           "HALLGRID_MQTT_PASSWORD": files.account("hub").password, "HALLGRID_MQTT_CA": str(certs / "ca.crt"),
           "HALLGRID_MQTT_CERT": str(certs / "client.crt"), "HALLGRID_MQTT_KEY": str(certs / "client.key")}
    log = (tmp_path / "hub.log").open("w")
    hub = subprocess.Popen([sys.executable, "-c", "from hub.cli import main; main()", "hub", "--no-auth", "--site",
                            str(site), "--db", f"sqlite:///{tmp_path / 'hub.db'}", "--http", f"127.0.0.1:{http}"],
                           cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    feed = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    try:
        wait_until(lambda: _ready(http), timeout=30, what="the hub's readiness (subscribed over TLS)")
        # the edge's and ticket feeds' way (BrokerSettings.apply, the TLS context the hub's receiver uses too)
        parse_broker_url(f"mqtts://127.0.0.1:{port}", ca_file=str(certs / "ca.crt"), username="tickets-hall-1",
                         password=files.account("tickets-hall-1").password, cert_file=str(certs / "client.crt"),
                         key_file=str(certs / "client.key")).apply(feed)
        feed.connect("127.0.0.1", port)
        feed.loop_start()
        feed.publish(tickets_topic("hall-1"), json.dumps({"event": "issued", "ticket": "T1", "service": "billing"}),
                     qos=1).wait_for_publish(10)
        stats = lambda: httpx.get(f"http://127.0.0.1:{http}/api/stats").json()["counters"]   # noqa: E731
        wait_until(lambda: stats().get("ticket_ok") == 1, what="the ticket over TLS")
        # without a client certificate (but with the right password) the broker never lets it in
        bare = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        bare.username_pw_set("tickets-hall-1", files.account("tickets-hall-1").password)
        bare.tls_set(ca_certs=str(certs / "ca.crt"))
        answers = []
        bare.on_connect = lambda c, u, f, reason_code, p: answers.append(reason_code)
        try:
            bare.connect("127.0.0.1", port)
            for _ in range(30):
                if bare.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                    break
        except OSError:   # ssl.SSLError is one: the handshake refused
            pass
        assert answers == []
    finally:
        feed.loop_stop()
        hub.terminate()
        hub.wait(10)
        broker.terminate()
        broker.wait(10)
        log.close()
    text = (tmp_path / "hub.log").read_text()
    assert "mqtts://hub:***@127.0.0.1" in text and files.account("hub").password not in text
