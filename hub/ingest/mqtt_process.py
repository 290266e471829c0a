"""The MQTT receiver process: the MQTT sessions of one hub, in a process of their own (``hub.ingest.receiver``).

Why a process, and why gmqtt: an MQTT client in pure Python costs tens of microseconds of CPU a message, as
much as the hub's own work, and in the hub's interpreter it competed with that work for the GIL. paho, the
client the edge box uses, reads a packet with three or four ``recv`` calls and wakes its loop through a
socket pair for every acknowledgement: 36-55 us a message at QoS 1 on the 2-core machine
(``bench/hub_throughput.py`` prints it). gmqtt reads the socket in large chunks through asyncio and parses
the packets from the buffer: 11-20 us a message on the same feed. Here the client runs on a core of
its own and only hands ``(topic, payload)`` batches to the hub every few milliseconds.

This module is the child's side (``python -m hub.ingest.mqtt_process``, started by ``Receiver``). It talks
to the hub over its stdin (commands) and stdout (events), each a length-prefixed pickle (``read_frame`` /
``write_frame``); the broker settings, with their credentials, come as the first frame, never on the command
line or in the environment. Its log lines go to the hub as events, so they reach the hub's log in its format
and nothing is printed on stdout or stderr.

Commands (hub -> child): ``hello(broker, options)`` first, then ``connect(key, client_id, topics)``,
``subscribe(key, req, topics)``, ``unsubscribe(key, req, topics)``, ``publish(key, pid, topic, payload, qos,
retain)``, ``disconnect(key, req)``, ``stop``. Events (child -> hub): ``msgs([(topic, payload), ...])``,
``ready(key, bool)``, ``ack(req, ok)``, ``published(pid)``, ``log(level, text)``. A message is acknowledged to
the broker when the client has read it here (gmqtt's optimistic acknowledgement, as paho's automatic one).

One thread, the asyncio loop, does everything that touches a client or writes stdout; a second thread only
reads commands and hands them to the loop. A batch is written to stdout from the loop: while the hub's end
of the pipe is full, the loop reads nothing more, and the broker keeps what comes next (QoS 1).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable

from gmqtt import Client, Subscription
from gmqtt.mqtt.handler import MQTTConnectError
from gmqtt.storage import PersistentStorage

from hub.ingest.pipe import LINGER_S, MAX_PENDING, read_frame, write_frame

KEEPALIVE_S = 30
RETRY_MIN_S, RETRY_MAX_S = 0.2, 5.0     # reaching a broker that is down: doubling, as paho's reconnect delay
RECONNECT_S = 1.0                        # gmqtt's own reconnect after a lost connection: a fixed delay
MQTT_V311 = 4


@dataclass
class _Session:
    """One persistent MQTT session: its client, topics, and what waits for its connection."""

    key: Any
    client: Any
    inflight: _Inflight      # the client's store of publications not yet acknowledged
    topics: list[str]
    ready: bool = False
    connected: bool = False
    task: asyncio.Task | None = None
    deferred: list[Callable[[], None]] = field(default_factory=list)   # run once connected
    unacked: dict[int, tuple] = field(default_factory=dict)            # mid -> publish command, until PUBACK


class _Inflight(PersistentStorage):
    """gmqtt's store of one session's unacknowledged publications, which also tells the child what the broker
    acknowledged (gmqtt has no publish callback) and what a lost session dropped."""

    def __init__(self, child: Child):
        super().__init__()
        self.child = child
        self.session: _Session | None = None
        self.last: int | None = None         # the packet id of the publication just stored

    def push_message(self, mid, raw_package):
        super().push_message(mid, raw_package)
        self.last = mid

    def remove_message_by_mid(self, mid):
        super().remove_message_by_mid(mid)
        if self.session is not None:
            self.child._on_puback(self.session, mid)

    def clear(self):
        super().clear()
        if self.session is not None and self.session.unacked:
            self.child._on_session_lost(self.session)


class Child:
    """gmqtt clients (one per hub session, by key), their messages batched to stdout, commands from stdin."""

    def __init__(self, out: BinaryIO, broker: Any, loop: asyncio.AbstractEventLoop, linger_s: float = LINGER_S,
                 max_pending: int = MAX_PENDING):
        self.out = out
        self.broker = broker
        self.loop = loop
        self.linger_s = linger_s
        self.max_pending = max_pending
        self.pending: list[tuple[str, bytes]] = []
        self.flush_handle: asyncio.TimerHandle | None = None
        self.sessions: dict[Any, _Session] = {}
        self.requests: dict[tuple[Any, int], tuple] = {}     # (key, mid) -> what its acknowledgement answers
        self.ssl = broker.ssl_context() or False     # gmqtt: False for plain TCP
        self.stopped = asyncio.Event()

    # --- to the hub ----------------------------------------------------------------------------------
    def send(self, obj: Any) -> None:
        """An event, after the messages received before it: an acknowledgement (of an unsubscription, of a
        disconnect) tells the hub that everything before it is in its hands."""
        self.flush()
        self._write(obj)

    def log(self, level: int, text: str) -> None:
        self.send(("log", level, text))

    def flush(self) -> None:
        """Every message received so far, in order, as one frame."""
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        if self.pending:
            batch, self.pending = self.pending, []
            self._write(("msgs", batch))

    def _write(self, obj: Any) -> None:
        try:
            write_frame(self.out, obj)
        except (BrokenPipeError, ValueError):   # the hub is gone: end at once, acknowledging nothing more
            os._exit(0)

    # --- the clients' callbacks (the loop) -----------------------------------------------------------
    def _on_message(self, client, topic, payload, qos, properties) -> int:
        self.pending.append((topic, payload))
        if len(self.pending) >= self.max_pending:
            self.flush()
        elif self.flush_handle is None:
            self.flush_handle = self.loop.call_later(self.linger_s, self.flush)
        return 0

    def _on_connect(self, session: _Session, client, flags, rc, properties) -> None:
        session.connected = True
        client.subscriptions = []           # gmqtt keeps every subscription it was asked for; this is the list
        self._subscribe(session, ("ready", session.key), session.topics)
        deferred, session.deferred = session.deferred, []
        for run in deferred:
            run()

    def _on_disconnect(self, session: _Session, client, packet, exc=None) -> None:
        session.connected = False
        if session.ready:
            self.log(logging.WARNING, "MQTT connection lost; reconnecting")
            session.ready = False
            self.send(("ready", session.key, False))   # ready again once the reconnect's subscriptions are acked

    def _on_ack(self, session: _Session, client, mid, codes, properties=None) -> None:
        failed = [code for code in (codes or ()) if isinstance(code, int) and code >= 0x80]
        if failed:
            self.log(logging.ERROR, f"MQTT (un)subscription refused: {failed}")
        request = self.requests.pop((session.key, mid), None)
        if request is not None:
            self._answer(request, not failed)

    def _on_puback(self, session: _Session, mid: int) -> None:
        command = session.unacked.pop(mid, None)
        if command is not None:
            self.send(("published", command[1]))

    def _on_session_lost(self, session: _Session) -> None:
        """The broker kept no session (it restarted without persistence): gmqtt drops the publications it
        would have sent again; they are published again once connected, as paho does."""
        lost, session.unacked = list(session.unacked.values()), {}
        session.deferred.extend(lambda c=c: self.publish(*c) for c in lost)

    # --- requests and their acknowledgements ---------------------------------------------------------
    def _answer(self, request: tuple, ok: bool) -> None:
        kind, ident = request
        if kind == "ready":
            session = self.sessions.get(ident)
            if ok and session is not None:
                session.ready = True
                self.send(("ready", ident, True))
        else:
            self.send(("ack", ident, ok))

    def _subscribe(self, session: _Session, request: tuple, topics: list[str]) -> None:
        if not topics:
            self._answer(request, True)
            return
        mid = session.client.subscribe([Subscription(t, qos=1) for t in topics])
        self.requests[(session.key, mid)] = request

    # --- commands (the loop) -------------------------------------------------------------------------
    def connect(self, key: Any, client_id: str, topics: list[str]) -> None:
        """A persistent session (clean_session=False, QoS 1 subscriptions, a stable client id): what arrives
        while the hub restarts, or while a site changes hands, waits at the broker."""
        inflight = _Inflight(self)
        client = Client(client_id, clean_session=False, persistent_storage=inflight)
        session = inflight.session = _Session(key, client, inflight, list(topics))
        client.on_connect = lambda *a: self._on_connect(session, *a)
        client.on_disconnect = lambda *a: self._on_disconnect(session, *a)
        client.on_subscribe = client.on_unsubscribe = lambda *a: self._on_ack(session, *a)
        client.on_message = self._on_message
        if self.broker.username:
            client.set_auth_credentials(self.broker.username, self.broker.password)
        client.set_config({"reconnect_retries": -1, "reconnect_delay": RECONNECT_S})
        self.sessions[key] = session
        session.task = self.loop.create_task(self._connect(session))

    async def _connect(self, session: _Session) -> None:
        """Until the first connection: gmqtt reconnects on its own after that, not before."""
        delay, warned = RETRY_MIN_S, False
        while self.sessions.get(session.key) is session:
            try:
                await session.client.connect(self.broker.host, self.broker.port, ssl=self.ssl,
                                             keepalive=KEEPALIVE_S, version=MQTT_V311)
                return
            except MQTTConnectError as exc:
                self.log(logging.ERROR, f"MQTT connect refused: {exc}")
            except (OSError, asyncio.TimeoutError):
                if not warned:
                    self.log(logging.WARNING, f"MQTT broker {self.broker.redacted()} unreachable; retrying")
                    warned = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def subscribe(self, key: Any, req: int, topics: list[str]) -> None:
        session = self.sessions[key]
        session.topics = session.topics + [t for t in topics if t not in session.topics]
        if session.connected:
            self._subscribe(session, ("ack", req), topics)
        else:       # once connected, answered by the broker's acknowledgement, not before
            session.deferred.append(lambda: self._subscribe(session, ("ack", req), topics))

    def unsubscribe(self, key: Any, req: int, topics: list[str]) -> None:
        session = self.sessions[key]
        session.topics = [t for t in session.topics if t not in topics]
        if not session.connected:        # the broker keeps the session's subscriptions: unsubscribe there
            session.deferred.append(lambda: self.unsubscribe(key, req, topics))
            return
        self.requests[(key, session.client.unsubscribe(topics))] = ("ack", req)

    def publish(self, key: Any, pid: int, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        session = self.sessions[key]
        command = (key, pid, topic, payload, qos, retain)
        if not session.connected:
            session.deferred.append(lambda: self.publish(*command))
            return
        session.inflight.last = None
        session.client.publish(topic, payload, qos=qos, retain=retain)
        if session.inflight.last is None:     # QoS 0: nothing to wait for
            self.send(("published", pid))
        else:
            session.unacked[session.inflight.last] = command

    async def disconnect(self, key: Any, req: int | None) -> None:
        """Close a session; everything it received is sent on before the answer."""
        session = self.sessions.pop(key, None)
        if session is not None:
            session.ready = False             # a disconnect asked for is not a connection lost
            if session.task is not None and not session.task.done():
                session.task.cancel()
            try:
                await session.client.disconnect()
            except Exception:                 # never connected, or already gone
                pass
        self.flush()
        if req is not None:
            self.send(("ack", req, True))

    async def stop(self) -> None:
        for key in list(self.sessions):
            await self.disconnect(key, None)
        self.flush()
        self.stopped.set()

    def dispatch(self, command: tuple) -> None:
        """One command from the hub, on the loop; one bad command must not take the hub's MQTT down."""
        try:
            result = getattr(self, command[0])(*command[1:])
        except Exception:
            self.log(logging.ERROR, f"MQTT receiver: {command[0]} failed:\n{traceback.format_exc()}")
            return
        if asyncio.iscoroutine(result):
            self.loop.create_task(result)


