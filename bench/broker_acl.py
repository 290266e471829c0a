"""What the locked-down broker costs: Mosquitto with `hallgrid broker-config`'s accounts and ACL vs anonymous.

Two figures, each against an anonymous Mosquitto started in the same run (the baseline), alternating
runs so that machine load hits both alike:

1. throughput: N QoS 1 occupancy messages from Mosquitto's C publisher (``mosquitto_pub -l``, the edge
   account) to its C subscriber (``mosquitto_sub -C N``, the hub account), i.e. the ACL check per message;
2. connect cost: sequential connect + CONNACK + disconnect of a paho client (the PBKDF2 check per login).

    .venv/bin/python bench/broker_acl.py [--messages 20000] [--connects 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import getpass
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.broker.config import Account, write_broker_config  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(conf: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def throughput(port: int, n: int, lines: Path, edge: list[str], hub: list[str]) -> float:
    sub = subprocess.Popen([shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub", "-p", str(port), "-q", "1",
                            "-t", "hallgrid/bench/#", "-C", str(n), *hub], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    t0 = time.perf_counter()
    pub = subprocess.Popen([shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub", "-p", str(port), "-q", "1",
                            "-l", "-t", "hallgrid/bench/cam1/z1/occupancy", *edge], stdin=lines.open("rb"))
    sub.wait(300)
    dt = time.perf_counter() - t0
    pub.wait(30)
    return n / dt


def connect_ms(port: int, n: int, account: tuple[str, str] | None) -> float:
    times = []
    for _ in range(n):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if account:
            c.username_pw_set(*account)
        answered = []
        c.on_connect = lambda cl, u, f, rc, p: answered.append(rc)
        t0 = time.perf_counter()
        c.connect("127.0.0.1", port)
        while not answered:
            c.loop(0.01)
        times.append(time.perf_counter() - t0)
        assert not answered[0].is_failure, answered[0]
        c.disconnect()
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--connects", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hallgrid-bench-acl-"))
    try:
        anon_port, acl_port = free_port(), free_port()
        anon = work / "anon.conf"
        anon.write_text(f"listener {anon_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "max_queued_messages 100000\n")
        files = write_broker_config(work / "acl", [Account("hub", "hub", ("bench",)),
                                                   Account("edge-bench", "edge", ("bench",), ("cam1",))],
                                    port=acl_port, persistence=False, run_as=getpass.getuser(), env={})
        lines = work / "lines.txt"
        lines.write_text("".join(f'{{"site":"bench","camera":"cam1","zone":"z1","count":{i % 9},"seq":{i}}}\n'
                                 for i in range(args.messages)))
        creds = {a.name: ["-u", a.name, "-P", a.password] for a in files.accounts}
        procs = [start(anon, anon_port), start(files.conf, acl_port)]
        try:
            rates: dict[str, list[float]] = {"anonymous": [], "acl": []}
            conn: dict[str, list[float]] = {"anonymous": [], "acl": []}
            hub = files.account("hub")
            for _ in range(args.repeat):
                rates["anonymous"].append(throughput(anon_port, args.messages, lines, [], []))
                rates["acl"].append(throughput(acl_port, args.messages, lines, creds["edge-bench"], creds["hub"]))
                conn["anonymous"].append(connect_ms(anon_port, args.connects, None))
                conn["acl"].append(connect_ms(acl_port, args.connects, (hub.name, hub.password)))
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
        med = {k: statistics.median(v) for k, v in rates.items()}
        cms = {k: statistics.median(v) for k, v in conn.items()}
        print(f"throughput, QoS 1, {args.messages} messages x {args.repeat} runs (median msg/s): "
              f"anonymous {med['anonymous']:.0f}, ACL {med['acl']:.0f}, ratio {med['acl'] / med['anonymous']:.2f}")
        print(f"connect + CONNACK (median ms over {args.connects} x {args.repeat}): anonymous "
              f"{cms['anonymous']:.2f}, password (PBKDF2-SHA512, 20000 iterations) {cms['acl']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
