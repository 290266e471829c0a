"""Counting accuracy against MOTChallenge ground truth.

A ground-truth person is in a zone when the bottom-centre of their box is,
exactly the rule the edge box applies to detections, so the error measured is
the error of the published occupancy, not of some proxy.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.detections import Detections, greedy_match

if TYPE_CHECKING:
    from edge.counting import CameraCounter
    from edge.zones import ZoneCounter


class GroundTruthError(ValueError):
    """A ground-truth file that is not MOTChallenge CSV; names file and line."""


def load_mot(path: str | Path) -> dict[int, Detections]:
    """MOTChallenge ``frame, id, left, top, width, height, conf, ...`` -> frame number -> boxes.

    Rows with conf 0 (MOT's "ignore in tracking evaluation") are kept: in PETS09-S2L1 they are
    real, distant people, and an occupancy count must include them.
    """
    boxes: dict[int, list[list[float]]] = defaultdict(list)
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                frame, _, left, top, width, height = (float(p) for p in line.split(",")[:6])
            except ValueError:
                raise GroundTruthError(f"{path}:{lineno}: expected 'frame,id,left,top,width,height,conf,...'") \
                    from None
            boxes[int(frame)].append([left, top, left + width, top + height])
    return {f: Detections(np.asarray(b, np.float32), np.ones(len(b), np.float32)) for f, b in boxes.items()}


@dataclass
class CountingScore:
    """Accumulates per-frame, per-zone counts and box matches into the published accuracy figures."""

    zones: list[str]
    frames: int = 0
    abs_err: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    raw_abs_err: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    bias: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    truth_total: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    true_pos: int = 0
    n_pred: int = 0
    n_truth: int = 0

    def add(self, smoothed: dict[str, int], raw: dict[str, int], truth: dict[str, int],
            pred_boxes: np.ndarray, truth_boxes: np.ndarray) -> None:
        self.frames += 1
        for z in self.zones:
            self.abs_err[z] += abs(smoothed[z] - truth[z])
            self.raw_abs_err[z] += abs(raw[z] - truth[z])
            self.bias[z] += smoothed[z] - truth[z]
            self.truth_total[z] += truth[z]
        self.true_pos += len(greedy_match(pred_boxes, truth_boxes, 0.5))
        self.n_pred += len(pred_boxes)
        self.n_truth += len(truth_boxes)

    def add_frame(self, zones: "ZoneCounter", smoothed: dict[str, int], raw: dict[str, int],
                  detections: Detections, truth_boxes: Detections, width: int, height: int) -> None:
        """Score one counted frame against its ground-truth boxes; ``hallgrid eval`` and replay both call this,
        so their figures agree by construction."""
        counted = zones.unmasked(detections, width, height)
        self.add(smoothed, raw, zones.count(truth_boxes, width, height), counted.xyxy, truth_boxes.xyxy)

    def summary(self) -> dict:
        n = max(self.frames, 1)
        cells = n * len(self.zones)
        out = {
            "frames": self.frames,
            "zones": len(self.zones),
            "count_mae": round(sum(self.abs_err.values()) / cells, 4),
            "raw_count_mae": round(sum(self.raw_abs_err.values()) / cells, 4),
            "count_bias": round(sum(self.bias.values()) / cells, 4),
            "recall": round(self.true_pos / max(self.n_truth, 1), 4),
            "precision": round(self.true_pos / max(self.n_pred, 1), 4),
        }
        if len(self.zones) > 1 or self.zones[0] != "frame":
            out["per_zone"] = {z: {"count_mae": round(self.abs_err[z] / n, 4),
                                   "raw_count_mae": round(self.raw_abs_err[z] / n, 4),
                                   "count_bias": round(self.bias[z] / n, 4),
                                   "mean_people": round(self.truth_total[z] / n, 3)} for z in self.zones}
        return out


def evaluate(counter: "CameraCounter", video: str | Path, gt_path: str | Path, frame_offset: int = 1,
             progress: bool = False, max_frames: int | None = None, ahead: int = 1) -> dict:
    """Count every frame of ``video`` and score it against ``gt_path``; returns the summary with ``fps``.

    ``fps`` is the whole pipeline's rate (decode, detect, count), without the scoring; ``ahead`` frames
    are detected at once (``edge.counting.count_stream``).
    """
    import itertools
    import time

    from tqdm import tqdm

    from edge.counting import count_stream
    from edge.video import read_frames, video_info

    truth = load_mot(gt_path)
    info = video_info(video)
    zones = counter.zones
    score = CountingScore(zones.zone_ids)
    busy = 0.0
    frames = read_frames(video)
    if max_frames is not None:
        frames = itertools.takewhile(lambda item: item[0] < max_frames, frames)
    started = time.perf_counter()
    total = min(info.frames, max_frames or info.frames) or None
    counted = count_stream(counter, frames, ahead)
    for index, ts, frame, result in tqdm(counted, total=total, disable=not progress, unit="frame", desc="eval"):
        h, w = frame.shape[:2]
        busy += time.perf_counter() - started
        boxes = truth.get(index + frame_offset, Detections())
        score.add_frame(zones, result.smoothed, result.raw, result.detections, boxes, w, h)
        started = time.perf_counter()
    summary = score.summary()
    summary["fps"] = round(score.frames / busy, 2) if busy else 0.0
    summary["model"] = counter.detector.name
    summary["confidence"] = counter.detector.config.confidence
    return summary


def match_points(points: np.ndarray, boxes: np.ndarray, upper: float = 0.5) -> int:
    """How many head points pair one-to-one with a box that holds them in its upper part.

    A head is in the top of a standing person's box; in a crowd the box of a
    half-hidden person is its head and shoulders. Pairs are taken nearest first
    (distance from the point to the box's head spot, relative to the box width).

    >>> boxes = np.array([[0, 0, 10, 40], [8, 0, 18, 40]], np.float32)
    >>> match_points(np.array([[5, 5], [12, 6], [5, 35]], np.float32), boxes)
    2
    """
    if not len(points) or not len(boxes):
        return 0
    x0, y0, x1, y1 = (boxes[:, i][None, :] for i in range(4))
    px, py = points[:, 0:1], points[:, 1:2]
    inside = (px >= x0) & (px <= x1) & (py >= y0) & (py <= y0 + upper * (y1 - y0))
    width = np.maximum(x1 - x0, 1.0)
    cost = np.hypot(px - (x0 + x1) / 2, py - (y0 + 0.15 * (y1 - y0))) / width
    pairs = np.argwhere(inside)
    pairs = pairs[np.argsort(cost[pairs[:, 0], pairs[:, 1]], kind="stable")]
    used_p, used_b = set(), set()
    for i, j in pairs:
        if i not in used_p and j not in used_b:
            used_p.add(i)
            used_b.add(j)
    return len(used_p)


@dataclass
class ImageScore:
    """Per-image counts of a folder of stills against hand counts (and head points, when given)."""

    rows: list[tuple[str, int, int, int]] = field(default_factory=list)  # image, truth, count, raw
    matched: int = 0
    n_points: int = 0
    n_boxes: int = 0
    busy_s: float = 0.0

    def summary(self, with_points: bool) -> dict:
        if not self.rows:
            return {"frames": 0}
        truth = np.array([r[1] for r in self.rows], float)
        err = np.array([r[2] for r in self.rows], float) - truth
        raw_err = np.array([r[3] for r in self.rows], float) - truth
        out = {
            "frames": len(self.rows),
            "count_mae": round(float(np.abs(err).mean()), 4),
            "count_rmse": round(float(np.sqrt((err ** 2).mean())), 4),
            "bias": round(float(err.mean()), 4),
            "raw_count_mae": round(float(np.abs(raw_err).mean()), 4),
            "mean_people": round(float(truth.mean()), 3),
            "fps": round(len(self.rows) / self.busy_s, 2) if self.busy_s else 0.0,
        }
        if with_points:
            out["recall"] = round(self.matched / max(self.n_points, 1), 4)
            out["precision"] = round(self.matched / max(self.n_boxes, 1), 4)
        return out


def evaluate_images(counter: "CameraCounter", images: list[Path], counts: dict[str, int],
                    points: dict[str, np.ndarray] | None = None, progress: bool = False, ahead: int = 1) -> ImageScore:
    """Count each still image (zones, masks, the camera's detector settings and correction) against hand counts.

    A still is one moment, so its count is the corrected count of that frame, not
    smoothed; the camera's count is the sum over its zones (the whole frame without
    zones). With head points, a point is in a zone when the point itself is.
    ``busy_s`` covers reading, detecting and counting, not the scoring nor a first untimed detection
    (it builds the detector's session for the frame shape, a one-off cost of a live camera too);
    ``ahead`` images are detected at once (``edge.counting.count_stream``).
    """
    import time

    import cv2
    from tqdm import tqdm

    from edge.counting import count_stream

    def frames():
        for i, path in enumerate(images):
            frame = cv2.imread(str(path))
            if frame is None:
                raise GroundTruthError(f"{path}: cannot be read as an image")
            yield i, float(i), frame

    zones = counter.zones
    score = ImageScore()
    if images and (first := cv2.imread(str(images[0]))) is not None:
        counter.detect(first)
    started = time.perf_counter()
    counted_images = count_stream(counter, frames(), ahead)
    for i, _, frame, result in tqdm(counted_images, total=len(images), disable=not progress, unit="image",
                                    desc="eval"):
        score.busy_s += time.perf_counter() - started
        path, (h, w) = images[i], frame.shape[:2]
        score.rows.append((path.name, counts[path.name], sum(result.corrected.values()), sum(result.raw.values())))
        if points is not None:
            heads = points.get(path.name, np.zeros((0, 2), np.float32))
            as_boxes = Detections(np.concatenate([heads, heads], 1), np.ones(len(heads), np.float32))
            heads = heads[zones.membership(as_boxes, w, h).any(axis=0)]
            counted = result.detections.filter(zones.membership(result.detections, w, h).any(axis=0))
            score.matched += match_points(heads, counted.xyxy)
            score.n_points += len(heads)
            score.n_boxes += len(counted)
        started = time.perf_counter()
    return score
