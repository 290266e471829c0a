"""Hub ingest (hub.ingest): the fast contract reading, batched rule evaluation, the worker thread, shards.

The fast reading must accept and refuse exactly what the reference reading does, with the same words; the
batched path must leave the hub in the state, and with the alerts, that one message at a time leaves; the
worker must keep the order of a site's messages and lose nothing on stop; ``--shard`` must split the sites.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time

import pytest

from calibration.site import parse_site
from edge.clock import ManualClock
from edge.contract import (ContractError, OccupancyMessage, StatusMessage, CameraState, decode_occupancy, iso_ts,
                           occupancy_topic, status_topic)
from hub.ingest import occupancy as ingest
from hub.ingest.receiver import check_topic
from hub.ingest.shard import ShardError, parse_shard, share, shard_of
from hub.service import Hub
from hub.storage import Storage

from test_cli import DEMO_SITE, assert_input_error, run
from conftest import REPO
from test_hub_scenario import AlertWatcher, Edge, wait_until

T0 = 1_764_576_000.0     # 2025-12-01T08:00:00Z
SQUARE = "[[0.0, 0.0], [0.1, 0.0], [0.1, 0.1], [0.0, 0.1]]"


def ingest_site(site_id: str = "hall-1"):
    """Two cameras (cam1, cam2) of four zones; z*-0 are entrances, the others waiting zones of capacity 5; no minimum
    duration or cooldown, so every crossing of a capacity is an alert change."""
    cams = []
    for c in (1, 2):          # the test broker's edge account of hall-1 has cam1 and cam2
        zones = "\n".join(f"      - {{id: z{c}-{z}, name: Zone {c}-{z}, type: {'waiting' if z else 'entrance'}, "
                          f"grid_cell: G{c}, capacity: 5, polygon: {SQUARE}}}" for z in range(4))
        cams.append(f"  - id: cam{c}\n    source: rtsp://cam{c}\n    zones:\n{zones}")
    text = (f"id: {site_id}\nname: Ingest hall\ncameras:\n" + "\n".join(cams) +
            "\nservices:\n  - {id: billing, waiting_zones: [z1-1]}\ncounters:\n  - {id: '1', services: [billing]}\n"
            "rules: {min_duration_s: 0, cooldown_s: 0, capacity_clear_ratio: 0.8}\n")
    return parse_site(text, f"{site_id}.yaml")


def feed(n: int, seed: int, site: str = "hall-1") -> list[tuple[str, bytes]]:
    """``n`` occupancy messages over the site's zones, counts crossing the capacity often, seq per camera."""
    rng = random.Random(seed)
    seq = {"cam1": 0, "cam2": 0}
    out = []
    for _ in range(n):
        cam = rng.choice(["cam1", "cam2"])
        zone = f"z{cam[-1]}-{rng.randrange(4)}"
        seq[cam] += 1
        count = rng.choice([0, 2, 4, 6, 8])
        out.append((occupancy_topic(site, cam, zone),
                    OccupancyMessage(site, cam, zone, iso_ts(T0), count, count, seq[cam]).to_json().encode()))
    return out


# --- the contract's fast reading --------------------------------------------------------------------------
VALUES = [None, True, False, 0, 1, 2, -1, 1.0, 2.0, 9_999, 10_000, 2**53 - 1, 2**53, 2**64, 2**70, "", "x",
          "a" * 65, "a b", "2026-11-23T08:00:00Z", "2026-11-23T08:00:00", "08:00", [], {}]
KEYS = ["v", "site", "camera", "zone", "ts", "count", "raw", "seq", "capacity", "epoch", "extra"]


def reading(fn, payload):
    try:
        return "ok", fn(payload)
    except ContractError as exc:
        return "refused", str(exc)


