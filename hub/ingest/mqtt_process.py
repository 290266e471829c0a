"""The MQTT receiver process: paho's clients of one hub, in a process of their own (``hub.ingest.receiver``).

Why a process: paho's QoS 1 loop costs about 25-30 us of CPU a message in pure Python (bench/hub_throughput.py
prints it), as much as the hub's own work. In the hub's interpreter it
competed for the GIL with the hub's own work (contract, state, rules, storage), and the hub took 0.6-0.8 of
what a bare paho subscriber takes. Here paho runs exactly as that bare subscriber does, on a core of its own,
and only hands ``(topic, payload)`` batches to the hub every few milliseconds: the hub's rate is bounded by
paho alone.

This module is the child's side (``python -m hub.ingest.mqtt_process``, started by ``Receiver``). It talks
to the hub over its stdin (commands) and stdout (events), each a length-prefixed pickle (``read_frame`` /
``write_frame``); the broker settings, with their credentials, come as the first frame, never on the command
line or in the environment. Its log lines go to the hub as events, so they reach the hub's log in its format
and nothing is printed on stdout or stderr.

Commands (hub -> child): ``hello(broker, options)`` first, then ``connect(key, client_id, topics)``,
``subscribe(key, req, topics)``, ``unsubscribe(key, req, topics)``, ``publish(key, pid, topic, payload, qos,
retain)``, ``disconnect(key, req)``, ``stop``. Events (child -> hub): ``msgs([(topic, payload), ...])``,
``ready(key, bool)``, ``ack(req, ok)``, ``published(pid)``, ``log(level, text)``. A message is acknowledged to
the broker when paho has handed it over here (paho's automatic acknowledgement), as it was in one process.
"""

from __future__ import annotations

import collections
import logging
import os
import pickle
import signal
import struct
import threading
import time
import traceback
from typing import Any, BinaryIO

HEADER = struct.Struct("<I")
LINGER_S = 0.002        # a woken flusher lets this much more arrive: batches of messages, not one per frame
MAX_PENDING = 20_000    # messages held here before paho's thread waits (the broker keeps the rest)


