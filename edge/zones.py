"""Which zone each detection stands in.

Each zone polygon (minus the camera's exclusion masks) is rasterised once per
frame size into a boolean mask, so testing N detections is one vectorised
lookup of their anchor points rather than N point-in-polygon calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from calibration.site import Camera
from edge.detections import Anchor, Detections

WHOLE_FRAME = "frame"  # the zone id used when no site is given


@dataclass(frozen=True)
class ZoneShape:
    """A zone's id and polygon in relative coordinates (0..1)."""

    id: str
    polygon: Sequence[Sequence[float]]


def to_pixels(polygon: Sequence[Sequence[float]], width: int, height: int) -> np.ndarray:
    """A relative polygon (0..1) -> (N, 2) int32 pixel vertices of a ``width`` x ``height`` frame.

    >>> to_pixels([(0, 0), (1, 0.5)], 101, 11).tolist()
    [[0, 0], [100, 5]]
    """
    return np.round(np.asarray(polygon, np.float64) * (width - 1, height - 1)).astype(np.int32)


def rasterise(polygons: Sequence[Sequence[Sequence[float]]], width: int, height: int) -> np.ndarray:
    """Fill relative polygons into one boolean mask of the frame size."""
    mask = np.zeros((height, width), np.uint8)
    for poly in polygons:
        cv2.fillPoly(mask, [to_pixels(poly, width, height)], 1)
    return mask.astype(bool)


class ZoneCounter:
    """Counts detections per zone for one camera.

    >>> zc = ZoneCounter([ZoneShape("left", [(0, 0), (0.5, 0), (0.5, 1), (0, 1)])])
    >>> zc.count(Detections(np.array([[10, 0, 20, 50]], np.float32), np.ones(1, np.float32)), 100, 100)
    {'left': 1}
    """

    def __init__(self, zones: Sequence[ZoneShape], masks: Sequence[Sequence[Sequence[float]]] = (),
                 anchor: Anchor = Anchor.BOTTOM_CENTER):
        self.zones = list(zones) or [ZoneShape(WHOLE_FRAME, [(0, 0), (1, 0), (1, 1), (0, 1)])]
        self.masks = list(masks)
        self.anchor = anchor
        self._size: tuple[int, int] | None = None
        self._inside: np.ndarray = np.zeros((0, 0, 0), bool)  # (zones, height, width)
        self._ignored: np.ndarray = np.zeros((0, 0), bool)

    @classmethod
    def for_camera(cls, camera: Camera | None, anchor: Anchor = Anchor.BOTTOM_CENTER) -> "ZoneCounter":
        if camera is None:
            return cls([], anchor=anchor)
        return cls([ZoneShape(z.id, z.polygon) for z in camera.zones], [m.polygon for m in camera.masks], anchor)

    @property
    def zone_ids(self) -> list[str]:
        return [z.id for z in self.zones]

    def _prepare(self, width: int, height: int) -> None:
        if self._size == (width, height):
            return
        self._ignored = rasterise(self.masks, width, height)
        self._inside = np.stack([rasterise([z.polygon], width, height) & ~self._ignored for z in self.zones])
        self._size = (width, height)

    def _pixels(self, detections: Detections, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        pts = detections.anchors(self.anchor)
        xs = np.clip(pts[:, 0].astype(np.int32), 0, width - 1)
        ys = np.clip(pts[:, 1].astype(np.int32), 0, height - 1)
        return xs, ys

    def membership(self, detections: Detections, width: int, height: int) -> np.ndarray:
        """(zones, N) boolean: detection n counts in zone z."""
        self._prepare(width, height)
        xs, ys = self._pixels(detections, width, height)
        return self._inside[:, ys, xs]

    def unmasked(self, detections: Detections, width: int, height: int) -> Detections:
        """The detections whose anchor is outside every exclusion mask."""
        self._prepare(width, height)
        xs, ys = self._pixels(detections, width, height)
        return detections.filter(~self._ignored[ys, xs])

    def areas(self, width: int, height: int) -> np.ndarray:
        """(zones,) pixels of each zone that count (masks excluded): how dense a zone's crowd is."""
        self._prepare(width, height)
        return self._inside.sum(axis=(1, 2)).astype(float)

    def count(self, detections: Detections, width: int, height: int) -> dict[str, int]:
        totals = self.membership(detections, width, height).sum(axis=1)
        return {z.id: int(n) for z, n in zip(self.zones, totals)}
