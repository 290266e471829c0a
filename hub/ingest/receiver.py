"""The hub's side of its MQTT receiver process (``hub.ingest.mqtt_process``): started, fed and restarted here.

Why: see ``mqtt_process``; the MQTT clients run in a child process so that the hub's own work does not compete with them
for one interpreter. The hub sees ``Session`` objects (one persistent MQTT session each: the hub's, or a
site's): ``ready`` is set once the broker has acknowledged the session's subscriptions, ``subscribe`` and
``unsubscribe`` answer with an event set on the broker's acknowledgement, ``publish`` sends an alert. The
received messages come in ``(topic, payload)`` batches to ``on_messages`` (the ingest worker), in order.

The child is the hub's: if it dies, it is started again (after 0.2 s, doubling to 5 s while it keeps dying
young), its sessions connect again with their current subscriptions (the broker kept what came meanwhile in
the persistent sessions, QoS 1), and what was asked of it and not yet acknowledged (subscriptions, alert
publications) is asked again. What it had received and acknowledged but not yet handed over is lost, as the
ingest worker's queue is lost in a hub crash (README, "when a message is acknowledged").
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import site
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hub.ingest.pipe import LINGER_S, MAX_PENDING, read_frame, write_frame

log = logging.getLogger("hallgrid.hub")
RESTART_MIN_S, RESTART_MAX_S = 0.2, 5.0
HEALTHY_S = 30.0          # a child that lived this long restarts at once again, not after a long backoff
MAX_TOPIC_BYTES = 65_535


def _site_dirs() -> set[Path]:
    return {Path(p).resolve() for p in (*site.getsitepackages(), site.getusersitepackages())}


def check_topic(topic: str) -> None:
    """What MQTT refuses as a publish topic (empty, wildcards, over 65,535 bytes), refused here, where the caller
    can still log it (ValueError)."""
    if not topic or "+" in topic or "#" in topic or len(topic.encode()) > MAX_TOPIC_BYTES:
        raise ValueError(f"invalid publish topic {topic[:80]!r}")


@dataclass
class Session:
    """One MQTT session of the hub, served by the receiver process."""

    key: Any                       # None: the hub's own session; a site id: that site's
    client_id: str
    topics: list[str]              # subscribed now: a restarted child subscribes these again
    receiver: Receiver
    ready: threading.Event = field(default_factory=threading.Event)

    def subscribe(self, topics: list[str]) -> threading.Event:
        self.topics = self.topics + [t for t in topics if t not in self.topics]
        return self.receiver._request("subscribe", self.key, topics)

    def unsubscribe(self, topics: list[str]) -> threading.Event:
        self.topics = [t for t in self.topics if t not in topics]
        return self.receiver._request("unsubscribe", self.key, topics)

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
        check_topic(topic)
        self.receiver._publish(self.key, topic, payload.encode() if isinstance(payload, str) else payload,
                               qos, retain)

    def close(self, timeout: float = 10.0) -> None:
        """Disconnect; returns once what the session received has been handed to ``on_messages``."""
        self.ready.clear()
        self.receiver._close(self, timeout)


class Receiver:
    """Owns the receiver process: starts it, sends it commands, reads its events, restarts it when it dies."""

    def __init__(self, broker: Any, on_messages: Callable[[list[tuple[str, bytes]]], None],
                 on_restart: Callable[[], None] = lambda: None, linger_s: float = LINGER_S,
                 max_pending: int = MAX_PENDING):
        self.broker = broker
        self.on_messages = on_messages
        self.on_restart = on_restart
        self.options = {"linger_s": linger_s, "max_pending": max_pending}
        self.sessions: dict[Any, Session] = {}
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[tuple, threading.Event]] = {}     # req -> (command, answered)
        self._unpublished: dict[int, tuple] = {}                          # pid -> publish command
        self._commands: queue.SimpleQueue = queue.SimpleQueue()           # written by one writer thread
        self._proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._reader: threading.Thread | None = None
        self._writer: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """The child is started by the reader thread, which lives as long as the receiver: on Linux the child
        dies with the thread that started it (``mqtt_process.die_with_parent``)."""
        self._reader = threading.Thread(target=self._read_loop, daemon=True, name="hub-mqtt-reader")
        self._reader.start()

    def connect(self, key: Any, client_id: str, topics: list[str]) -> Session:
        session = Session(key, client_id, list(topics), self)
        with self.lock:
            self.sessions[key] = session
            self._commands.put(("connect", key, client_id, list(topics)))
        return session

    def stop(self, timeout: float = 10.0) -> None:
        """Close every session, then end the child; returns once all it received is handed over."""
        with self.lock:          # a child started after this (``_spawn``) is told to stop as well
            if self._stopping.is_set():
                return
            self._stopping.set()
            self._commands.put(("stop",))
        if self._reader is not None:
            self._reader.join(timeout)
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        self._commands.put(None)       # ends the writer

    # --- commands -------------------------------------------------------------------------------------
    def _request(self, kind: str, key: Any, topics: list[str]) -> threading.Event:
        req, done = next(self._ids), threading.Event()
        command = (kind, key, req, list(topics))
        with self.lock:
            self._pending[req] = (command, done)
            self._commands.put(command)
        return done

    def _publish(self, key: Any, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        pid = next(self._ids)
        command = ("publish", key, pid, topic, payload, qos, retain)
        with self.lock:
            self._unpublished[pid] = command
            self._commands.put(command)

    def _close(self, session: Session, timeout: float) -> None:
        req, done = next(self._ids), threading.Event()
        with self.lock:
            if self.sessions.get(session.key) is session:
                del self.sessions[session.key]
            self._pending[req] = (("disconnect", session.key, req), done)
            self._commands.put(("disconnect", session.key, req))
        done.wait(timeout)

    def _write_loop(self, proc: subprocess.Popen, commands: queue.SimpleQueue) -> None:
        """The only writer of the child's stdin: no hub thread (one holding the hub's lock) ever blocks on it."""
        try:
            write_frame(proc.stdin, ("hello", self.broker, self.options))
            while (command := commands.get()) is not None:
                write_frame(proc.stdin, command)
        except (BrokenPipeError, OSError, ValueError):    # the child died: the reader restarts it
            pass

    # --- the child ------------------------------------------------------------------------------------
    def _spawn(self) -> None:
        """A child, and what it must know: every session's connection, then what was not yet acknowledged."""
        env = dict(os.environ)
        root = Path(__file__).resolve().parents[2]
        # A checkout run from its source: the child runs this code too. An installed hub is found by the
        # interpreter anyway, and site-packages on PYTHONPATH would come before the standard library.
        if root not in _site_dirs():
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)
        proc = subprocess.Popen([sys.executable, "-m", "hub.ingest.mqtt_process"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=env, close_fds=True)
        commands: queue.SimpleQueue = queue.SimpleQueue()
        with self.lock:
            for s in self.sessions.values():
                commands.put(("connect", s.key, s.client_id, list(s.topics)))
            for command, _ in self._pending.values():
                if command[0] != "disconnect":
                    commands.put(command)
            for command in self._unpublished.values():
                commands.put(command)
            if self._stopping.is_set():
                commands.put(("stop",))
            old, self._commands = self._commands, commands
            self._proc = proc
        old.put(None)
        self._writer = threading.Thread(target=self._write_loop, args=(proc, commands), daemon=True,
                                        name="hub-mqtt-writer")
        self._writer.start()

    def _read_loop(self) -> None:
        """Start the child, hand on its events until it ends, start it again: until ``stop``."""
        delay, first = RESTART_MIN_S, True
        while True:
            started = time.monotonic()
            try:
                self._spawn()
            except OSError as exc:          # e.g. out of processes or file descriptors: try again later
                log.error("MQTT receiver process cannot start: %s", exc)
                code: int | str = "none"
            else:
                if not first:
                    self.on_restart()
                proc = self._proc
                try:
                    while (event := read_frame(proc.stdout)) is not None:
                        self._event(event)
                except Exception:
                    log.exception("MQTT receiver: unreadable event")
                proc.stdout.close()
                code = proc.wait()
            first = False
            self._child_gone()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > HEALTHY_S:
                delay = RESTART_MIN_S
            log.warning("MQTT receiver process ended (exit code %s); starting it again in %.1f s", code, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, RESTART_MAX_S)

    def _child_gone(self) -> None:
        """Sessions not ready; closes asked for are done (nothing is connected any more)."""
        with self.lock:
            for s in self.sessions.values():
                s.ready.clear()
            closing = [req for req, (command, _) in self._pending.items() if command[0] == "disconnect"]
            done = [self._pending.pop(req)[1] for req in closing]
        for d in done:
            d.set()

    def _event(self, event: tuple) -> None:
        kind = event[0]
        if kind == "msgs":
            self.on_messages(event[1])
        elif kind == "ready":
            session = self.sessions.get(event[1])
            if session is not None:
                (session.ready.set if event[2] else session.ready.clear)()
        elif kind == "ack":
            with self.lock:
                answered = self._pending.pop(event[1], None)
            if answered is not None and event[2]:
                answered[1].set()          # a refusal is logged by the child; the caller's wait times out
        elif kind == "published":
            with self.lock:
                self._unpublished.pop(event[1], None)
        elif kind == "log":
            log.log(event[1], "%s", event[2])
