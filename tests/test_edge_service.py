"""The edge service end to end: real footage, a real Mosquitto, the real ``hallgrid edge`` process."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import cv2
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from ruamel.yaml import YAML

from edge.contract import CameraState, OccupancyMessage, StatusMessage
from edge.outbox import Outbox
from conftest import EXAMPLE_SITE, PETS_VIDEO, REPO

HALLGRID = REPO / ".venv" / "bin" / "hallgrid"
pytestmark = pytest.mark.timeout(90)


def write_site(path: Path, source: str, detect_fps: float = 2, loop: bool = True) -> Path:
    """The example site's zones, with the camera reading ``source``."""
    yaml = YAML(typ="safe")
    site = yaml.load(EXAMPLE_SITE.read_text())
    cam = site["cameras"][0]
    cam.update(source=source, detect_fps=detect_fps, loop=loop)
    with path.open("w") as fh:
        yaml.dump(site, fh)
    return path


class Subscriber:
    """A paho client (the hub's account) recording every message of the site, re-subscribing after a broker restart."""

    def __init__(self, broker, site: str = "demo-hall"):
        self.messages: list[tuple[str, bytes, float]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-sub-{os.getpid()}-{broker.port}")
        broker.login(self.client, "hub")
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        self.client.on_connect = lambda c, *_: c.subscribe(f"hallgrid/{site}/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload, time.time()))

    def occupancy(self) -> list[OccupancyMessage]:
        with self.lock:
            return [OccupancyMessage.from_json(p) for t, p, _ in self.messages if t.endswith("/occupancy")]

    def occupancy_received(self) -> list[tuple[str, OccupancyMessage, float]]:
        """(topic, message, wall time received) of every occupancy message."""
        with self.lock:
            return [(t, OccupancyMessage.from_json(p), at) for t, p, at in self.messages if t.endswith("/occupancy")]

    def statuses(self) -> list[StatusMessage]:
        with self.lock:
            return [StatusMessage.from_json(p) for t, p, _ in self.messages if t.endswith("/status")]

    def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = predicate()
            if got:
                return got
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def wait_state(self, state: CameraState, timeout: float, after: int = 0) -> StatusMessage:
        return self.wait_for(lambda: next((s for s in self.statuses()[after:] if s.state is state), None),
                             timeout, f"status {state.value}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Edge:
    """``hallgrid edge`` as a real subprocess, logged in as the site's edge box through the environment."""

    def __init__(self, tmp_path: Path, site: Path, broker, *extra: str, outbox: Path | None = None,
                 account: str = "edge-demo-hall"):
        self.path = tmp_path / f"edge-{time.monotonic_ns()}.log"
        self.log = self.path.open("w")
        env = {**os.environ, "HALLGRID_MQTT": f"mqtt://127.0.0.1:{broker.port}", "HALLGRID_MQTT_USERNAME": account,
               "HALLGRID_MQTT_PASSWORD": broker.password(account)}
        self.proc = subprocess.Popen(
            [str(HALLGRID), "edge", "--site", str(site),
             "--outbox", str(outbox or tmp_path / "outbox.db"), "--heartbeat", "1", "--stall", "1.5", *extra],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture
def subscriber(broker):
    sub = Subscriber(broker)
    sub.wait_for(lambda: sub.client.is_connected(), 10, "the test subscriber to connect")
    yield sub
    sub.close()


@pytest.fixture
def pets_site(tmp_path, need_footage):
    return write_site(tmp_path / "site.yaml", str(PETS_VIDEO))


@pytest.fixture
def edges():
    started: list[Edge] = []
    yield started
    for e in started:
        e.stop()


def seqs_in_order(messages: list[OccupancyMessage]) -> list[int]:
    """Received seqs with exact re-deliveries (at-least-once) removed, keeping arrival order."""
    seen, out = set(), []
    for m in messages:
        if m.seq not in seen:
            seen.add(m.seq)
            out.append(m.seq)
    return out


def test_sample_footage_publishes_occupancy_per_zone(tmp_path, broker, subscriber, pets_site, edges):
    edges.append(Edge(tmp_path, pets_site, broker))
    subscriber.wait_state(CameraState.ONLINE, 30)
    subscriber.wait_for(lambda: len(subscriber.occupancy()) >= 12, 30, "12 occupancy messages")
    msgs = subscriber.occupancy()
    zones = {"entrance", "waiting-a", "waiting-b", "self-service"}
    assert {m.zone for m in msgs} == zones
    assert all(m.site == "demo-hall" and m.camera == "cam1" and m.v == 2 for m in msgs)
    assert all(m.capacity in (3, 4) and 0 <= m.count <= 30 for m in msgs)
    seqs = [m.seq for m in msgs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "seq strictly increasing per camera"
    assert sum(m.count for m in msgs) > 0, "people are counted in the walkway footage"
    status = subscriber.statuses()[-1]
    assert status.camera == "cam1" and status.outbox_dropped == 0


def test_broker_outage_loses_nothing_and_keeps_order(tmp_path, broker, subscriber, pets_site, edges):
    edges.append(Edge(tmp_path, pets_site, broker))
    subscriber.wait_for(lambda: len(subscriber.occupancy()) >= 6, 30, "occupancy before the outage")
    broker.stop()
    down_from = time.time()
    time.sleep(5)
    up_again = time.time()
    broker.start()
    before = max(m.seq for m in subscriber.occupancy())
    subscriber.wait_for(lambda: any(m.seq > before + 25 for m in subscriber.occupancy()), 30,
                        "the backlog and fresh counts after the broker returns")
    msgs = subscriber.occupancy()
    seqs = seqs_in_order(msgs)
    assert seqs == sorted(seqs), "backlog arrives in order"
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "no seq missing across the outage"
    from edge.contract import parse_ts
    during = [m for m in msgs if down_from + 0.5 < parse_ts(m.ts) < up_again - 0.5]
    assert len(during) >= 4, "the edge kept counting while the broker was down"


def test_sigkill_leaves_offline_and_seq_survives_restart(tmp_path, broker, subscriber, pets_site, edges):
    edge = Edge(tmp_path, pets_site, broker)
    edges.append(edge)
    subscriber.wait_state(CameraState.ONLINE, 30)
    subscriber.wait_for(lambda: len(subscriber.occupancy()) >= 4, 30, "occupancy")
    gone = len(subscriber.statuses())  # taken before the kill: the will can arrive within milliseconds
    edge.proc.kill()
    edge.proc.wait()
    offline = subscriber.wait_state(CameraState.OFFLINE, 10, after=gone)
    assert "last will" in offline.detail
    seen = {m.seq for m in subscriber.occupancy()}
    last = max(seen)
    edges.append(Edge(tmp_path, pets_site, broker))
    subscriber.wait_state(CameraState.ONLINE, 30, after=gone)
    # rows the broker had but whose PUBACK the killed process never stored are sent again with their own seq
    # (at least once); every new count continues the numbering
    new = lambda: [m.seq for m in subscriber.occupancy() if m.seq not in seen]   # noqa: E731
    subscriber.wait_for(new, 30, "occupancy after restart")
    assert min(new()) > last, "seq continues after a restart"


def test_lost_camera_reports_camera_lost_and_recovers(tmp_path, broker, subscriber, edges, need_footage):
    clip = tmp_path / "clip.avi"
    cap = cv2.VideoCapture(str(PETS_VIDEO))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (768, 576))
    for _ in range(15):  # a 1.5 s clip, looped: its end comes round often
        writer.write(cap.read()[1])
    writer.release()
    cap.release()
    site = write_site(tmp_path / "site.yaml", str(clip))
    edges.append(Edge(tmp_path, site, broker))
    subscriber.wait_state(CameraState.ONLINE, 30)
    n = len(subscriber.statuses())
    clip.rename(tmp_path / "away.avi")
    lost = subscriber.wait_state(CameraState.CAMERA_LOST, 10, after=n)
    assert lost.detail
    n = len(subscriber.statuses())
    (tmp_path / "away.avi").rename(clip)
    subscriber.wait_state(CameraState.ONLINE, 15, after=n)
    seen = len(subscriber.occupancy())
    subscriber.wait_for(lambda: len(subscriber.occupancy()) > seen, 10, "counts again after recovery")


@pytest.mark.parametrize("args, expected", [
    (["--mqtt", "http://127.0.0.1:1883"], "broker URL"),
    (["--mqtt", "mqtt://127.0.0.1:notaport"], "broker URL"),
    (["--mqtt", "mqtt://"], "no host"),
])
def test_malformed_broker_url_is_a_clear_error(tmp_path, pets_site, args, expected):
    got = subprocess.run([str(HALLGRID), "edge", "--site", str(pets_site), *args], capture_output=True, text=True,
                         timeout=60)
    assert got.returncode == 2
    assert got.stderr.startswith("error: ") and expected in got.stderr and "Traceback" not in got.stderr


def test_malformed_site_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: demo hall\nname: x\ncameras:\n  - id: cam1\n    source: a.avi\n    detect_fps: -1\n")
    got = subprocess.run([str(HALLGRID), "edge", "--site", str(bad), "--mqtt", "mqtt://127.0.0.1:1"],
                         capture_output=True, text=True, timeout=60)
    assert got.returncode == 2 and "Traceback" not in got.stderr
    assert [line for line in got.stderr.splitlines() if line.startswith("error:")] == [f"error: {bad}:1: id: 'demo hall' may use only letters, digits, '_' and '-' "
                                       "(up to 64, starting with a letter or digit): it becomes part of MQTT topics",
                                       f"error: {bad}:6: cameras[0].detect_fps: must be more than 0.0 (got -1)"]


def test_outbox_is_bounded_and_keeps_seq(tmp_path):
    box = Outbox(tmp_path / "o.db", max_rows=3)
    for _ in range(5):
        box.add("cam1", lambda seq: ("t", str(seq)))
    assert [r.payload for r in box.oldest("cam1", 10)] == ["3", "4", "5"]
    assert box.dropped() == 2 and box.depth() == 3
    box.close()
    again = Outbox(tmp_path / "o.db", max_rows=3)
    assert again.add("cam1", lambda seq: ("t", str(seq))).payload == "6"
    assert again.dropped() == 3


def test_outbox_counts_in_memory_follow_add_ack_trim_and_reopen(tmp_path):
    box = Outbox(tmp_path / "o.db", max_rows=4)
    rows = box.add_many("cam1", [lambda seq: ("t", f"a{seq}"), lambda seq: ("t", f"b{seq}")])
    assert [r.payload for r in rows] == ["a1", "b2"], "one seq per message, in order, in one transaction"
    box.add("cam2", lambda seq: ("t", str(seq)))
    assert (box.depth(), box.depth("cam1"), box.depth("cam2"), box.depth("nope")) == (3, 2, 1, 0)
    box.ack(rows[0].id)
    box.ack(rows[0].id)  # a second acknowledgement of the same row changes nothing
    assert (box.depth(), box.depth("cam1")) == (2, 1)
    box.add_many("cam2", [lambda seq: ("t", str(seq))] * 3)  # 5 rows > 4: cam1's oldest goes
    assert (box.depth(), box.depth("cam1"), box.depth("cam2"), box.dropped()) == (4, 0, 4, 1)
    box.close()
    again = Outbox(tmp_path / "o.db", max_rows=4)
    assert (again.depth(), again.depth("cam1"), again.depth("cam2"), again.dropped()) == (4, 0, 4, 1)
    assert again.add("cam1", lambda seq: ("t", str(seq))).payload == "3"
    again.close()


def test_frame_slots_never_give_one_camera_to_two_workers():
    import numpy as np

    from edge.service import FrameSlots

    slots = FrameSlots(["a", "b"], lambda cam: None)
    frame = np.zeros((2, 2, 3), np.uint8)
    slots.put("a", frame, 1.0)
    assert slots.take(0.01)[::2] == ("a", 1.0)
    slots.put("a", frame, 2.0)
    slots.put("b", frame, 2.0)
    assert slots.take(0.01)[0] == "b", "a is busy: its newer frame waits"
    assert slots.take(0.01) is None
    got = []
    waiter = threading.Thread(target=lambda: got.append(slots.take(5)))
    waiter.start()
    time.sleep(0.1)
    assert not got
    slots.done("a")  # wakes the waiting worker
    waiter.join(timeout=2)
    assert got and got[0][::2] == ("a", 2.0)
    slots.done("a")
    slots.done("b")
    slots.close()


def test_frame_slots_with_workers_process_each_camera_in_order():
    import numpy as np

    from edge.service import FrameSlots

    cams = ["a", "b", "c"]
    slots = FrameSlots(cams, lambda cam: None)
    frame = np.zeros((1, 1, 3), np.uint8)
    seen: dict[str, list[float]] = {c: [] for c in cams}
    inside: dict[str, int] = {c: 0 for c in cams}
    overlap = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            item = slots.take(0.05)
            if item is None:
                continue
            cam, _, ts = item
            try:
                with lock:
                    inside[cam] += 1
                    overlap.append(inside[cam] > 1)
                time.sleep(0.001)
                seen[cam].append(ts)
                with lock:
                    inside[cam] -= 1
            finally:
                slots.done(cam)

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for w in workers:
        w.start()
    for i in range(300):
        for c in cams:
            slots.put(c, frame, float(i))
        if i % 10 == 0:
            time.sleep(0.002)
    time.sleep(0.2)
    stop.set()
    slots.close()
    for w in workers:
        w.join(timeout=2)
    assert not any(overlap), "a camera was processed by two workers at once"
    for c in cams:
        assert seen[c] and seen[c] == sorted(seen[c]) and seen[c][-1] == 299.0


def test_rate_meter_is_safe_between_a_worker_and_the_supervisor():
    from edge.occupancy import RateMeter

    meter = RateMeter(window_s=0.001)
    errors = []

    def reader() -> None:
        try:
            for _ in range(20_000):
                meter.rate(time.monotonic())
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    for _ in range(20_000):
        meter.tick(time.monotonic())
    t.join()
    assert not errors


class FakeCapture:
    """A source that delivers ``frames`` frames, then stops."""

    def __init__(self, frames: int):
        import numpy as np

        self.left = frames
        self.frame = np.zeros((4, 4, 3), np.uint8)

    def get(self, prop):
        return 0.0

    def grab(self) -> bool:
        self.left -= 1
        return self.left >= 0

    def retrieve(self):
        return True, self.frame

    def release(self) -> None:
        pass


class RecordingStop:
    """Stands in for a reader's stop event: records each backoff wait and stops after ``n`` of them."""

    def __init__(self, n: int):
        self.waits: list[float] = []
        self.n = n

    def is_set(self) -> bool:
        return len(self.waits) >= self.n

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.is_set()

    def set(self) -> None:
        self.n = 0


def run_reader(monkeypatch, spec, sessions: list[int], waits: int):
    """Run a CameraReader's loop inline over fake sources delivering ``sessions[i]`` frames on the i-th open."""
    import edge.sources as sources
    from edge.clock import SystemClock

    opened = iter(sessions)

    def fake_open(_spec, timeout_s: float = 5.0):
        n = next(opened, 0)
        if n < 0:
            raise OSError("cannot open")
        return FakeCapture(n)

    monkeypatch.setattr(sources, "open_capture", fake_open)
    reconnects = []
    reader = sources.CameraReader("cam1", spec, 1000.0, SystemClock(), on_frame=lambda f, ts: None,
                                  on_reconnect=lambda: reconnects.append(1), backoff_s=(0.5, 5.0))
    reader._stop = RecordingStop(waits)
    reader._run()
    return reader._stop.waits, len(reconnects)


def test_reader_backoff_grows_for_a_stream_that_opens_and_fails_at_once(monkeypatch):
    from edge.sources import SourceKind, SourceSpec

    spec = SourceSpec("rtsp://camera/stream", SourceKind.STREAM)
    waits, reconnects = run_reader(monkeypatch, spec, [5, 0, 0, 0, 0, 0, 3, 0], 8)
    assert waits == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 0.5, 1.0], "reset only after a session that delivered frames"
    assert reconnects == 7


def test_reader_looping_a_file_is_not_a_reconnect(monkeypatch):
    from edge.sources import SourceKind, SourceSpec

    spec = SourceSpec("clip.avi", SourceKind.FILE, loop=True)
    waits, reconnects = run_reader(monkeypatch, spec, [3, 3, 3, 3, -1, -1, 3], 3)
    assert reconnects == 2, "four loops of the file, then two failed reopens: only those count"
    assert waits == [0.5, 1.0, 0.5], "it looped again after the reopen: its next loss is retried quickly"
