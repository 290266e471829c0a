"""The edge service: every camera of a site read in its own thread, one shared detector, occupancy over MQTT.

Detection is the scarce resource on a small box, so cameras do not each own a
detector: each camera leaves its newest due frame in a slot, and the detector
worker(s) serve the slots round-robin. A camera that produces frames faster
than its share overwrites its own slot (counted as dropped frames) and cannot
starve the others. onnxruntime uses the cores the process is given.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calibration.site import Camera, Site
from edge.clock import Clock, SystemClock
from edge.contract import (DEFAULT_PREFIX, MAX_DETAIL, CameraState, StatusMessage, iso_ts, occupancy_topic,
                           status_topic)
from edge.counting import CameraCounter
from edge.detector import Detector, DetectorConfig
from edge.discovery import discovery_messages
from edge.metrics import EdgeMetrics
from edge.mqtt_url import BrokerSettings
from edge.occupancy import PublishSchedule, RateMeter, occupancy_message
from edge.outbox import Outbox
from edge.publisher import CameraLink
from edge.redact import redact
from edge.sources import CameraReader, classify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EdgeConfig:
    """Everything one edge process needs; built by the command line from the site file and options."""

    site: Site
    cameras: list[Camera]
    broker: BrokerSettings
    detector: DetectorConfig
    outbox_path: Path
    prefix: str = DEFAULT_PREFIX
    heartbeat_s: float = 10.0
    outbox_max_rows: int = 100_000
    discovery: bool = False
    stall_s: float = 3.0
    workers: int = 1
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"   # loopback unless the operator opens it: the counts are the hall's business


class FrameSlots:
    """Newest due frame per camera; taken round-robin so that every camera gets its turn at the detector.

    A camera whose frame is being processed is busy: ``take`` skips it until
    ``done(camera)``, so that with several workers one camera's frames are still
    processed one at a time and in order (its smoother, schedule and rate are
    not thread-safe, and an older count must not be stored after a newer one).
    """

    def __init__(self, cameras: list[str], on_drop):
        self._order = list(cameras)
        self._slots: dict[str, tuple[np.ndarray, float] | None] = {c: None for c in cameras}
        self._busy: set[str] = set()
        self._cond = threading.Condition()
        self._next = 0
        self._on_drop = on_drop
        self.closed = False

    def put(self, camera: str, frame: np.ndarray, ts: float) -> None:
        with self._cond:
            if self._slots[camera] is not None:
                self._on_drop(camera)
            self._slots[camera] = (frame, ts)
            self._cond.notify()

    def take(self, timeout: float = 0.5) -> tuple[str, np.ndarray, float] | None:
        """The next waiting frame of a camera not being processed; the caller must call ``done`` after it."""
        with self._cond:
            end = time.monotonic() + timeout
            while not self.closed:
                for i in range(len(self._order)):
                    cam = self._order[(self._next + i) % len(self._order)]
                    item = self._slots[cam]
                    if item is not None and cam not in self._busy:
                        self._slots[cam] = None
                        self._busy.add(cam)
                        self._next = (self._next + i + 1) % len(self._order)
                        return cam, item[0], item[1]
                left = end - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    return None
            return None

    def done(self, camera: str) -> None:
        """The frame ``take`` gave for ``camera`` is processed: its next frame may be taken."""
        with self._cond:
            self._busy.discard(camera)
            if self._slots[camera] is not None:
                self._cond.notify()

    def serve(self, process: Callable[[str, np.ndarray, float], None], stop: threading.Event,
              timeout: float = 0.5) -> None:
        """A detector worker: take frames in turn and ``process`` them until ``stop``, releasing each camera."""
        while not stop.is_set():
            item = self.take(timeout)
            if item is None:
                continue
            cam = item[0]
            try:
                process(*item)
            finally:
                self.done(cam)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


@dataclass
class CameraRuntime:
    """One camera's moving parts."""

    camera: Camera
    counter: CameraCounter
    reader: CameraReader
    link: CameraLink
    schedule: PublishSchedule
    rate: RateMeter = field(default_factory=RateMeter)
    state: CameraState | None = None
    last_status: float = -1e18
    outbox_error: str | None = None   # why the last outbox write failed; None once one succeeds again
    outbox_failed: int = 0