def test_the_fast_reading_accepts_and_refuses_what_the_reference_does_with_its_words():
    base = json.loads(OccupancyMessage("hall-1", "cam1", "z1", "2026-11-23T08:00:00.123Z", 3, 4, 17, None,
                                       1_700_000_000_000).to_json())
    rng = random.Random(17)
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(4000):
        data = dict(base)
        for _ in range(rng.randint(1, 3)):
            key = rng.choice(KEYS)
            if rng.random() < 0.2:
                data.pop(key, None)
            else:
                data[key] = rng.choice(VALUES)
        payload: bytes | str = json.dumps(data)
        if rng.random() < 0.5:
            payload = payload.encode("utf-16" if rng.random() < 0.1 else "utf-8")
        fast = reading(lambda p: decode_occupancy(p)[0], payload)
        assert fast == reading(OccupancyMessage._checked, payload), payload
        outcomes[fast[0]] += 1
        if fast[0] == "ok":
            msg, frame_ts = decode_occupancy(payload)
            assert msg.to_json() == OccupancyMessage._checked(payload).to_json()
    assert outcomes["ok"] > 200 and outcomes["refused"] > 2000, outcomes
    for broken in (b"\xff\xfe", b"[1,2]", b'{"v": 2', b"NaN", b""):
        assert reading(OccupancyMessage.from_json, broken) == reading(OccupancyMessage._checked, broken)
        assert reading(OccupancyMessage.from_json, broken)[0] == "refused"


def test_orjson_reads_the_hub_s_messages():
    orjson = pytest.importorskip("orjson")     # the hub extra brings it; an edge box reads with json
    from edge import contract

    assert contract._fast_loads is orjson.loads


# --- batches ------------------------------------------------------------------------------------------------
def hub_state(hub: Hub) -> tuple:
    st = hub.sites["hall-1"]
    zones = {z: (r.count, r.raw, r.seq, r.epoch) for z, r in st.zones.items()}
    alerts = sorted((a.key, a.state, a.raised_at, a.resolved_at) for a in hub.managers["hall-1"].by_id.values())
    return zones, alerts, hub.stats["occupancy_ok"], hub.stats["occupancy_old"], hub.stats["alerts_open"], \
        hub.stats["alerts_resolved"]


@pytest.mark.parametrize("batch", [7, 64, 1000])
def test_batches_leave_the_state_and_the_alerts_one_message_at_a_time_leaves(tmp_path, batch):
    msgs = feed(1500, seed=batch)
    msgs += msgs[100:130]               # repeats: old seq, ignored either way
    one = Hub([ingest_site()], Storage(f"sqlite:///{tmp_path / 'one.db'}"), clock=ManualClock(T0))
    for topic, payload in msgs:
        one.handle(topic, payload)
    many = Hub([ingest_site()], Storage(f"sqlite:///{tmp_path / 'many.db'}"), clock=ManualClock(T0))
    readings = [ingest.read(p, "hall-1", *t.split("/")[2:4]) for t, p in msgs]
    for i in range(0, len(readings), batch):
        ingest.apply(many, readings[i:i + batch])
    assert hub_state(many) == hub_state(one)
    assert one.stats["alerts_open"] > 50             # the feed crosses capacities: alerts were judged
    assert many.stats["evaluations"] < one.stats["evaluations"] * (0.5 if batch > 7 else 0.9)
    one.stop(), many.stop()
    assert many.storage.occupancy_count("hall-1") == one.storage.occupancy_count("hall-1") == 1500


def test_a_zone_over_capacity_and_back_within_one_batch_raises_and_resolves(tmp_path):
    hub = Hub([ingest_site()], Storage(f"sqlite:///{tmp_path / 'hub.db'}"), clock=ManualClock(T0))
    readings = [ingest.read(OccupancyMessage("hall-1", "cam1", "z1-1", iso_ts(T0), count, count, seq).to_json(),
                            "hall-1", "cam1", "z1-1") for seq, count in ((1, 2), (2, 9), (3, 1))]
    assert ingest.apply(hub, readings) == [True, True, True]
    assert (hub.stats["alerts_open"], hub.stats["alerts_resolved"]) == (1, 1)


def test_refused_messages_in_a_batch_are_counted_and_logged_in_place(tmp_path, caplog):
    hub = Hub([ingest_site()], Storage(f"sqlite:///{tmp_path / 'hub.db'}"), clock=ManualClock(T0))
    good = OccupancyMessage("hall-1", "cam1", "z1-1", iso_ts(T0), 2, 2, 1)
    far = OccupancyMessage("hall-1", "cam1", "z1-2", iso_ts(T0 + 3 * 86_400), 2, 2, 2)
    batch = [ingest.read(good.to_json(), "hall-1", "cam1", "z1-1"), ("hall-1", "field 'count' is missing"),
             ingest.read(far.to_json(), "hall-1", "cam1", "z1-2")]
    assert ingest.apply(hub, batch) == [True, False, False]
    assert hub.stats["occupancy_rejected"] == 2
    reasons = [d["reason"] for d in hub.drops]
    assert reasons == ["field 'count' is missing", f"frame time {far.ts} is more than a day from the hub's clock"]
    assert "dropped occupancy message for hall-1: field 'count' is missing" in caplog.text


