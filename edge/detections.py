"""The one data carrier that flows from the detector to zone counting and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Anchor(str, Enum):
    """Which point of a person's box decides the zone they stand in."""

    BOTTOM_CENTER = "bottom_center"  # the feet: right for cameras looking down at a floor
    CENTER = "center"


@dataclass
class Detections:
    """Person boxes in frame pixels.

    xyxy: float32 array (N, 4) of left, top, right, bottom; confidence: float32 (N,).
    candidates: when asked of the detector (a count correction that uses them), the boxes it
    proposed before NMS above a low score, float32 (M, 4); None otherwise.
    """

    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    candidates: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.xyxy)

    def anchors(self, anchor: Anchor = Anchor.BOTTOM_CENTER) -> np.ndarray:
        """(N, 2) anchor points in pixels.

        >>> Detections(np.array([[0, 0, 10, 20]], np.float32), np.ones(1, np.float32)).anchors().tolist()
        [[5.0, 20.0]]
        """
        x = (self.xyxy[:, 0] + self.xyxy[:, 2]) / 2
        y = self.xyxy[:, 3] if anchor is Anchor.BOTTOM_CENTER else (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2
        return np.stack([x, y], axis=1)

    def filter(self, keep: np.ndarray) -> "Detections":
        return Detections(self.xyxy[keep], self.confidence[keep])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of two xyxy box arrays."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def greedy_match(a: np.ndarray, b: np.ndarray, threshold: float) -> np.ndarray:
    """One-to-one pairs (i, j) of boxes with IoU >= threshold, best first: (K, 2) int array."""
    if not len(a) or not len(b):
        return np.zeros((0, 2), np.int64)
    iou = iou_matrix(a, b)
    pairs = np.argwhere(iou >= threshold)
    pairs = pairs[np.argsort(-iou[pairs[:, 0], pairs[:, 1]], kind="stable")]
    used_a, used_b, keep = set(), set(), []
    for k, (i, j) in enumerate(pairs):
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            keep.append(k)
    return pairs[keep]
