"""Hub throughput: occupancy messages/s one hub ingests and fuses through a real Mosquitto on loopback.

Numbers from one run, against one broker of its own on a free port:

1. ceilings: the broker's raw throughput with Mosquitto's own C clients (``mosquitto_pub -l``
   per zone topic -> ``mosquitto_sub -C``), and a bare paho subscriber that only counts
   (what any Python consumer can take at QoS 1), fed by the same C publishers;
   plus the hub's own processing rate with no network (``Hub.handle`` in a loop);
2. the hub's ingest+fuse rate through the broker, fed by the same C publishers (parse the contract, update state, evaluate the rules on every
   message whose count changed, for the conditions that depend on its zone; batch-write the occupancy time series to SQLite), flooding as fast as possible;
3. publish->alert latency at a paced 1000 msg/s: trigger messages flip a waiting zone over
   and under its capacity; the latency is until a dashboard subscribed to the alert topic
   receives the alert change (p50/p99).

Run: .venv/bin/python bench/hub_throughput.py [--messages 20000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.site import parse_site  # noqa: E402
from edge.contract import OccupancyMessage, iso_ts, occupancy_topic  # noqa: E402
from hub.service import Hub  # noqa: E402
from hub.storage import Storage  # noqa: E402

SQUARE = "[[0.0, 0.0], [0.1, 0.0], [0.1, 0.1], [0.0, 0.1]]"
CAMERAS, ZONES = 4, 8     # 32 zones: a large hall


def bench_site():
    cams = []
    for c in range(CAMERAS):
        zones = "\n".join(f"      - {{id: z{c}-{z}, name: Zone {c}-{z}, type: {'waiting' if z else 'other'}, "
                          f"grid_cell: G{c}, capacity: 10, polygon: {SQUARE}}}" for z in range(ZONES))
        cams.append(f"  - id: cam{c}\n    source: rtsp://cam{c}\n    zones:\n{zones}")
    text = (f"id: bench\nname: Bench hall\ncameras:\n" + "\n".join(cams) +
            "\nservices:\n  - {id: billing, waiting_zones: [z0-1]}\ncounters:\n  - {id: '1', services: [billing]}\n"
            "rules: {min_duration_s: 0, cooldown_s: 0, capacity_clear_ratio: 0.8}\n")
    return parse_site(text, "bench.yaml")


def start_broker(workdir: Path) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 1000000\nmax_inflight_messages 1000\n")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def client(port: int, on_message=None) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    if on_message:
        c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def messages(n: int, start_seq: int, count_of=lambda i: i % 3):
    out = []
    for i in range(n):
        cam, zone = (i // ZONES) % CAMERAS, 2 + i % (ZONES - 2)       # z*-0/1 stay for triggers
        out.append((occupancy_topic("bench", f"cam{cam}", f"z{cam}-{zone}"),
                    OccupancyMessage("bench", f"cam{cam}", f"z{cam}-{zone}", iso_ts(time.time()), count_of(i),
                                     count_of(i), start_seq + i).to_json()))
    return out


class CPublishers:
    """Mosquitto's C publisher, one process per topic reading its payloads line by line (``-l``).

    A Python publisher tops out below what the broker and the hub can take; these do not.
    """

    def __init__(self, port: int, batch: list[tuple[str, str]], workdir: Path):
        self.port = port
        by_topic: dict[str, list[str]] = {}
        for topic, payload in batch:
            by_topic.setdefault(topic, []).append(payload)
        self.files = []
        for i, (topic, payloads) in enumerate(by_topic.items()):
            path = workdir / f"topic{i}.txt"
            path.write_text("\n".join(payloads) + "\n")
            self.files.append((topic, path))

    def run(self, prefix: str = "") -> list[subprocess.Popen]:
        binary = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
        return [subprocess.Popen([binary, "-p", str(self.port), "-q", "1", "-l", "-t", prefix + topic],
                                 stdin=path.open("rb")) for topic, path in self.files]


def broker_ceiling(port: int, n: int, pubs: CPublishers) -> float:
    """C publishers -> Mosquitto -> C subscriber, QoS 1: what the broker itself moves."""
    binary = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    sub = subprocess.Popen([binary, "-p", str(port), "-q", "1", "-t", "raw/#", "-C", str(n)],
                           stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    t0 = time.perf_counter()
    procs = pubs.run("raw/")
    sub.wait(120)
    dt = time.perf_counter() - t0
    for p in procs:
        p.wait(30)
    return n / dt


def paho_ceiling(port: int, n: int, pubs: CPublishers) -> float:
    """The same feed into a paho subscriber that only counts: the most a Python consumer can take."""
    got, done = [0], threading.Event()

    def on_message(c, u, m):
        got[0] += 1
        if got[0] >= n:
            done.set()

    sub = client(port, on_message)
    sub.subscribe("paho/#", qos=1)
    time.sleep(0.3)
    t0 = time.perf_counter()
    procs = pubs.run("paho/")
    done.wait(120)
    dt = time.perf_counter() - t0
    sub.disconnect(), sub.loop_stop()
    for p in procs:
        p.wait(30)
    return got[0] / dt


def processing_rate(batch: list[tuple[str, str]], workdir: Path) -> float:
    """Hub.handle on the same messages with no network: the hub's own cost per message."""
    hub = Hub([bench_site()], Storage(f"sqlite:///{workdir / 'offline.db'}"), evaluate_on_message=True)
    encoded = [(t, p.encode()) for t, p in batch]
    t0 = time.perf_counter()
    for topic, payload in encoded:
        hub.handle(topic, payload)
    hub.stop()
    return len(encoded) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=1000.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    proc, port = start_broker(work)
    try:
        rng = np.random.default_rng(7)            # counts change on ~3 of 4 messages: rules run on those
        counts = rng.integers(0, 4, args.messages)
        batch = messages(args.messages, 1, count_of=lambda i: int(counts[i]))
        pubs = CPublishers(port, batch, work)
        ceiling = broker_ceiling(port, args.messages, pubs)
        paho_max = paho_ceiling(port, args.messages, pubs)
        offline = processing_rate(batch, work)

        hub = Hub([bench_site()], Storage(f"sqlite:///{work / 'hub.db'}"), mqtt_url=f"mqtt://127.0.0.1:{port}",
                  evaluate_on_message=True)
        hub.start()
        pub = client(port)
        t0 = time.perf_counter()
        procs = pubs.run()
        while hub.stats["occupancy_ok"] < args.messages and time.perf_counter() - t0 < 120:
            time.sleep(0.002)
        flood = hub.stats["occupancy_ok"] / (time.perf_counter() - t0)
        flood_evals = hub.stats["evaluations"]
        for p in procs:
            p.wait(30)

        # paced run with alert triggers
        received: list[float] = []
        watcher = client(port, lambda c, u, m: received.append(time.perf_counter()))
        watcher.subscribe("hallgrid/bench/alerts/+", qos=1)
        time.sleep(0.5)
        received.clear()                                    # retained alerts from before do not count
        base_ok = hub.stats["occupancy_ok"]
        total = int(args.rate * args.seconds)
        load = messages(total, args.messages + 10, count_of=lambda i: i % 2)
        trigger_every = 50                                  # 20 alert changes per second
        sent_at: list[float] = []
        seq = 10
        t0 = time.perf_counter()
        for i, (topic, payload) in enumerate(load):
            target = t0 + i / args.rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pub.publish(topic, payload, qos=1)
            if i % trigger_every == 0:
                seq += 1
                count = 12 if len(sent_at) % 2 == 0 else 2      # over capacity (10) and back
                msg = OccupancyMessage("bench", "cam0", "z0-1", iso_ts(time.time()), count, count, seq)
                sent_at.append(time.perf_counter())
                pub.publish(occupancy_topic("bench", "cam0", "z0-1"), msg.to_json(), qos=1)
        pace_s = time.perf_counter() - t0
        expected = total + len(sent_at)
        deadline = time.perf_counter() + 30
        while (hub.stats["occupancy_ok"] - base_ok < expected or len(received) < len(sent_at)) \
                and time.perf_counter() < deadline:
            time.sleep(0.01)
        lat = np.array([r - s for s, r in zip(sent_at, received)]) * 1000
        hub.stop()
        pub.disconnect(), watcher.disconnect()
        stored = hub.storage.occupancy_count("bench")
        print(f"broker raw throughput (QoS 1, C publishers -> C subscriber): {ceiling:,.0f} msg/s  [ceiling]")
        print(f"bare paho subscriber (QoS 1, counts only), same feed: {paho_max:,.0f} msg/s  [Python ceiling]")
        print(f"hub processing alone (Hub.handle, no network): {offline:,.0f} msg/s")
        print(f"hub ingest+fuse through the broker (flood, {args.messages} msgs, rules on changed counts, "
              f"SQLite batch writes): {flood:,.0f} msg/s ({flood_evals} rule evaluations); "
              f"{flood / ceiling:.2f} of the broker ceiling, {flood / paho_max:.2f} of the paho ceiling")
        print(f"paced run: {total + len(sent_at)} msgs in {pace_s:.1f} s ({(total + len(sent_at)) / pace_s:,.0f} msg/s "
              f"offered), hub took {hub.stats['occupancy_ok'] - base_ok}, {len(received)}/{len(sent_at)} alert changes")
        if len(lat):
            print(f"publish->alert latency at {args.rate:.0f} msg/s (to an MQTT subscriber of the alert topic): "
                  f"p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms "
                  f"(n={len(lat)})")
        print(f"occupancy rows stored: {stored}; dropped: {hub.stats['occupancy_rejected']}")
        print(json.dumps({"broker_msgs_per_s": round(ceiling), "paho_msgs_per_s": round(paho_max),
                          "hub_offline_msgs_per_s": round(offline), "hub_msgs_per_s": round(flood),
                          "p99_alert_latency_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None}))
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
