"""The hand-over from the MQTT receiver (``hub.ingest.receiver``) to one ingest worker thread.

Why: an MQTT client reads, acknowledges and calls back on one thread. When paho's thread also parsed, fused,
evaluated the rules and wrote storage, the hub took 0.4-0.7 of what a bare paho subscriber receives, and
every slow storage write stalled the reading. Now the client runs in the receiver process, whose batches the receiver's
reader thread only appends to a queue; the worker takes
all that waits, in arrival order, and hands runs of occupancy messages to ``hub.ingest.occupancy`` as one
batch (one lock hold, one rule evaluation per site) and every other message (status, tickets, alerts) to
``Hub.handle`` one by one, between the batches, so the order of a site's messages is kept.

The queue is bounded (``max_pending``): a worker that falls behind holds the reader back, and through the
pipe the receiver process and its client, so the broker keeps what comes next in the hub's session (QoS 1) rather
than the hub's memory growing. A message is acknowledged to the broker when the client reads it in the
receiver process; ``stop`` handles everything queued before it
returns, so a stop loses nothing (a crash loses what was queued, as it loses the occupancy rows not yet
written and the in-memory state that the retained messages rebuild).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from edge.contract import MAX_PAYLOAD, ContractError

from hub.ingest import occupancy

if TYPE_CHECKING:
    from hub.service import Hub

log = logging.getLogger("hallgrid.hub")
MAX_BATCH = 1000        # messages taken per turn: bounds one lock hold (~10 ms) for the API's readers
MAX_PENDING = 20_000    # messages queued before the receiver's reader waits for the worker
LINGER_S = 0.002        # a woken worker lets this much more arrive first: batches, not one message per turn


class IngestWorker:
    """One thread that handles, in order, the MQTT messages the receiver hands over."""

    def __init__(self, hub: Hub, max_batch: int = MAX_BATCH, max_pending: int = MAX_PENDING,
                 linger_s: float = LINGER_S):
        self.hub = hub
        self.linger_s = linger_s
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._queue: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._run, daemon=True, name="hub-ingest")
            self._thread.start()

    def put_many(self, messages: list[tuple[str, bytes]]) -> None:
        """From the MQTT receiver's reader: ``(topic, payload)`` messages queued in order; waits while the
        queue is full (the receiver process then stops reading, and the broker keeps the rest)."""
        while len(self._queue) >= self.max_pending and not self._stopping:
            self._wake.set()
            time.sleep(0.001)
        self._queue.extend(messages)
        if not self._wake.is_set():
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued before this call is handled (``stop``, ``release_site``, tests): a
        marker goes into the queue, and the queue is handled in order. False when it took too long."""
        marker = threading.Event()
        self._queue.append(marker)
        if self._thread is None or not self._thread.is_alive():
            while not marker.is_set():       # no worker (never started, or stopped): handle the rest here
                self._turn()
            return True
        self._wake.set()
        return marker.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Handle what is queued, then end the thread."""
        self.drain(timeout)
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    # --- the worker ----------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping:
            if not self._wake.wait(0.5):
                continue
            # Woken by the first message of a burst: the receiver reads on while this sleeps (the
            # interpreter is free), so the turn takes a batch. Without it, a flood is handled one or two
            # messages a turn, each turn paying the lock, a rule evaluation and a thread switch.
            if len(self._queue) < self.max_batch:
                time.sleep(self.linger_s)
            self._wake.clear()        # before taking: a message put after this wakes the next wait
            while self._queue:
                self._turn()

    def _turn(self) -> None:
        """Take up to ``max_batch`` messages and handle them in order; the thread survives anything."""
        taken = []
        queue = self._queue
        try:
            for _ in range(self.max_batch):
                taken.append(queue.popleft())
        except IndexError:
            pass
        run: list[occupancy.Reading | tuple[str, str]] = []
        for message in taken:
            try:
                if isinstance(message, threading.Event):     # a drain's marker: all before it is handled
                    if run:
                        self._apply(run)
                        run = []
                    message.set()
                    continue
                topic, payload = message
                parts = topic.split("/")
                if len(parts) == 5 and parts[4] == "occupancy" and len(payload) <= MAX_PAYLOAD \
                        and parts[1] in self.hub.sites:
                    try:
                        run.append(occupancy.read(payload, parts[1], parts[2], parts[3]))
                    except ContractError as exc:
                        run.append((parts[1], str(exc)))
                    continue
                if run:                        # what came before this message is handled before it
                    self._apply(run)
                    run = []
                self.hub.handle(topic, payload)
            except Exception:                  # the worker must survive anything
                self._failed(message)
        if run:
            self._apply(run)

    def _apply(self, run: list) -> None:
        try:
            occupancy.apply(self.hub, run)
        except Exception:
            self._failed(None)

    def _failed(self, message: Any) -> None:
        topic = message[0] if isinstance(message, tuple) else "a batch of occupancy messages"
        log.exception("unexpected error handling %s", topic)
        with self.hub.lock:
            self.hub.stats["errors"] += 1
