"""One camera's MQTT link: its own connection (so its own last will), status, and the outbox sender.

Why a connection per camera: MQTT allows one last will per connection and the
contract puts ``offline`` on each camera's status topic when the box dies.

Why a sender thread over the outbox instead of publishing as counts come: paho
queues messages published while disconnected in memory and re-sends its
in-flight ones after a reconnect, on its own. Mixing that with our own resends
would reorder retained values. So the outbox is the truth, one sender hands
paho the oldest rows (a window of them) only while connected, rows are deleted
when the broker's PUBACK arrives, and after a connection drops no new row is
handed over until paho's re-sent ones are acknowledged: order is kept across
the gap.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.metrics import EdgeMetrics
from edge.mqtt_url import BrokerSettings
from edge.outbox import Outbox

log = logging.getLogger(__name__)


class CameraLink:
    """Publishes one camera's outbox rows and status to the broker, reconnecting on its own."""

    def __init__(self, broker: BrokerSettings, client_id: str, camera: str, status_topic: str,
                 will_payload: str, outbox: Outbox, metrics: EdgeMetrics,
                 extra_on_connect: Callable[[], list[tuple[str, str]]] = lambda: [],
                 window: int = 20, keepalive: int = 15):
        self.broker = broker
        self.camera = camera
        self.status_topic = status_topic
        self.outbox = outbox
        self.metrics = metrics
        self.window = window
        self.keepalive = keepalive
        self.extra_on_connect = extra_on_connect  # retained (topic, payload) pairs, e.g. Home Assistant discovery
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = False
        self._closing = False
        self._connection_dropped = False
        self._connections = 0
        self._inflight: dict[int, int] = {}  # paho mid -> outbox row id; touched only by the sender thread
        self._stale: set[int] = set()  # mids handed to paho before a disconnect (paho re-sends them)
        self._status: str | None = None
        self._status_dirty = False
        self._status_lock = threading.Lock()
        self._outbox_failing = False
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        self.client.max_inflight_messages_set(window + 10)
        self.client.reconnect_delay_set(min_delay=1, max_delay=4)
        self.client.will_set(status_topic, will_payload, qos=1, retain=True)
        broker.apply(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._sender = threading.Thread(target=self._send_loop, daemon=True, name=f"mqtt-send-{camera}")

    def start(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=self.keepalive)
        self.client.loop_start()
        self._sender.start()

    def set_status(self, payload: str) -> None:
        """The retained status to show now; sent at once when connected, else on the next connection."""
        with self._status_lock:
            self._status, self._status_dirty = payload, True
        self._wake.set()

    def wake(self) -> None:
        """New rows are in the outbox."""
        self._wake.set()

    def stop(self, final_status: str, flush_s: float = 3.0) -> None:
        """Say ``offline`` and give the backlog a moment to reach the broker, then disconnect cleanly."""
        self.set_status(final_status)
        deadline = threading.Event()
        waited = 0.0
        while waited < flush_s and self._connected and (self._status_dirty or self._inflight
                                                        or self.outbox.depth(self.camera)):
            deadline.wait(0.05)
            waited += 0.05
        self._stop.set()
        self._wake.set()
        self._sender.join(timeout=2)
        if self._connected:
            info = self.client.publish(self.status_topic, final_status, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=1.0)
            except (RuntimeError, ValueError):
                pass
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()

    # paho callbacks (network thread): only flags and queues, never our locks (paho holds its own here)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("camera %s: broker %s refused the connection: %s", self.camera, self.broker.redacted(),
                        reason_code)
            return
        self._connections += 1
        if self._connections > 1:
            self.metrics.mqtt_reconnects.labels(self.camera).inc()
        log.info("camera %s: connected to %s", self.camera, self.broker.redacted())
        with self._status_lock:
            self._status_dirty = self._status is not None
        for topic, payload in self.extra_on_connect():
            client.publish(topic, payload, qos=1, retain=True)
        self._connected = True
        self.metrics.mqtt_connected.labels(self.camera).set(1)
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected and not self._closing:
            log.warning("camera %s: lost the broker (%s); counting goes on into the outbox", self.camera,
                        reason_code)
        self._connected = False
        self._connection_dropped = True
        self.metrics.mqtt_connected.labels(self.camera).set(0)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acks.put(mid)
        self._wake.set()

    # the sender thread

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.2)
            self._wake.clear()
            try:
                self._send_once()
                self._outbox_failing = False
            except sqlite3.Error as exc:   # disk full, read-only: one line per run of failures, not a traceback each
                if not self._outbox_failing:
                    log.error("camera %s: the outbox cannot be read or written (%s); retrying", self.camera, exc)
                self._outbox_failing = True
                self._stop.wait(0.5)
            except Exception:  # a bad row or a paho hiccup must not end publishing for good
                log.exception("camera %s: sender error; retrying", self.camera)
                self._stop.wait(0.5)

    def _send_once(self) -> None:
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                break
            self._stale.discard(mid)
            row_id = self._inflight.pop(mid, None)
            if row_id is not None:
                self.outbox.ack(row_id)
                self.metrics.published.labels(self.camera).inc()
        if self._connection_dropped:
            self._connection_dropped = False
            self._stale.update(self._inflight)
        if not self._connected:
            return
        with self._status_lock:
            status, dirty = self._status, self._status_dirty
            self._status_dirty = False
        if dirty and status is not None:
            self.client.publish(self.status_topic, status, qos=1, retain=True)
        if self._stale:
            return  # paho is re-sending older rows; newer ones wait so that retained values stay in order
        room = self.window - len(self._inflight)
        if room <= 0:
            return
        for row in self.outbox.oldest(self.camera, room, exclude=set(self._inflight.values())):
            info = self.client.publish(row.topic, row.payload, qos=1, retain=True)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                break
            self._inflight[info.mid] = row.id
