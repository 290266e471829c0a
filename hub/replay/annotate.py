"""An annotated copy of a replayed recording: zones, boxes and counts drawn, for checking a replay by eye."""

from __future__ import annotations

import cv2
import numpy as np

from calibration.site import Camera
from edge.counting import ZoneCounts
from hub.replay.start_time import to_local

PALETTE = [(66, 135, 245), (245, 130, 48), (60, 180, 75), (230, 25, 75), (145, 30, 180), (70, 240, 240)]


def open_writer(path: str, fps: float, width: int, height: int) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), max(fps, 1.0), (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}: OpenCV has no mp4v encoder here")
    return writer


def draw(frame: np.ndarray, camera: Camera, result: ZoneCounts, epoch: float, tz: str) -> np.ndarray:
    """Zones as outlines with 'name smoothed (raw)', detections as boxes, the footage time in the corner."""
    out = frame.copy()
    h, w = out.shape[:2]
    for i, zone in enumerate(camera.zones):
        colour = PALETTE[i % len(PALETTE)]
        pts = np.round(np.asarray(zone.polygon) * (w - 1, h - 1)).astype(np.int32)
        cv2.polylines(out, [pts], True, colour, 2)
        x, y = pts.min(axis=0)
        label = f"{zone.id} {result.smoothed.get(zone.id, 0)} ({result.raw.get(zone.id, 0)})"
        cv2.putText(out, label, (int(x) + 4, int(y) + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, colour, 2, cv2.LINE_AA)
    for box in result.detections.xyxy.astype(int):
        cv2.rectangle(out, (box[0], box[1]), (box[2], box[3]), (255, 255, 255), 1)
    stamp = to_local(epoch, tz).strftime("%Y-%m-%d %H:%M:%S.%f")[:-5]
    cv2.putText(out, f"{camera.id} {stamp}", (8, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2,
                cv2.LINE_AA)
    return out
