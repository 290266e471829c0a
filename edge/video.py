"""Frames from recorded footage, with footage time, for counting, evaluation and replay."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


class VideoError(RuntimeError):
    """A video that cannot be opened or decoded; the message names the file."""


@dataclass(frozen=True)
class VideoInfo:
    path: str
    fps: float
    frames: int
    width: int
    height: int


def open_video(path: str | Path) -> tuple[cv2.VideoCapture, VideoInfo]:
    path = str(path)
    if "://" not in path and not Path(path).is_file():
        raise VideoError(f"video {path} does not exist")
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise VideoError(f"video {path} cannot be opened (not a video, or a codec OpenCV lacks)")
    info = VideoInfo(path, cap.get(cv2.CAP_PROP_FPS) or 0.0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
                     int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    if info.fps <= 0 or info.fps > 1000:
        info = VideoInfo(info.path, 25.0, info.frames, info.width, info.height)
    return cap, info


def video_info(path: str | Path) -> VideoInfo:
    """A video's rate, length and size, without keeping it open."""
    cap, info = open_video(path)
    cap.release()
    return info


def read_frames(path: str | Path, detect_fps: float | None = None,
                prefetch: int = 4) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield (frame index, seconds from the start, BGR frame).

    With ``detect_fps`` below the video's rate, frames in between are skipped
    with ``grab`` (no colour conversion), which is what makes replay fast.
    Decoding runs ``prefetch`` frames ahead in a thread (OpenCV releases the
    GIL), so it overlaps with inference instead of adding to it.
    """
    frames = _decode(path, detect_fps)
    if prefetch <= 0:
        yield from frames
        return
    yield from _prefetched(frames, prefetch)


def _prefetched(items: Iterator, depth: int) -> Iterator:
    """Run an iterator in a daemon thread, ``depth`` items ahead; its exceptions re-raise here.

    When the consumer stops early, the producer stops too and closes the iterator in its own
    thread, so the video is released at once rather than whenever the garbage collector runs.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer
            put(exc)
        finally:
            items.close()

    thread = threading.Thread(target=produce, daemon=True, name="frame-prefetch")
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=2)


def _step(info: VideoInfo, detect_fps: float | None) -> float:
    """Frames from one detected frame to the next (1: every frame)."""
    return 1.0 if not detect_fps or detect_fps >= info.fps else info.fps / detect_fps


def expected_frames(info: VideoInfo, detect_fps: float | None = None) -> int:
    """How many frames ``read_frames`` yields for a video of ``info.frames`` frames (a progress total).

    Frame k*step is picked at the first index at or after it, so the picks are k = 0 .. (frames-1)/step."""
    if info.frames <= 0:
        return 0
    return int((info.frames - 1 + 1e-9) // _step(info, detect_fps)) + 1


def _decode(path: str | Path, detect_fps: float | None) -> Iterator[tuple[int, float, np.ndarray]]:
    cap, info = open_video(path)
    step = _step(info, detect_fps)
    try:
        index, next_pick, decoded = 0, 0.0, 0
        while True:
            if index + 1e-9 >= next_pick:
                ok, frame = cap.read()
                if not ok:
                    break
                decoded += 1
                yield index, index / info.fps, frame
                next_pick += step
            elif not cap.grab():
                break
            index += 1
        if decoded == 0:
            raise VideoError(f"video {path} has no decodable frames")
    finally:
        cap.release()
