"""Hub throughput: occupancy messages/s one hub ingests and fuses through a real Mosquitto on loopback.

Numbers from one run, against one broker of its own on a free port; the machine may be shared, so the hub
and the bare paho subscriber run interleaved, ``--repeat`` rounds, and each round's ratio is reported:

1. ceilings: the broker's raw throughput with Mosquitto's own C clients (``mosquitto_pub -l``
   per zone topic -> ``mosquitto_sub -C``), and a bare paho subscriber that only counts
   (the goal's baseline: what the standard Python client takes at QoS 1), fed by the same C publishers,
   and a bare gmqtt subscriber (the client of the hub's receiver process) likewise;
   plus the hub's own processing rate with no network (messages handed to its ingest worker);
2. the hub's ingest+fuse rate through the broker, fed by the same C publishers (parse the contract, update
   state, evaluate the rules once per site per ingest batch for the zones whose count changed, batch-write
   the occupancy time series to SQLite), flooding as fast as possible; with the CPU per message of the bare
   paho subscriber, of the hub's MQTT receiver process and of the hub's own process;
3. several hub processes on the machine, each serving a share of ``--sites`` sites (the ``--sites`` /
   ``--shard`` way of README), against one hub process serving them all and against as many bare paho
   processes, each subscribed to its share: the aggregate rate;
4. publish->alert latency at a paced 1000 msg/s: trigger messages flip a waiting zone over
   and under its capacity; the latency is until a dashboard subscribed to the alert topic
   receives the alert change (p50/p99).

With ``--one-process``, each round also runs the design not taken: the hub fed by a gmqtt client in a thread
of its own process, no receiver child.

Run: .venv/bin/python bench/hub_throughput.py [--messages 20000] [--repeat 3] [--processes 2] [--seconds 10]
     [--one-process]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def bench_site(site_id: str = "bench"):
    cams = []
    for c in range(CAMERAS):
        zones = "\n".join(f"      - {{id: z{c}-{z}, name: Zone {c}-{z}, type: {'waiting' if z else 'other'}, "
                          f"grid_cell: G{c}, capacity: 10, polygon: {SQUARE}}}" for z in range(ZONES))
        cams.append(f"  - id: cam{c}\n    source: rtsp://cam{c}\n    zones:\n{zones}")
    text = (f"id: {site_id}\nname: Bench hall\ncameras:\n" + "\n".join(cams) +
            "\nservices:\n  - {id: billing, waiting_zones: [z0-1]}\ncounters:\n  - {id: '1', services: [billing]}\n"
            "rules: {min_duration_s: 0, cooldown_s: 0, capacity_clear_ratio: 0.8}\n")
    return parse_site(text, f"{site_id}.yaml")


def site_ids(n: int) -> list[str]:
    return ["bench"] if n == 1 else [f"bench-{i}" for i in range(n)]


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


TOPICS = 24     # zone topics of the feed (one C publisher each), spread over the sites


def messages(n: int, start_seq: int, count_of=lambda i: i % 3, sites: list[str] | None = None):
    """``n`` occupancy messages over ``TOPICS`` zones (z*-0/1 stay for triggers), spread over ``sites``."""
    sites = sites or ["bench"]
    out = []
    for i in range(n):
        t = i % TOPICS
        site, k = sites[t % len(sites)], t // len(sites)
        cam, zone = k % CAMERAS, 2 + (k // CAMERAS) % (ZONES - 2)
        out.append((occupancy_topic(site, f"cam{cam}", f"z{cam}-{zone}"),
                    OccupancyMessage(site, f"cam{cam}", f"z{cam}-{zone}", iso_ts(time.time()), count_of(i),
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


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) of this process, or of process ``pid`` (Linux ``/proc``)."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def paho_ceiling(port: int, n: int, pubs: CPublishers, cpu: dict | None = None) -> float:
    """The same feed into a paho subscriber that only counts: the most a Python consumer can take."""
    got, done = [0], threading.Event()

    def on_message(c, u, m):
        got[0] += 1
        if got[0] >= n:
            done.set()

    sub = client(port, on_message)
    sub.subscribe("paho/#", qos=1)
    time.sleep(0.3)
    t0, c0 = time.perf_counter(), cpu_s()
    procs = pubs.run("paho/")
    done.wait(120)
    dt = time.perf_counter() - t0
    if cpu is not None:
        cpu["paho_us"] = (cpu_s() - c0) / max(got[0], 1) * 1e6
    sub.disconnect(), sub.loop_stop()
    for p in procs:
        p.wait(30)
    return got[0] / dt


def gmqtt_ceiling(port: int, n: int, pubs: CPublishers, cpu: dict | None = None) -> float:
    """The same feed into a bare gmqtt subscriber that only counts: the client the hub's receiver process
    runs, so the hub's rate against its own client's ceiling."""
    import asyncio

    from gmqtt import Client

    async def run() -> float:
        got, done = [0], asyncio.Event()

        def on_message(client, topic, payload, qos, properties) -> int:
            got[0] += 1
            if got[0] >= n:
                done.set()
            return 0

        sub = Client(f"bench-gmqtt-{os.getpid()}")
        sub.on_message = on_message
        await sub.connect("127.0.0.1", port, version=4)
        sub.subscribe("gmqtt/#", qos=1)
        await asyncio.sleep(0.3)
        t0, c0 = time.perf_counter(), cpu_s()
        procs = pubs.run("gmqtt/")
        await asyncio.wait_for(done.wait(), 120)
        dt = time.perf_counter() - t0
        if cpu is not None:
            cpu["gmqtt_us"] = (cpu_s() - c0) / max(got[0], 1) * 1e6
        await sub.disconnect()
        for p in procs:
            p.wait(30)
        return got[0] / dt

    return asyncio.run(run())


def hub_flood(port: int, n: int, pubs: CPublishers, db: Path, sites: list[str],
              cpu: dict | None = None) -> tuple[float, int]:
    """A fresh hub (its own database) takes the feed: messages/s until it has handled all ``n``; ``cpu``
    gets the CPU per message of its receiver process and of the hub's (this) process."""
    hub = Hub([bench_site(s) for s in sites], Storage(f"sqlite:///{db}"), mqtt_url=f"mqtt://127.0.0.1:{port}",
              evaluate_on_message=True, client_id=f"bench-{db.stem}")
    hub.start()
    receiver = hub._receiver.pid
    t0, c0, r0 = time.perf_counter(), cpu_s(), cpu_s(receiver)
    procs = pubs.run()
    while hub.stats["occupancy_ok"] < n and time.perf_counter() - t0 < 120:
        time.sleep(0.002)
    rate = hub.stats["occupancy_ok"] / (time.perf_counter() - t0)
    if cpu is not None:
        got = max(hub.stats["occupancy_ok"], 1)
        cpu["receiver_us"], cpu["hub_us"] = (cpu_s(receiver) - r0) / got * 1e6, (cpu_s() - c0) / got * 1e6
    evaluations = hub.stats["evaluations"]
    for p in procs:
        p.wait(30)
    hub.stop()
    return rate, evaluations


