"""One camera's counting pipeline: frame -> detections -> raw zone counts -> smoothed counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration.site import Camera, SmoothingSettings
from edge.detections import Detections
from edge.detector import Detector
from edge.smoothing import CountSmoother
from edge.zones import ZoneCounter


@dataclass(frozen=True)
class ZoneCounts:
    """Counts of one processed frame: per zone, raw (this frame) and smoothed (what is published)."""

    raw: dict[str, int]
    smoothed: dict[str, int]
    detections: Detections


class CameraCounter:
    """Counts people per zone for one camera; time comes from the caller (footage or wall clock)."""

    def __init__(self, detector: Detector, camera: Camera | None = None,
                 smoothing: SmoothingSettings = SmoothingSettings()):
        self.detector = detector
        self.zones = ZoneCounter.for_camera(camera)
        self.smoothers = {z: CountSmoother(smoothing.enter_s, smoothing.exit_s) for z in self.zones.zone_ids}

    def count(self, detections: Detections, width: int, height: int, ts: float) -> ZoneCounts:
        raw = self.zones.count(detections, width, height)
        smoothed = {z: self.smoothers[z].update(n, ts) for z, n in raw.items()}
        return ZoneCounts(raw, smoothed, detections)

    def process(self, frame: np.ndarray, ts: float) -> ZoneCounts:
        h, w = frame.shape[:2]
        return self.count(self.detector(frame), w, h, ts)
