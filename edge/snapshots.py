"""Fresh single frames from a camera's source, for calibration (the editor and ``hallgrid check``).

Why not the edge service's reader as is: the installer needs to know *which*
frame they are looking at (to prove counts on it, to re-detect it), and a file
source must move on with wall time like a camera so that "a fresh frame every
second" shows people walking. Files are read forward (``grab`` skips frames
without converting them) to the frame that footage time has reached, so the
frame index is exact; live streams and USB cameras go through the edge's
``CameraReader`` (reconnects, timeouts) and hand out their latest frame, as long
as it is fresh: a camera that stopped sending is an error, never a frozen picture.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from edge.clock import SystemClock
from edge.redact import redact
from edge.sources import CameraReader, SourceKind, classify, open_capture


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR
    index: int | None  # frame number in a file source; None for live cameras


class SnapshotSource:
    """Hands out the camera's current frame on demand; thread-safe."""

    def __init__(self, source: str, live_timeout_s: float = 10.0, stale_s: float = 3.0):
        self.spec = classify(source)
        self.timeout_s = live_timeout_s
        self.stale_s = stale_s  # a live frame older than this is not the camera's current view
        self._lock = threading.Lock()
        self._cap: cv2.VideoCapture | None = None
        self._next = 0  # index of the frame the next read returns
        self._start = 0.0
        self._latest: np.ndarray | None = None
        self._latest_at = 0.0  # time.monotonic() when _latest arrived
        self._fresh = threading.Condition()
        self._reader: CameraReader | None = None

    def frame_at(self, index: int) -> Frame:
        """Frame ``index`` of a file source (wrapping at its end)."""
        with self._lock:
            if self._cap is None:
                self._cap = open_capture(self.spec)
            total = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            if total:
                index %= total
            if index < self._next:
                self._cap.release()
                self._cap, self._next = open_capture(self.spec), 0
            while self._next < index:
                if not self._cap.grab():
                    raise OSError(f"{self.spec.url} ended at frame {self._next}")
                self._next += 1
            ok, image = self._cap.read()
            if not ok or image is None:
                raise OSError(f"{self.spec.url}: frame {index} cannot be read")
            self._next += 1
            return Frame(image, index)

    def grab(self) -> Frame:
        """The frame the camera shows now (for a file: the one footage time has reached since the first grab)."""
        if self.spec.kind is SourceKind.FILE:
            if self._cap is None:
                self._start = time.monotonic()
                return self.frame_at(0)
            fps = self._cap.get(cv2.CAP_PROP_FPS) or 25.0
            return self.frame_at(max(self._next, int((time.monotonic() - self._start) * fps)))
        if self._reader is None:
            self._reader = CameraReader("calibrate", self.spec, 5.0, SystemClock(), self._on_frame,
                                        stall_s=self.stale_s)
            self._reader.start()
        deadline = time.monotonic() + self.timeout_s
        with self._fresh:
            while self._latest is None or time.monotonic() - self._latest_at > self.stale_s:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OSError(self._stale_message())
                self._fresh.wait(left)
            return Frame(self._latest, None)

    def _stale_message(self) -> str:
        """Shown to the installer (the editor's page, ``check``): the source URL without its password."""
        detail = self._reader.health.detail if self._reader else ""
        url = redact(self.spec.url)
        if self._latest is None:
            return f"no frame from {url} within {self.timeout_s:g} s: {detail}"
        return (f"{url} stopped sending frames: the last one is {time.monotonic() - self._latest_at:.0f} s "
                f"old and none came within {self.timeout_s:g} s (not shown: it would be a frozen picture): "
                f"{detail or 'no error reported'}; check the camera and its network")

    def _on_frame(self, image: np.ndarray, ts: float) -> None:
        with self._fresh:
            self._latest, self._latest_at = image, time.monotonic()
            self._fresh.notify_all()

    def close(self) -> None:
        if self._reader:
            self._reader.stop()
        with self._lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None