def hub_one_process(port: int, n: int, pubs: CPublishers, db: Path) -> float:
    """The design not taken, measured: the hub's ingest fed by a gmqtt client in a thread of the hub's own
    process (no receiver child; clean session, no restarts), batches handed over every 2 ms as the child
    hands them. What "in one process" would give to the letter."""
    import asyncio

    from gmqtt import Client

    hub = Hub([bench_site()], Storage(f"sqlite:///{db}"), evaluate_on_message=True)
    hub._ingest.start()
    loop, ready, pending, timer = asyncio.new_event_loop(), threading.Event(), [], [None]

    def flush() -> None:
        timer[0] = None
        batch = pending[:]
        pending.clear()
        hub._ingest.put_many(batch)

    def on_message(client, topic, payload, qos, properties) -> int:
        pending.append((topic, payload))
        if timer[0] is None:
            timer[0] = loop.call_later(0.002, flush)
        return 0

    async def receive() -> None:
        sub = Client(f"bench-one-{db.stem}")
        sub.on_message = on_message
        await sub.connect("127.0.0.1", port, version=4)
        sub.subscribe("hallgrid/bench/+/+/occupancy", qos=1)
        await asyncio.sleep(0.3)
        ready.set()
        while hub.stats["occupancy_ok"] < n:
            await asyncio.sleep(0.05)
        await sub.disconnect()

    thread = threading.Thread(target=loop.run_until_complete, args=(receive(),), daemon=True)
    thread.start()
    ready.wait(10)
    t0 = time.perf_counter()
    procs = pubs.run()
    while hub.stats["occupancy_ok"] < n and time.perf_counter() - t0 < 120:
        time.sleep(0.002)
    rate = hub.stats["occupancy_ok"] / (time.perf_counter() - t0)
    for p in procs:
        p.wait(30)
    thread.join(10)
    hub.stop()
    return rate


