"""One recording through the live edge path: ``CameraCounter`` per frame, ``PublishSchedule`` for what is sent.

A job runs in its own process (``ProcessPoolExecutor``) and returns plain data: the
per-frame raw and smoothed counts, the occupancy messages the live edge would have
published (change + heartbeat, in footage time), and, with ground truth, the
``CountingScore`` that ``hallgrid eval`` computes, overall and per site-local hour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from calibration.site import load_site
from edge.contract import OccupancyMessage
from edge.detector import DetectorConfig
from edge.evaluation import CountingScore

from hub.replay.start_time import local_hour


@dataclass(frozen=True)
class CameraJob:
    """Everything a worker process needs (picklable): which video, which camera, when it starts."""

    video: str
    site_path: str
    camera_id: str
    start: float                          # epoch seconds of frame 0
    detector: DetectorConfig
    detect_fps: float | None = None       # None: the camera's detect_fps from the site file, as live
    heartbeat_s: float = 10.0
    gt_path: str | None = None
    gt_frame_offset: int = 1
    annotate_path: str | None = None
    ahead: int = 1                        # frames detected at once (edge.counting.count_stream)


@dataclass(frozen=True)
class FrameCounts:
    """One counted frame: ``t`` is seconds from the start of its video."""

    index: int
    t: float
    raw: tuple[int, ...]
    smoothed: tuple[int, ...]


@dataclass
class CameraRecording:
    """What one job returns. ``messages`` carry per-video seq from 1; the timeline renumbers per camera."""

    job: CameraJob
    zones: list[str]
    fps: float
    frames: list[FrameCounts] = field(default_factory=list)
    messages: list[OccupancyMessage] = field(default_factory=list)
    score: CountingScore | None = None
    hourly: dict[str, CountingScore] = field(default_factory=dict)
    busy_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return (self.frames[-1].index + 1) / self.fps if self.frames else 0.0


def expected_frames(video: str, detect_fps: float | None) -> int:
    """Frames the job will count (for the progress bar)."""
    from edge.video import open_video

    cap, info = open_video(video)
    cap.release()
    if not detect_fps or detect_fps >= info.fps:
        return info.frames
    return int(info.frames * detect_fps / info.fps + 0.999)


def count_video(job: CameraJob, progress: Callable[[int], None] | None = None, every: int = 10) -> CameraRecording:
    """Count one recording exactly as the live edge does, at footage time; report progress every ``every`` frames."""
    from edge.counting import CameraCounter, count_stream
    from edge.detections import Detections
    from edge.detector import Detector
    from edge.evaluation import load_mot
    from edge.occupancy import PublishSchedule, occupancy_message
    from edge.video import open_video, read_frames

    site = load_site(job.site_path)
    camera = site.camera(job.camera_id)
    counter = CameraCounter(Detector(job.detector), camera, site.smoothing)
    zones = counter.zones.zone_ids
    schedule = PublishSchedule(job.heartbeat_s)
    cap, info = open_video(job.video)
    cap.release()
    rec = CameraRecording(job, zones, info.fps)
    truth = load_mot(job.gt_path) if job.gt_path else None
    if truth is not None:
        rec.score = CountingScore(zones)
    writer = None
    detect_fps = job.detect_fps if job.detect_fps is not None else camera.detect_fps
    pending, started = 0, time.perf_counter()
    try:
        for index, t, frame, result in count_stream(counter, read_frames(job.video, detect_fps), job.ahead):
            h, w = frame.shape[:2]                    # t: footage seconds, as `hallgrid eval` passes them
            for zone in schedule.due(result.smoothed, t):   # the live edge passes its monotonic clock here
                rec.messages.append(occupancy_message(site.id, camera, zone, job.start + t, result.smoothed,
                                                      result.raw, len(rec.messages) + 1))
            rec.frames.append(FrameCounts(index, round(t, 6), tuple(result.raw[z] for z in zones),
                                          tuple(result.smoothed[z] for z in zones)))
            if truth is not None:
                boxes = truth.get(index + job.gt_frame_offset, Detections())
                hour = local_hour(job.start + t, site.timezone)
                for score in (rec.score, rec.hourly.setdefault(hour, CountingScore(zones))):
                    score.add_frame(counter.zones, result.smoothed, result.raw, result.detections, boxes, w, h)
            if job.annotate_path:
                from hub.replay.annotate import draw, open_writer

                if writer is None:
                    writer = open_writer(job.annotate_path, min(detect_fps, info.fps), w, h)
                writer.write(draw(frame, camera, result, job.start + t, site.timezone))
            pending += 1
            if progress is not None and pending >= every:
                progress(pending)
                pending = 0
    finally:
        if writer is not None:
            writer.release()
    if progress is not None and pending:
        progress(pending)
    rec.busy_s = time.perf_counter() - started
    return rec
