"""Tiled detection for packed views: overlapping enlarged tiles, merged across their seams (SAHI's method).

Seen whole, a crowd standing shoulder to shoulder is one texture to a COCO person
detector: on the densest Beijing-BRT image it finds 6 of 63 people at any input
size. Cut into tiles of a few people each and enlarged to the size it was trained
on, it finds most of them. Tiles overlap so that everyone lies wholly inside one;
a person cut at a tile's edge leaves a partial box inside their whole one, which
intersection-over-smaller (IoS) removes where plain IoU would keep both. The
whole frame is usually detected as well (``full_frame``): the large people near
the camera do not fit in a tile. Tiles of one camera have one size, so they go
through the model in one batched run (Detector.detect_many).

Settings: calibration.site.TileSettings (a camera's ``detector.tiles``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from calibration.site import TileSettings
from edge.detections import Detections

if TYPE_CHECKING:
    from edge.detector import Detector


@dataclass(frozen=True)
class Tile:
    """A crop of the frame in pixels (x1, y1 exclusive) and the detector input size it gets."""

    x0: int
    y0: int
    x1: int
    y1: int
    input_size: int


def _starts(lo: int, hi: int, side: int, step: int) -> list[int]:
    """Tile starts covering [lo, hi): every ``step``, the last one moved back to end at ``hi`` (as SAHI)."""
    if hi - lo <= side:
        return [lo]
    starts = list(range(lo, hi - side, step))
    return starts + [hi - side]


def plan_tiles(width: int, height: int, settings: TileSettings) -> list[Tile]:
    """The tiles of a ``width`` x ``height`` frame: squares over the region, overlapping by ``overlap``.

    >>> [(t.x0, t.y0, t.x1, t.y1, t.input_size) for t in plan_tiles(360, 640, TileSettings(tile=0.5,
    ...  region=(0, 0, 1, 0.5)))]
    [(0, 0, 180, 180, 270), (135, 0, 315, 180, 270), (180, 0, 360, 180, 270), (0, 135, 180, 315, 270), (135, 135, 315, 315, 270), (180, 135, 360, 315, 270), (0, 140, 180, 320, 270), (135, 140, 315, 320, 270), (180, 140, 360, 320, 270)]
    """
    rx0, ry0, rx1, ry1 = settings.region or (0.0, 0.0, 1.0, 1.0)
    x0, y0 = round(rx0 * width), round(ry0 * height)
    x1, y1 = max(round(rx1 * width), x0 + 1), max(round(ry1 * height), y0 + 1)
    side = max(round(settings.tile * min(width, height)), 1)
    tw, th = min(side, x1 - x0), min(side, y1 - y0)
    step_x = max(round(tw * (1 - settings.overlap)), 1)
    step_y = max(round(th * (1 - settings.overlap)), 1)
    size = max(round(settings.scale * max(tw, th)), 32)
    return [Tile(x, y, x + tw, y + th, size) for y in _starts(y0, y1, th, step_y) for x in _starts(x0, x1, tw, step_x)]


def merge(boxes: np.ndarray, scores: np.ndarray, iou: float, ios: float) -> np.ndarray:
    """Indices of the boxes kept, best score first: a box goes when a kept one overlaps it by more than
    ``iou`` (IoU, as NMS) or holds more than ``ios`` of the smaller of the two (a partial box at a seam).

    >>> merge(np.array([[0, 0, 10, 40], [0, 0, 10, 22], [20, 0, 30, 40]], np.float32),
    ...       np.array([0.9, 0.8, 0.7], np.float32), 0.45, 0.6).tolist()
    [0, 2]
    """
    if not len(boxes):
        return np.zeros(0, np.int64)
    x0, y0, x1, y1 = (boxes[:, i] for i in range(4))
    area = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    iw = np.clip(np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None]), 0, None)
    ih = np.clip(np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None]), 0, None)
    inter = iw * ih
    union = area[:, None] + area[None] - inter
    smaller = np.minimum(area[:, None], area[None])
    same = (inter > iou * np.maximum(union, 1e-9)) | (inter > ios * np.maximum(smaller, 1e-9))
    order = np.argsort(-scores, kind="stable")
    alive = np.ones(len(boxes), bool)
    keep = []
    for i in order:
        if alive[i]:
            keep.append(i)
            alive &= ~same[i]
    return np.asarray(keep, np.int64)


def detect_tiled(detector: "Detector", frame: np.ndarray, tiles: TileSettings | dict,
                 input_size: int | None = None, confidence: float | None = None,
                 iou: float | None = None) -> Detections:
    """People in ``frame`` detected tile by tile (and in the whole frame with ``full_frame``), merged."""
    settings = tiles if isinstance(tiles, TileSettings) else TileSettings.model_validate(tiles)
    h, w = frame.shape[:2]
    plan = plan_tiles(w, h, settings)
    crops = [frame[t.y0:t.y1, t.x0:t.x1] for t in plan]
    options = [{"input_size": t.input_size, "confidence": confidence, "iou": iou} for t in plan]
    if settings.full_frame:
        crops.append(frame)
        options.append({"input_size": input_size, "confidence": confidence, "iou": iou})
    found = detector.detect_many(crops, options)
    shifts = [np.float32((t.x0, t.y0, t.x0, t.y0)) for t in plan] + [np.zeros(4, np.float32)] * settings.full_frame
    boxes = np.concatenate([d.xyxy + s for d, s in zip(found, shifts)]).astype(np.float32)
    scores = np.concatenate([d.confidence for d in found]).astype(np.float32)
    keep = merge(boxes, scores, iou or detector.config.iou, settings.merge_ios)
    return Detections(boxes[keep], scores[keep])