class _ToHub(logging.Handler):
    """gmqtt's exceptions (a packet it failed to handle, a lost connection's cause), sent to the hub as log
    events. Its other lines are not: what they say (refused, lost, reconnecting) the child says itself, once
    and in the hub's words, where gmqtt's would repeat on every retry and say "not reconnecting" while the
    child retries."""

    def __init__(self, child: Child):
        super().__init__(logging.WARNING)
        self.child = child

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and threading.current_thread() is threading.main_thread():
            self.child.log(record.levelno, f"MQTT: {record.getMessage()}: {record.exc_info[1]!r}")


def die_with_parent() -> None:
    """Linux: the kernel kills this process the moment the hub dies. A receiver that outlived its hub would
    go on acknowledging messages nobody handles, and keep the hub's sessions from whichever hub takes its
    sites on (the same client ids)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):         # not Linux: the end of the hub's pipe ends us, a moment later
        pass


def _read_commands(inp: BinaryIO, child: Child) -> None:
    """Commands until ``stop``, handed to the loop; the end of the hub's pipe (the hub died) ends this
    process at once, acknowledging nothing more (the broker keeps it)."""
    while True:
        command = read_frame(inp)
        if command is None:
            os._exit(0)
        child.loop.call_soon_threadsafe(child.dispatch, command)
        if command[0] == "stop":
            return


async def _serve(inp: BinaryIO, out: BinaryIO, broker: Any, options: dict) -> None:
    child = Child(out, broker, asyncio.get_running_loop(), **options)
    logging.getLogger("gmqtt").addHandler(_ToHub(child))
    logging.getLogger("gmqtt").propagate = False
    threading.Thread(target=_read_commands, args=(inp, child), daemon=True, name="mqtt-commands").start()
    await child.stopped.wait()


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
    asyncio.run(_serve(inp, out, broker, options))


if __name__ == "__main__":
    main()