# --- the worker, through a real broker ----------------------------------------------------------------------
def test_the_worker_keeps_each_site_s_order_and_stop_loses_nothing(broker, tmp_path):
    hub = Hub([ingest_site()], Storage(f"sqlite:///{tmp_path / 'hub.db'}"), clock=ManualClock(T0),
              mqtt_url=broker.url)
    at_status = []
    handle = hub.handle

    def recording(topic, payload):      # what the worker had handled when the status message came
        if topic.endswith("/status"):
            at_status.append(hub.stats["occupancy_ok"])
        handle(topic, payload)

    hub.handle = recording
    hub.start()
    edge = Edge(broker)
    try:
        msgs = feed(600, seed=3)
        for topic, payload in msgs:
            edge.client.publish(topic, payload, qos=1)
        # a status after the flood: handled after every occupancy message before it, by the same worker
        edge.raw(status_topic("hall-1", "cam1"), StatusMessage(CameraState.CAMERA_LOST, iso_ts(T0)).to_json())
        edge.raw(occupancy_topic("hall-1", "cam1", "z1-0"), b'{"v": 2, "site": "hall-1"}')     # refused
        wait_until(lambda: hub.stats["status_ok"] == 1, what="the status message")
        assert hub.drain(10)
        assert at_status == [600]             # every occupancy message before the status was handled before it
        assert hub.stats["occupancy_rejected"] == 1 and hub.stats["errors"] == 0
        assert hub.sites["hall-1"].camera_state["cam1"] == CameraState.CAMERA_LOST
        last = {}
        for topic, payload in msgs:
            m = json.loads(payload)
            last[m["zone"]] = m["count"]
        assert {z: r.count for z, r in hub.sites["hall-1"].zones.items()} == last
        for topic, payload in feed(300, seed=4):      # newer seqs (1000...), then stop at once
            edge.client.publish(topic, payload.replace(b'"seq":', b'"seq":1000'), qos=1).wait_for_publish()
    finally:
        edge.close()
        hub.stop()                                  # what the broker delivered is handled, then stored
    assert hub.stats["occupancy_ok"] + hub.stats["occupancy_old"] == 900
    assert hub.storage.occupancy_count("hall-1") == hub.stats["occupancy_ok"]


def test_a_receiver_process_that_dies_is_started_again_and_loses_nothing_the_broker_kept(broker, tmp_path, caplog):
    """paho runs in a child process (hub.ingest.receiver): killed, it is started again, the hub is not ready
    meanwhile, the persistent session brings what was sent meanwhile, an alert raised meanwhile is published
    once it is back, and refusals are counted through it."""
    hub = Hub([ingest_site()], Storage(f"sqlite:///{tmp_path / 'hub.db'}"), clock=ManualClock(T0),
              mqtt_url=broker.url)
    hub.start()
    edge = Edge(broker)
    try:
        first = hub._receiver.pid
        assert first != os.getpid() and hub.ready
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: not hub.ready, what="the hub to see its receiver gone")
        # an alert raised while no receiver runs (cam2's seq jumps: the feed's cam2 messages below are old)
        over = OccupancyMessage("hall-1", "cam2", "z2-3", iso_ts(T0), 9, 9, 1_000_000)
        assert hub.ingest_occupancy(over.to_json(), "hall-1", "cam2", "z2-3")
        (alert,) = hub.alerts("hall-1")
        msgs = feed(200, seed=5)
        for topic, payload in msgs:          # while no receiver is connected: the broker keeps them (QoS 1)
            edge.client.publish(topic, payload, qos=1)
        edge.raw(occupancy_topic("hall-1", "cam1", "z1-0"), b'{"v": 2, "site": "hall-1"}')     # refused
        edge.raw("hallgrid/hall-1/cam1/z1-0/occupancy", b"x" * 66_000)          # over MAX_PAYLOAD, under the broker's limit
        wait_until(lambda: hub.ready and hub.stats["mqtt_receiver_restarts"] == 1, what="a new receiver subscribed")
        second = hub._receiver.pid
        assert second not in (None, first)
        wait_until(lambda: hub.stats["occupancy_rejected"] + hub.stats["mqtt_rejected"] == 2, what="the refusals")
        assert hub.drain(10)
        assert hub.stats["occupancy_ok"] + hub.stats["occupancy_old"] == 201 and hub.stats["errors"] == 0
        assert [d["source"] for d in hub.drops] == ["occupancy", "mqtt"]
        assert "payload of 66000 bytes exceeds" in hub.drops[-1]["reason"]
        assert "dropped occupancy message for hall-1" in caplog.text
        assert "MQTT receiver process ended" in caplog.text
        watcher = AlertWatcher(broker)          # the retained alert topic, as a dashboard reads it
        try:
            wait_until(lambda: alert.id in watcher.latest, what="the alert raised while the receiver was down")
            assert watcher.latest[alert.id]["state"] == "open"
        finally:
            watcher.close()
    finally:
        edge.close()
        hub.stop()
    assert hub._receiver is None and not hub.ready
    with pytest.raises(ProcessLookupError):          # stopped with the hub: no process left behind
        os.kill(second, 0)


