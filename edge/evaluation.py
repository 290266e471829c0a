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
             progress: bool = False, max_frames: int | None = None) -> dict:
    """Count every frame of ``video`` and score it against ``gt_path``; returns the summary with ``fps``.

    ``fps`` is the whole pipeline's rate (decode, detect, count), without the scoring.
    """
    import time

    from tqdm import tqdm

    from edge.video import read_frames, video_info

    truth = load_mot(gt_path)
    info = video_info(video)
    zones = counter.zones
    score = CountingScore(zones.zone_ids)
    busy = 0.0
    frames = read_frames(video)
    started = time.perf_counter()
    total = min(info.frames, max_frames or info.frames) or None
    for index, ts, frame in tqdm(frames, total=total, disable=not progress, unit="frame", desc="eval"):
        if max_frames is not None and index >= max_frames:
            break
        h, w = frame.shape[:2]
        result = counter.process(frame, ts)
        busy += time.perf_counter() - started
        boxes = truth.get(index + frame_offset, Detections())
        score.add_frame(zones, result.smoothed, result.raw, result.detections, boxes, w, h)
        started = time.perf_counter()
    summary = score.summary()
    summary["fps"] = round(score.frames / busy, 2) if busy else 0.0
    summary["model"] = counter.detector.name
    summary["confidence"] = counter.detector.config.confidence
    return summary
