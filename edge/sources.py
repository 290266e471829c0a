"""Camera frame sources through OpenCV: RTSP/HTTP streams, USB cameras, video files and sample footage.

A reader thread per camera keeps its source drained at the source's own pace
(a stream that is not read falls behind and then breaks), converts only the
frames due at the camera's ``detect_fps`` (the others are only ``grab``-bed),
and hands them on. A source that fails to open, errors or ends is closed and
reopened with exponential backoff; a stalled one is noticed by the age of its
last frame, so a silent camera becomes ``camera_lost`` within seconds while the
other cameras carry on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import cv2
import numpy as np

from edge.clock import Clock
from edge.redact import redact
from edge.samples import resolve_sample

log = logging.getLogger(__name__)


class SourceKind(str, Enum):
    FILE = "file"  # paced at the footage's own rate, like a live camera
    STREAM = "stream"  # rtsp://, http(s)://: paced by the camera
    USB = "usb"  # usb://INDEX: a local capture device


@dataclass(frozen=True)
class SourceSpec:
    url: str
    kind: SourceKind
    loop: bool = False


def classify(source: str, loop: bool = False) -> SourceSpec:
    """What kind of source a camera's ``source`` string is (sample:// resolved to its file)."""
    if source.startswith("usb://"):
        index = source[len("usb://"):]
        if not index.isdigit():
            raise ValueError(f"USB source {source!r} needs a device index, e.g. usb://0")
        return SourceSpec(index, SourceKind.USB)
    if source.startswith("sample://"):
        return SourceSpec(resolve_sample(source), SourceKind.FILE, loop)
    if "://" in source and not source.startswith("file://"):
        return SourceSpec(source, SourceKind.STREAM)
    return SourceSpec(source.removeprefix("file://"), SourceKind.FILE, loop)


def open_capture(spec: SourceSpec, timeout_s: float = 5.0) -> cv2.VideoCapture:
    """Open a source, with open and read timeouts for network streams so that a dead camera cannot hang us.

    OpenCV's own log prints a stream's URL, password included, to stderr when it cannot open it; for a
    source with credentials it is silenced (for the process: its level is global), and our own messages,
    redacted, say what failed.
    """
    if spec.kind is SourceKind.USB:
        cap = cv2.VideoCapture(int(spec.url))
    elif spec.kind is SourceKind.STREAM:
        if redact(spec.url) != spec.url:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        ms = int(timeout_s * 1000)
        cap = cv2.VideoCapture(spec.url, cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    else:
        if not Path(spec.url).is_file():
            raise OSError(f"file {spec.url} does not exist")
        cap = cv2.VideoCapture(spec.url)
    if not cap.isOpened():
        cap.release()
        raise OSError(f"cannot open {spec.kind.value} source {redact(spec.url)}")
    return cap


@dataclass
class ReaderHealth:
    """What the service reports about a source."""

    connected: bool = False
    last_frame: float | None = None  # monotonic time of the last frame grabbed
    detail: str = "not opened yet"


class CameraReader:
    """Reads one camera in its own thread and calls ``on_frame(frame, ts)`` at ``detect_fps``."""

    def __init__(self, camera_id: str, spec: SourceSpec, detect_fps: float, clock: Clock,
                 on_frame: Callable[[np.ndarray, float], None], on_reconnect: Callable[[], None] = lambda: None,
                 stall_s: float = 3.0, backoff_s: tuple[float, float] = (0.5, 5.0)):
        self.camera_id = camera_id
        self.spec = spec
        self.period = 1.0 / detect_fps
        self.clock = clock
        self.on_frame = on_frame
        self.on_reconnect = on_reconnect
        self.stall_s = stall_s
        self.backoff_s = backoff_s
        self.health = ReaderHealth()
        self._session_frames = 0  # frames grabbed since the source was last opened
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"camera-{camera_id}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def alive(self) -> bool:
        """Delivering frames: opened and the last frame is younger than ``stall_s``."""
        h = self.health
        return h.connected and h.last_frame is not None and self.clock.monotonic() - h.last_frame < self.stall_s

    def _run(self) -> None:
        delay = self.backoff_s[0]
        reopen = False  # an open after a loss (counted as a reconnect), not the first one nor a file's loop
        while not self._stop.is_set():
            if reopen:
                self.on_reconnect()
            reopen = True
            try:
                cap = open_capture(self.spec)
            except (OSError, cv2.error) as exc:
                self._lost(str(exc))
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_s[1])
                continue
            self._session_frames = 0
            try:
                self.health.connected, self.health.detail = True, ""
                ended = self._read(cap)
            except Exception as exc:  # a decoder error must not end the camera for good
                log.exception("camera %s: source error", self.camera_id)
                ended = f"source error: {exc}"
            finally:
                cap.release()
            if self._stop.is_set():
                break
            if ended == "looped":
                delay = self.backoff_s[0]
                reopen = False
                continue
            if self._session_frames > 0:
                delay = self.backoff_s[0]  # this session worked for a while: retry quickly first
            self._lost(ended)
            self._stop.wait(delay)
            delay = min(delay * 2, self.backoff_s[1])

    def _lost(self, why: str) -> None:
        if self.health.connected or self.health.detail != why:
            log.warning("camera %s: source lost: %s", self.camera_id, why)
        self.health.connected, self.health.detail = False, why

    def _read(self, cap: cv2.VideoCapture) -> str:
        """Read until the source ends or fails; returns why ('looped' when a looped file restarts)."""
        is_file = self.spec.kind is SourceKind.FILE
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        frame_period = 1.0 / fps if is_file and 0 < fps <= 1000 else 0.0
        start = self.clock.monotonic()
        next_detect = start
        n = 0
        while not self._stop.is_set():
            if frame_period:  # play a file at footage speed, as a camera would deliver it
                wait = start + n * frame_period - self.clock.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
            if not cap.grab():
                if is_file and self.spec.loop and n > 0:
                    return "looped"
                return "end of file" if is_file else "stream stopped delivering frames"
            n += 1
            self._session_frames = n
            now = self.clock.monotonic()
            self.health.last_frame = now
            if now + 1e-3 >= next_detect:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    return "frame could not be decoded"
                next_detect += self.period
                if next_detect < now:  # fell behind (a slow decoder): do not burst to catch up
                    next_detect = now + self.period
                self.on_frame(frame, self.clock.now())
        return "stopped"


__all__ = ["CameraReader", "SourceKind", "SourceSpec", "classify", "open_capture"]
