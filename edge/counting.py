"""One camera's counting pipeline: frame -> detections -> raw zone counts -> corrected -> smoothed counts."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from calibration.site import Camera, SmoothingSettings
from edge.correction import candidate_boxes, corrected_counts, zone_features
from edge.detections import Detections
from edge.detector import Detector
from edge.smoothing import CountSmoother
from edge.zones import ZoneCounter


@dataclass(frozen=True)
class ZoneCounts:
    """Counts of one processed frame, per zone: raw (detections), corrected (people this frame, after the
    camera's occlusion correction; equal to raw without one) and smoothed (what is published)."""

    raw: dict[str, int]
    smoothed: dict[str, int]
    detections: Detections  # the counted ones (above the camera's confidence)
    corrected: dict[str, int]


class CameraCounter:
    """Counts people per zone for one camera; time comes from the caller (footage or wall clock)."""

    def __init__(self, detector: Detector, camera: Camera | None = None,
                 smoothing: SmoothingSettings = SmoothingSettings()):
        self.detector = detector
        self.zones = ZoneCounter.for_camera(camera)
        settings = camera.detector if camera else None
        self.detect_options = settings.model_dump(exclude_none=True) if settings else {}
        self.correction = camera.count_correction if camera else None
        self.smoothers = {z: CountSmoother(smoothing.enter_s, smoothing.exit_s) for z in self.zones.zone_ids}
        # A banded correction also looks at detections scoring below the counting threshold: they are
        # asked of the detector in the same pass, and only those above the threshold are counted (NMS
        # keeps a box by the higher-scoring boxes alone, so the counted ones are exactly the same).
        self.threshold = self.detect_options.get("confidence", detector.config.confidence)
        lowest = self.correction.lowest_score if self.correction else None
        self.search_options = dict(self.detect_options)
        self._areas: dict[tuple[int, int], np.ndarray] = {}
        if lowest is not None and lowest < self.threshold:
            self.search_options["confidence"] = lowest
        if self.correction is not None and self.correction.candidate_score is not None:
            self.search_options["candidates"] = self.correction.candidate_score

    def count(self, detections: Detections, width: int, height: int, ts: float) -> ZoneCounts:
        """``detections`` as ``detect`` gives them (with the correction's low-scoring ones, if it has any)."""
        counted = detections
        if self.search_options.get("confidence") != self.detect_options.get("confidence"):
            counted = detections.filter(detections.confidence > self.threshold)
        raw = self.zones.count(counted, width, height)
        features = None
        if self.correction is not None and self.correction.score_bands:
            candidates = None
            if self.correction.candidate_score is not None:
                candidates = self.zones.membership(candidate_boxes(detections), width, height)
            features = zone_features(detections, self.zones.membership(detections, width, height),
                                     self._zone_areas(width, height), self.correction.score_bands, candidates)
        corrected = corrected_counts(raw, self.correction, features)
        smoothed = {z: self.smoothers[z].update(n, ts) for z, n in corrected.items()}
        return ZoneCounts(raw, smoothed, counted, corrected)

    def _zone_areas(self, width: int, height: int) -> np.ndarray:
        if (width, height) not in self._areas:
            self._areas = {(width, height): self.zones.areas(width, height)}  # a stream keeps its size
        return self._areas[width, height]

    def detect(self, frame: np.ndarray) -> Detections:
        """People in a frame, with this camera's detector settings (input size, confidence, NMS); with a
        banded correction also those it looks at below the confidence (``count`` tells them apart)."""
        return self.detector(frame, **self.search_options)

    def process(self, frame: np.ndarray, ts: float) -> ZoneCounts:
        h, w = frame.shape[:2]
        return self.count(self.detect(frame), w, h, ts)


def detect_many(counters: list[CameraCounter], frames: list[np.ndarray]) -> list[Detections]:
    """People in one frame of each camera, each with its camera's settings, batched into one model run
    per input shape (the counters share one detector)."""
    return counters[0].detector.detect_many(frames, [c.search_options for c in counters])


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or ``taskset`` limits)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def stream_layout(threads: int, cores: int | None = None) -> tuple[int, int]:
    """How one video is counted on this box: (onnxruntime threads per run, frames detected at once).

    ``threads`` 0 (the default: all cores) gives one thread per run and a frame per core. The model is
    small: one run spread over two threads leaves the cores waiting between kernels and while the
    frame is letterboxed and its boxes decoded, where two frames detected side by side on one thread
    each keep both busy (``bench/pipeline.py`` measures both). An explicit count keeps one frame at a time
    on that many threads, as before. ``cores``: this video's share of the box (default: all usable cores).
    """
    if threads:
        return threads, 1
    return 1, max(1, usable_cores() if cores is None else cores)


def count_stream(counter: CameraCounter, frames: Iterable[tuple[int, float, np.ndarray]], ahead: int = 1
                 ) -> Iterator[tuple[int, float, np.ndarray, ZoneCounts]]:
    """``(index, ts, frame, counts)`` for each frame of a video, in order: what ``counter.process`` gives
    frame by frame, with up to ``ahead`` frames detected at once in worker threads (onnxruntime and
    OpenCV release the GIL). Counting (zones, correction, smoothing) stays in order in the caller's
    thread, so the counts are the same whatever ``ahead`` is."""
    if ahead <= 1:
        for index, ts, frame in frames:
            yield index, ts, frame, counter.process(frame, ts)
        return
    with ThreadPoolExecutor(ahead, thread_name_prefix="detect") as pool:
        pending: deque = deque()
        try:
            for index, ts, frame in frames:
                pending.append((index, ts, frame, pool.submit(counter.detect, frame)))
                if len(pending) > ahead:
                    yield _counted(counter, *pending.popleft())
            while pending:
                yield _counted(counter, *pending.popleft())
        finally:                          # a consumer that stops early leaves no detection running
            for *_, future in pending:
                future.cancel()


def _counted(counter: CameraCounter, index: int, ts: float, frame: np.ndarray, future) -> tuple:
    h, w = frame.shape[:2]
    return index, ts, frame, counter.count(future.result(), w, h, ts)