def processing_rate(batch: list[tuple[str, str]], workdir: Path) -> float:
    """The hub's ingest on the same messages with no network: handed to its worker as the MQTT receiver
    would (in batches), drained."""
    hub = Hub([bench_site()], Storage(f"sqlite:///{workdir / 'offline.db'}"), evaluate_on_message=True)
    encoded = [(t, p.encode()) for t, p in batch]
    hub._ingest.start()
    t0 = time.perf_counter()
    for i in range(0, len(encoded), 20):
        hub._ingest.put_many(encoded[i:i + 20])
    hub.drain(120)
    rate = len(encoded) / (time.perf_counter() - t0)
    hub.stop()
    return rate


# --- several processes -----------------------------------------------------------------------------------
def child(kind: str, index: int, shards: int, port: int, sites: list[str], expect: int, db: str) -> None:
    """One process of a multi-process run: a hub or a bare paho subscriber for share ``index`` of the sites;
    prints 'ready', then, when it has ``expect`` messages, the monotonic time it got there."""
    mine = sites[index::shards]          # explicit shares, as with --sites (--shard hashes the ids)
    if kind == "hub":
        hub = Hub([bench_site(s) for s in mine], Storage(f"sqlite:///{db}"), mqtt_url=f"mqtt://127.0.0.1:{port}",
                  evaluate_on_message=True, client_id=f"bench-{Path(db).parent.name}-{Path(db).stem}",
                  hub_id=f"hub-{index}")     # a session of its own each round: none holds an earlier feed
        hub.start()
        got = lambda: hub.stats["occupancy_ok"]     # noqa: E731
    else:
        count = [0]
        sub = client(port, lambda c, u, m: count.__setitem__(0, count[0] + 1))
        sub.subscribe([(f"hallgrid/{s}/+/+/occupancy", 1) for s in mine])
        time.sleep(0.3)
        got = lambda: count[0]     # noqa: E731
    print("ready", flush=True)
    deadline = time.monotonic() + 120
    while got() < expect and time.monotonic() < deadline:
        time.sleep(0.002)
    print(json.dumps({"done": time.monotonic(), "got": got()}), flush=True)
    if kind == "hub":
        hub.stop()


