"""One camera's counting pipeline: frame -> detections -> raw zone counts -> corrected -> smoothed counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration.site import Camera, SmoothingSettings
from edge.correction import corrected_counts
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
    detections: Detections
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

    def count(self, detections: Detections, width: int, height: int, ts: float) -> ZoneCounts:
        raw = self.zones.count(detections, width, height)
        corrected = corrected_counts(raw, self.correction)
        smoothed = {z: self.smoothers[z].update(n, ts) for z, n in corrected.items()}
        return ZoneCounts(raw, smoothed, detections, corrected)

    def detect(self, frame: np.ndarray) -> Detections:
        """People in a frame, with this camera's detector settings (input size, confidence, NMS)."""
        return self.detector(frame, **self.detect_options)

    def process(self, frame: np.ndarray, ts: float) -> ZoneCounts:
        h, w = frame.shape[:2]
        return self.count(self.detect(frame), w, h, ts)