def write_frame(out: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(HEADER.pack(len(data)) + data)
    out.flush()


def read_frame(inp: BinaryIO) -> Any:
    """The next object, or None at the end of the stream (the other side closed or died)."""
    head = inp.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (n,) = HEADER.unpack(head)
    data = inp.read(n)
    if len(data) < n:
        return None
    return pickle.loads(data)


class Child:
    """paho clients (one per hub session, by key), their messages batched to stdout, commands from stdin."""

    def __init__(self, out: BinaryIO, broker: Any, linger_s: float = LINGER_S, max_pending: int = MAX_PENDING):
        self.out = out
        self.broker = broker
        self.linger_s = linger_s
        self.max_pending = max_pending
        self.write_lock = threading.Lock()       # frames from several threads; a flush pops and writes under it
        self.pending: collections.deque[tuple[str, bytes]] = collections.deque()
        self.wake = threading.Event()
        self.closing = False
        self.clients: dict[Any, Any] = {}
        self.topics: dict[Any, list[str]] = {}
        self.ready: dict[Any, bool] = {}
        self.lock = threading.Lock()
        self.requests: dict[tuple[Any, int], tuple] = {}   # (key, mid) -> what its acknowledgement answers
        self.early: dict[tuple[Any, int], bool] = {}        # acknowledgements that came before their request
        self.flusher = threading.Thread(target=self._flush_loop, daemon=True, name="mqtt-flush")
        self.flusher.start()

    # --- to the hub ----------------------------------------------------------------------------------
    def send(self, obj: Any) -> None:
        """An event, after the messages received before it: an acknowledgement (of an unsubscription, of a
        disconnect) tells the hub that everything before it is in its hands."""
        with self.write_lock:
            self._flush_locked()
            self._write(obj)

    def log(self, level: int, text: str) -> None:
        self.send(("log", level, text))

    def flush(self) -> None:
        """Every message received so far, in order, as one frame (pop and write under one lock: in order)."""
        with self.write_lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        n = len(self.pending)
        if n:
            popleft = self.pending.popleft
            self._write(("msgs", [popleft() for _ in range(n)]))

    def _write(self, obj: Any) -> None:
        try:
            write_frame(self.out, obj)
        except (BrokenPipeError, ValueError):   # the hub is gone: end at once, acknowledging nothing more
            os._exit(0)

    def _flush_loop(self) -> None:
        while not self.closing:
            if not self.wake.wait(0.5):
                continue
            time.sleep(self.linger_s)
            self.wake.clear()          # before taking: a message after this wakes the next turn
            self.flush()

    # --- paho's callbacks (its network threads) ------------------------------------------------------
    def _on_message(self, client, key, msg) -> None:
        while len(self.pending) >= self.max_pending and not self.closing:
            self.wake.set()          # the hub falls behind: hold paho back, the broker keeps the rest (QoS 1)
            time.sleep(0.001)
        self.pending.append((msg.topic, msg.payload))
        if not self.wake.is_set():
            self.wake.set()

    def _on_connect(self, client, key, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.log(logging.ERROR, f"MQTT connect refused: {reason_code}")
            return
        self._subscribe(key, ("ready", key), self.topics[key])

    def _on_disconnect(self, client, key, flags, reason_code, properties) -> None:
        if self.ready.get(key):
            self.log(logging.WARNING, f"MQTT connection lost ({reason_code}); reconnecting")
            self.ready[key] = False
            self.send(("ready", key, False))    # ready again once the reconnect's subscriptions are acknowledged

    def _on_ack(self, client, key, mid, reason_codes, properties) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            self.log(logging.ERROR, f"MQTT (un)subscription refused: {failed}")
        self._answered(key, mid, not failed)

    def _on_publish(self, client, key, mid, reason_code, properties) -> None:
        self._answered(key, mid, True)

    # --- requests and their acknowledgements ---------------------------------------------------------
    def _expect(self, key: Any, mid: int, request: tuple) -> None:
        """``request`` is answered when the broker acknowledges ``mid``, which may have happened already (paho
        cannot be called under ``self.lock``: its callbacks take it)."""
        with self.lock:
            ok = self.early.pop((key, mid), None)
            if ok is None:
                self.requests[(key, mid)] = request
                return
        self._answer(request, ok)

    def _answered(self, key: Any, mid: int, ok: bool) -> None:
        with self.lock:
            request = self.requests.pop((key, mid), None)
            if request is None:
                self.early[(key, mid)] = ok
                return
        self._answer(request, ok)

    def _answer(self, request: tuple, ok: bool) -> None:
        kind, ident = request
        if kind == "ready":
            if ok:
                self.ready[ident] = True
                self.send(("ready", ident, True))
        elif kind == "pub":
            self.send(("published", ident))
        else:
            self.send(("ack", ident, ok))

    def _subscribe(self, key: Any, request: tuple, topics: list[str]) -> None:
        if not topics:
            self._answer(request, True)
            return
        self._expect(key, self.clients[key].subscribe([(t, 1) for t in topics])[1], request)

    # --- commands ------------------------------------------------------------------------------------
    def connect(self, key: Any, client_id: str, topics: list[str]) -> None:
        """A persistent session (clean_session=False, QoS 1 subscriptions, a stable client id): what arrives
        while the hub restarts, or while a site changes hands, waits at the broker."""
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                             userdata=key)
        client.on_connect = self._on_connect
        client.on_connect_fail = lambda *_: self.log(
            logging.WARNING, f"MQTT broker {self.broker.redacted()} unreachable; retrying")
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = client.on_unsubscribe = self._on_ack
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.max_inflight_messages_set(1000)
        client.reconnect_delay_set(0.2, 5)
        self.broker.apply(client)
        self.clients[key], self.topics[key], self.ready[key] = client, list(topics), False
        client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        client.loop_start()

    def subscribe(self, key: Any, req: int, topics: list[str]) -> None:
        self.topics[key] = self.topics[key] + [t for t in topics if t not in self.topics[key]]
        self._subscribe(key, ("ack", req), topics)

    def unsubscribe(self, key: Any, req: int, topics: list[str]) -> None:
        self.topics[key] = [t for t in self.topics[key] if t not in topics]
        self._expect(key, self.clients[key].unsubscribe(topics)[1], ("ack", req))

    def publish(self, key: Any, pid: int, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        info = self.clients[key].publish(topic, payload, qos=qos, retain=retain)
        self._expect(key, info.mid, ("pub", pid))

    def disconnect(self, key: Any, req: int | None) -> None:
        """Close a session; everything it received is sent on before the answer."""
        client = self.clients.pop(key, None)
        if client is not None:
            self.ready[key] = False          # a disconnect asked for is not a connection lost
            client.disconnect()
            client.loop_stop()
        self.flush()
        if req is not None:
            self.send(("ack", req, True))

    def serve(self, inp: BinaryIO) -> None:
        """Commands until ``stop`` (then every session is closed and what it received sent on) or until the
        hub's end of the pipe closes (the hub died: then this process ends at once)."""
        while True:
            command = read_frame(inp)
            if command is None:      # the hub died: end at once, acknowledging nothing more (the broker keeps it)
                os._exit(0)
            if command[0] == "stop":
                break
            try:
                getattr(self, command[0])(*command[1:])
            except Exception:        # one bad command must not take the hub's MQTT down
                self.log(logging.ERROR, f"MQTT receiver: {command[0]} failed:\n{traceback.format_exc()}")
        for key in list(self.clients):
            self.disconnect(key, None)
        self.closing = True
        self.flush()


def die_with_parent() -> None:
    """Linux: the kernel kills this process the moment the hub dies. A receiver that outlived its hub would
    go on acknowledging messages nobody handles, and keep the hub's sessions from whichever hub takes its
    sites on (the same client ids)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):         # not Linux: the end of the hub's pipe ends us, a moment later
        pass


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C reaches the hub's process group: the hub stops us
    die_with_parent()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                    # a stray print must not corrupt the frames
    inp = os.fdopen(os.dup(0), "rb")
    hello = read_frame(inp)
    if hello is None:
        return
    _, broker, options = hello
    child = Child(out, broker, **options)
    child.serve(inp)


if __name__ == "__main__":
    main()