def processes_flood(kind: str, port: int, shards: int, sites: list[str], batch, pubs: CPublishers,
                    work: Path) -> float:
    """``shards`` processes of ``kind`` take the feed: aggregate messages/s until the last has its share."""
    procs = []
    work.mkdir(parents=True, exist_ok=True)
    for i in range(shards):
        mine = set(sites[i::shards])
        expect = sum(1 for topic, _ in batch if topic.split("/")[1] in mine)
        procs.append(subprocess.Popen([sys.executable, __file__, "--child", kind, "--index", str(i),
                                       "--processes", str(shards), "--port", str(port), "--sites", str(len(sites)),
                                       "--expect", str(expect), "--db", str(work / f"{kind}-shard{i}.db")],
                                      stdout=subprocess.PIPE, text=True))
    for p in procs:
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError(f"a {kind} process did not start")
    t0 = time.monotonic()
    pubs_running = pubs.run()
    done = [json.loads(p.stdout.readline()) for p in procs]
    for p in procs + pubs_running:
        p.wait(30)
    got = sum(d["got"] for d in done)
    return got / (max(d["done"] for d in done) - t0)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds of paho / hub (/ processes)")
    ap.add_argument("--processes", type=int, default=2, help="hub processes of the multi-process rows (0: none)")
    ap.add_argument("--sites", type=int, default=4, help="sites of the multi-process rows")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--paced-only", action="store_true", help="only the paced latency run (4.)")
    ap.add_argument("--one-process", action="store_true",
                    help="also the hub fed by gmqtt in a thread of its own process (the design not taken)")
    ap.add_argument("--child", choices=["hub", "paho"], help=argparse.SUPPRESS)
    ap.add_argument("--index", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--expect", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.index, args.processes, args.port, site_ids(args.sites), args.expect, args.db)
    work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    proc, port = start_broker(work)
    try:
        rng = np.random.default_rng(7)            # counts change on ~3 of 4 messages: rules run on those
        counts = rng.integers(0, 4, args.messages)
        batch = messages(args.messages, 1, count_of=lambda i: int(counts[i]))
        pubs = CPublishers(port, batch, work)
        multi = site_ids(args.sites)
        multi_batch = messages(args.messages, 1, count_of=lambda i: int(counts[i]), sites=multi)
        (work / "multi").mkdir()
        multi_pubs = CPublishers(port, multi_batch, work / "multi")
        print(f"load average before: {load_average()}")
        ceiling = broker_ceiling(port, args.messages, pubs) if not args.paced_only else 0.0
        offline = processing_rate(batch, work) if not args.paced_only else 0.0
        rounds = []
        for r in range(0 if args.paced_only else args.repeat):          # interleaved: the machine's load hits both alike
            cpu: dict[str, float] = {}
            row = {"load": load_average(), "paho": paho_ceiling(port, args.messages, pubs, cpu),
                   "gmqtt": gmqtt_ceiling(port, args.messages, pubs, cpu)}
            row["hub"], row["evaluations"] = hub_flood(port, args.messages, pubs, work / f"hub{r}.db", ["bench"], cpu)
            row["cpu_us"] = cpu
            if args.one_process:
                row["hub_one_process"] = hub_one_process(port, args.messages, pubs, work / f"one{r}.db")
            if args.processes > 1:
                row["hub_1p"], _ = hub_flood(port, args.messages, multi_pubs, work / f"multi{r}.db", multi)
                row["hub_np"] = processes_flood("hub", port, args.processes, multi, multi_batch, multi_pubs,
                                                work / "multi" / f"r{r}")
                row["paho_np"] = processes_flood("paho", port, args.processes, multi, multi_batch, multi_pubs,
                                                 work / "multi" / f"r{r}")
            rounds.append(row)
            extra = (f"; {args.sites} sites: one hub process {row['hub_1p']:,.0f}, {args.processes} hub processes "
                     f"{row['hub_np']:,.0f} ({row['hub_np'] / row['paho']:.2f} of one paho, "
                     f"{row['hub_np'] / row['paho_np']:.2f} of {args.processes} paho processes "
                     f"{row['paho_np']:,.0f})" if args.processes > 1 else "")
            if args.one_process:
                extra += (f"; hub with gmqtt in its own process {row['hub_one_process']:,.0f} msg/s "
                          f"({row['hub_one_process'] / row['paho']:.2f} of paho)")
            print(f"round {r + 1} (load {row['load']}): bare paho {row['paho']:,.0f} msg/s, bare gmqtt "
                  f"{row['gmqtt']:,.0f} msg/s, hub {row['hub']:,.0f} msg/s ({row['hub'] / row['paho']:.2f} of paho, "
                  f"{row['hub'] / row['gmqtt']:.2f} of gmqtt; CPU per message: bare paho {cpu['paho_us']:.1f} us, "
                  f"bare gmqtt {cpu['gmqtt_us']:.1f} us, hub's receiver {cpu['receiver_us']:.1f} us, hub "
                  f"{cpu['hub_us']:.1f} us){extra}", flush=True)

        # paced run with alert triggers
        hub = Hub([bench_site()], Storage(f"sqlite:///{work / 'hub.db'}"), mqtt_url=f"mqtt://127.0.0.1:{port}",
                  evaluate_on_message=True)
        hub.start()
        pub = client(port)
        received: list[float] = []
        states: list[str] = []

        def on_alert(c, u, m):
            received.append(time.perf_counter())
            states.append(json.loads(m.payload)["state"] if m.payload else "")

        watcher = client(port, on_alert)
        watcher.subscribe("hallgrid/bench/alerts/+", qos=1)
        time.sleep(0.5)
        received.clear(), states.clear()                    # retained alerts from before do not count
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
        # the i-th trigger's change is the i-th received, if every one came and in order (open, resolved, ...)
        in_order = states == ["open" if i % 2 == 0 else "resolved" for i in range(len(sent_at))]
        lat = np.array([r - s for s, r in zip(sent_at, received)]) * 1000 if in_order else np.array([])
        hub.stop()
        pub.disconnect(), watcher.disconnect()
        stored = hub.storage.occupancy_count("bench")
        if args.paced_only:
            print(f"paced run: {len(received)}/{len(sent_at)} alert changes; load average after: {load_average()}")
            if len(lat):
                print(f"publish->alert latency at {args.rate:.0f} msg/s: p50 {np.percentile(lat, 50):.1f} ms, "
                      f"p99 {np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms (n={len(lat)})")
            return
        paho_max = float(np.median([r["paho"] for r in rounds]))
        flood = float(np.median([r["hub"] for r in rounds]))
        ratio = float(np.median([r["hub"] / r["paho"] for r in rounds]))
        each = ", ".join(f"{r['hub'] / r['paho']:.2f}" for r in rounds)
        print(f"broker raw throughput (QoS 1, C publishers -> C subscriber): {ceiling:,.0f} msg/s  [ceiling]")
        print(f"bare paho subscriber (QoS 1, counts only), same feed: {paho_max:,.0f} msg/s (median of "
              f"{len(rounds)})  [Python ceiling]")
        print(f"bare gmqtt subscriber (QoS 1, counts only; the hub receiver's client), same feed: "
              f"{np.median([r['gmqtt'] for r in rounds]):,.0f} msg/s (median); hub's median ratio to it "
              f"{np.median([r['hub'] / r['gmqtt'] for r in rounds]):.2f}")
        print(f"hub processing alone (ingest worker, no network): {offline:,.0f} msg/s")
        print(f"hub ingest+fuse through the broker (flood, {args.messages} msgs, rules per site per batch on changed "
              f"counts, SQLite batch writes): {flood:,.0f} msg/s (median; {rounds[-1]['evaluations']} rule "
              f"evaluations in the last round); {flood / ceiling:.2f} of the broker ceiling, median of the rounds' "
              f"ratios to the paho ceiling {ratio:.2f} ({each})")
        if args.one_process:
            print(f"hub fed by gmqtt in a thread of its own process (no receiver child): "
                  f"{np.median([r['hub_one_process'] for r in rounds]):,.0f} msg/s (median); median ratio to the "
                  f"paho ceiling {np.median([r['hub_one_process'] / r['paho'] for r in rounds]):.2f} ("
                  + ", ".join(f"{r['hub_one_process'] / r['paho']:.2f}" for r in rounds) + ")")
        if args.processes > 1:
            np_ratio = float(np.median([r["hub_np"] / r["paho"] for r in rounds]))
            print(f"{args.processes} hub processes over {args.sites} sites: {np.median([r['hub_np'] for r in rounds]):,.0f}"
                  f" msg/s aggregate (median), one hub process on the same sites "
                  f"{np.median([r['hub_1p'] for r in rounds]):,.0f}; median ratio to one bare paho {np_ratio:.2f}, to "
                  f"{args.processes} bare paho processes "
                  f"{np.median([r['hub_np'] / r['paho_np'] for r in rounds]):.2f}")
        print(f"paced run: {total + len(sent_at)} msgs in {pace_s:.1f} s ({(total + len(sent_at)) / pace_s:,.0f} msg/s "
              f"offered), hub took {hub.stats['occupancy_ok'] - base_ok}, {len(received)}/{len(sent_at)} alert changes")
        if not in_order:
            print(f"alert changes missing or out of order ({len(states)} of {len(sent_at)}): no latency figure")
        if len(lat):
            print(f"publish->alert latency at {args.rate:.0f} msg/s (to an MQTT subscriber of the alert topic): "
                  f"p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms "
                  f"(n={len(lat)})")
        print(f"occupancy rows stored: {stored}; dropped: {hub.stats['occupancy_rejected']}; "
              f"load average after: {load_average()}")
        print(json.dumps({"broker_msgs_per_s": round(ceiling), "paho_msgs_per_s": round(paho_max),
                          "hub_offline_msgs_per_s": round(offline), "hub_msgs_per_s": round(flood),
                          "hub_to_paho": round(ratio, 2), "rounds": rounds,
                          "p99_alert_latency_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None}))
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