class EdgeService:
    """Runs all cameras until ``stop``; never raises for a bad frame, a lost camera or a lost broker."""

    def __init__(self, config: EdgeConfig, clock: Clock | None = None, metrics: EdgeMetrics | None = None,
                 detector: Detector | None = None):
        self.config = config
        self.clock = clock or SystemClock()
        self.metrics = metrics or EdgeMetrics()
        self.detector = detector or Detector(config.detector)
        self.outbox = Outbox(config.outbox_path, config.outbox_max_rows, clock=self.clock.now)
        self.site = config.site
        self._stop = threading.Event()
        self._started = 0.0
        ids = [c.id for c in config.cameras]
        self.slots = FrameSlots(ids, lambda cam: self.metrics.dropped_frames.labels(cam).inc())
        self.cameras: dict[str, CameraRuntime] = {}
        for cam in config.cameras:
            spec = classify(self.site.resolve_source(cam), cam.loop)
            reader = CameraReader(cam.id, spec, cam.detect_fps, self.clock,
                                  on_frame=lambda f, ts, c=cam.id: self.slots.put(c, f, ts),
                                  on_reconnect=lambda c=cam.id: self.metrics.source_reconnects.labels(c).inc(),
                                  stall_s=config.stall_s)
            link = CameraLink(config.broker, f"hallgrid-{self.site.id}-{cam.id}", cam.id,
                              status_topic(self.site.id, cam.id, config.prefix),
                              self._status(cam.id, CameraState.OFFLINE, 0.0, "last will: the edge box is gone"),
                              self.outbox, self.metrics,
                              extra_on_connect=(lambda c=cam: discovery_messages(self.site, c, config.prefix))
                              if config.discovery else (lambda: []))
            counter = CameraCounter(self.detector, cam, self.site.smoothing)
            self.cameras[cam.id] = CameraRuntime(cam, counter, reader, link, PublishSchedule(config.heartbeat_s))
        self._workers = [threading.Thread(target=self._detect_loop, daemon=True, name=f"detect-{i}")
                         for i in range(max(1, config.workers))]
        self._supervisor = threading.Thread(target=self._supervise, daemon=True, name="supervisor")

    def _status(self, camera: str, state: CameraState, fps: float, detail: str) -> str:
        """The retained status: readable by every subscriber, so the detail is redacted and bounded."""
        rt = self.cameras.get(camera)   # None while the links are being built (their last will)
        return StatusMessage(state=state, ts=iso_ts(self.clock.now()), fps=round(fps, 2),
                             detail=redact(detail)[:MAX_DETAIL], site=self.site.id, camera=camera,
                             outbox_depth=self.outbox.depth(camera), outbox_dropped=self.outbox.dropped(),
                             outbox_failed=rt.outbox_failed if rt else 0, epoch=self.outbox.epoch).to_json()

    def start(self) -> None:
        if self.config.metrics_port is not None:
            self.metrics.serve(self.config.metrics_port, self.config.metrics_addr)
        self._started = self.clock.monotonic()
        for rt in self.cameras.values():
            rt.link.start()
            rt.reader.start()
        for w in self._workers:
            w.start()
        self._supervisor.start()

    def request_stop(self) -> None:
        """Ask ``wait`` to return (safe from a signal handler); ``stop`` does the shutdown."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stop.wait(timeout)

    def stop(self) -> None:
        """Stop reading, say ``offline`` on every camera and flush what the broker will still take."""
        self._stop.set()
        self.slots.close()
        for rt in self.cameras.values():
            rt.reader.stop()
        for w in self._workers:
            w.join(timeout=5)
        self._supervisor.join(timeout=5)
        for rt in self.cameras.values():
            rt.link.stop(self._status(rt.camera.id, CameraState.OFFLINE, 0.0, "edge service stopped"))
        self.outbox.close()

    # detection

    def _detect_loop(self) -> None:
        self.slots.serve(self._process_safely, self._stop)

    def _process_safely(self, cam: str, frame: np.ndarray, ts: float) -> None:
        try:
            self._process(self.cameras[cam], frame, ts)
        except Exception:  # one bad frame is logged and counted; the service goes on
            log.exception("camera %s: frame failed", cam)
            self.metrics.bad_frames.labels(cam).inc()

    def _process(self, rt: CameraRuntime, frame: np.ndarray, ts: float) -> None:
        started = time.perf_counter()
        detections = rt.counter.detect(frame)
        self.metrics.inference.labels(rt.camera.id).observe(time.perf_counter() - started)
        self.metrics.frames.labels(rt.camera.id).inc()
        h, w = frame.shape[:2]
        result = rt.counter.count(detections, w, h, ts)
        now = self.clock.monotonic()
        rt.rate.tick(now)
        due = rt.schedule.due(result.smoothed, now, mark=False)
        if not due:
            return
        epoch = self.outbox.epoch

        def builder(zone: str):
            def build(seq: int) -> tuple[str, str]:
                msg = occupancy_message(self.site.id, rt.camera, zone, ts, result.smoothed, result.raw, seq, epoch)
                return occupancy_topic(self.site.id, rt.camera.id, zone, self.config.prefix), msg.to_json()
            return build

        try:
            self.outbox.add_many(rt.camera.id, [builder(zone) for zone in due])  # one transaction per frame
        except sqlite3.Error as exc:   # disk full, read-only, I/O error: the counts are lost, and that must show
            self._outbox_failed(rt, f"outbox write failed: {exc}")
            return
        rt.schedule.mark_sent(due, result.smoothed, now)   # only now: a count not stored stays due
        if rt.outbox_error is not None:
            log.warning("camera %s: the outbox takes counts again", rt.camera.id)
            rt.outbox_error = None
        rt.link.wake()

    def _outbox_failed(self, rt: CameraRuntime, reason: str) -> None:
        """Count the lost frame's messages, say ``degraded`` with the reason at once, log the first of a run."""
        rt.outbox_failed += 1
        self.metrics.outbox_failures.labels(rt.camera.id).inc()
        if rt.outbox_error is None:
            log.error("camera %s: %s; its counts are lost until the outbox can be written", rt.camera.id, reason)
            rt.outbox_error = reason
            rt.state = CameraState.DEGRADED
            rt.link.set_status(self._status(rt.camera.id, CameraState.DEGRADED, rt.rate.rate(self.clock.monotonic()),
                                            reason))

    # health

    def _supervise(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self._check_health()
            except Exception:
                log.exception("health check failed")

    def _check_health(self) -> None:
        now = self.clock.monotonic()
        for cam_id, rt in self.cameras.items():
            alive = rt.reader.alive()
            fps = rt.rate.rate(now)
            self.metrics.fps.labels(cam_id).set(round(fps, 3))
            self.metrics.camera_up.labels(cam_id).set(1 if alive else 0)
            if not alive and rt.state is None and now - self._started < self.config.stall_s:
                continue  # still opening: no camera_lost flash at start-up
            error = rt.outbox_error
            state = (CameraState.DEGRADED if error else CameraState.ONLINE) if alive else CameraState.CAMERA_LOST
            if state != rt.state or now - rt.last_status >= self.config.heartbeat_s:
                if state != rt.state:
                    log.info("camera %s: %s %s", cam_id, state.value, rt.reader.health.detail)
                detail = (error or "") if alive else (rt.reader.health.detail or "no frames")
                rt.link.set_status(self._status(cam_id, state, fps, detail))
                rt.state, rt.last_status = state, now
        self.metrics.outbox_depth.set(self.outbox.depth())
        self.metrics.outbox_dropped.set(self.outbox.dropped())