def test_an_alert_the_broker_never_acknowledged_reaches_a_broker_that_kept_no_session(broker, tmp_path, caplog):
    """The receiver's client (gmqtt) drops the publications it holds when the broker it reconnects to has no
    session for it; the receiver publishes them again, as paho did. The broker is frozen (SIGSTOP) so the
    alert is written and never acknowledged, then replaced by a new one without persistence."""
    hub = Hub([ingest_site()], Storage(f"sqlite:///{tmp_path / 'hub.db'}"), clock=ManualClock(T0),
              mqtt_url=broker.url)
    hub.start()
    try:
        broker.proc.send_signal(signal.SIGSTOP)
        over = OccupancyMessage("hall-1", "cam1", "z1-2", iso_ts(T0), 9, 9, 1)
        assert hub.ingest_occupancy(over.to_json(), "hall-1", "cam1", "z1-2")
        (alert,) = hub.alerts("hall-1")
        time.sleep(0.5)                          # written to the frozen broker, not acknowledged
        assert hub._receiver._unpublished
        broker.proc.kill()
        broker.proc.wait(10)
        wait_until(lambda: not hub.ready, what="the hub to see the broker gone")
        broker.start()                           # a new broker: persistence off, the hub's session is gone
        wait_until(lambda: hub.ready, what="the hub subscribed again")
        watcher = AlertWatcher(broker)
        try:
            wait_until(lambda: alert.id in watcher.latest, what="the unacknowledged alert published again")
            assert watcher.latest[alert.id]["state"] == "open"
        finally:
            watcher.close()
        wait_until(lambda: not hub._receiver._unpublished, what="the publication acknowledged")
        assert "MQTT connection lost" in caplog.text
    finally:
        hub.stop()


def test_a_topic_mqtt_refuses_is_refused_before_it_reaches_the_receiver():
    check_topic("hallgrid/hall-1/alerts/a1")
    for bad in ("", "hallgrid/+/alerts/a1", "hallgrid/hall-1/alerts/#", "a" * 65_536):
        with pytest.raises(ValueError, match="invalid publish topic"):
            check_topic(bad)


# --- shards -------------------------------------------------------------------------------------------------
def test_shards_split_the_sites_exactly_and_stably():
    ids = [f"hall-{i}" for i in range(40)]
    for n in (1, 2, 3, 4):
        shares = [share(ids, i, n, key=lambda s: s) for i in range(n)]
        assert sorted(s for part in shares for s in part) == sorted(ids)       # each site in exactly one share
        assert all(shard_of(s, n) == i for i, part in enumerate(shares) for s in part)
    for i in range(3):          # a hall added moves no other hall
        grown = share(ids + ["new-hall"], i, 3, key=lambda s: s)
        assert [s for s in grown if s != "new-hall"] == share(ids, i, 3, key=lambda s: s)
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "1", "a/b", "-1/2", "1/0"):
        with pytest.raises(ShardError, match="is not I/N"):
            parse_shard(bad)


def test_hub_shard_option_errors_name_the_option(tmp_path):
    env = {"PYTHONPATH": str(REPO)}     # this checkout's code, whichever the environment's install points at
    got = run("hub", "--site", str(DEMO_SITE), "--shard", "2/2", cwd=tmp_path, env=env)
    assert_input_error(got, r"error: Invalid value for --shard: '2/2' is not I/N with 0 <= I < N .*")
    share_of_demo = shard_of("demo-hall", 2)
    got = run("hub", "--site", str(DEMO_SITE), "--shard", f"{1 - share_of_demo}/2", cwd=tmp_path, env=env)
    assert_input_error(got, r"error: --shard \d/2: none of the sites \(demo-hall\) falls in share \d of 2; .*")
