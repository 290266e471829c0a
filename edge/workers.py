"""Frame slots and detector workers: every camera's newest due frame, served round-robin in batches.

Detection is the scarce resource on a small box, so cameras do not each own a
detector: each camera leaves its newest due frame in a slot, and the detector
workers take the waiting frames of several cameras at once, in round-robin
order, for one batched ``session.run``. A worker never waits to fill a batch:
it takes what is waiting, so a lightly loaded box runs batches of one with no
added delay, and a loaded one batches the frames that came due while the last
batch ran. A camera that produces frames faster than its share overwrites its
own slot (counted as a dropped frame) and cannot starve the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

Item = tuple[str, np.ndarray, float]  # camera, frame, ts


class FrameSlots:
    """Newest due frame per camera; taken round-robin so that every camera gets its turn at the detector.

    A camera whose frame is being processed is busy: ``take`` skips it until
    ``done(camera)``, so that with several workers one camera's frames are still
    processed one at a time and in order (its smoother, schedule and rate are
    not thread-safe, and an older count must not be stored after a newer one).
    """

    def __init__(self, cameras: list[str], on_drop: Callable[[str], None]):
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

    def take(self, timeout: float = 0.5) -> Item | None:
        """The next waiting frame of a camera not being processed; the caller must call ``done`` after it."""
        items = self.take_many(1, timeout)
        return items[0] if items else None

    def take_many(self, limit: int, timeout: float = 0.5) -> list[Item]:
        """Up to ``limit`` waiting frames of cameras not being processed, in round-robin order from where
        the last take stopped (empty after ``timeout``); the caller must call ``done`` for each camera."""
        with self._cond:
            end = time.monotonic() + timeout
            while not self.closed:
                taken: list[Item] = []
                n = len(self._order)
                for i in range(n):
                    cam = self._order[(self._next + i) % n]
                    item = self._slots[cam]
                    if item is not None and cam not in self._busy:
                        self._slots[cam] = None
                        self._busy.add(cam)
                        taken.append((cam, item[0], item[1]))
                        if len(taken) == limit:
                            self._next = (self._next + i + 1) % n
                            return taken
                if taken:
                    self._next = (self._order.index(taken[-1][0]) + 1) % n
                    return taken
                left = end - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    return []
            return []

    def done(self, camera: str) -> None:
        """The frame ``take`` gave for ``camera`` is processed: its next frame may be taken."""
        with self._cond:
            self._busy.discard(camera)
            if self._slots[camera] is not None:
                self._cond.notify()

    def serve(self, process: Callable[[list[Item]], None], stop: threading.Event, batch: int = 1,
              timeout: float = 0.5) -> None:
        """A detector worker: take up to ``batch`` frames in turn and ``process`` them together until
        ``stop``, releasing each camera afterwards."""
        while not stop.is_set():
            items = self.take_many(batch, timeout)
            if not items:
                continue
            try:
                process(items)
            finally:
                for cam, _, _ in items:
                    self.done(cam)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def plan_workers(workers: int, threads: int, cores: int) -> tuple[int, int]:
    """Detector workers and onnxruntime threads per run for a box of ``cores``: ``workers=0`` is one per
    core; ``threads=0`` shares the cores among the workers. One worker per core, each run on one thread,
    keeps every core busy (while one worker letterboxes or counts, the other runs the model) and
    measured faster than one worker whose runs spread over all cores (README, bench/cameras.py)."""
    workers = workers or max(1, cores)
    return workers, threads or max(1, cores // workers)
