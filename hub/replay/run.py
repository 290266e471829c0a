"""The replay run: videos counted in parallel processes, fused with the ticket log, written to a folder."""

from __future__ import annotations

import dataclasses
import json
import queue
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibration.site import Site, SiteError, load_site
from edge.contract import iso_ts
from edge.counting import stream_layout, usable_cores
from edge.detector import DetectorConfig

from hub.replay.camera_job import CameraJob, CameraRecording, count_video, expected_frames
from hub.replay.start_time import resolve_start
from hub.tickets import TicketEvent, read_csv


@dataclass(frozen=True)
class ReplayConfig:
    """A replay as the command line describes it; lists pair with ``videos`` (one value applies to all)."""

    videos: list[str]
    site_path: str
    out: Path
    cameras: list[str] = field(default_factory=list)
    starts: list[str] = field(default_factory=list)
    gts: list[str] = field(default_factory=list)
    tickets: str | None = None
    detector: DetectorConfig = DetectorConfig()
    detect_fps: float | None = None
    jobs: int = 1
    heartbeat_s: float = 10.0
    tick_s: float = 1.0
    interval_s: float = 60.0
    gt_frame_offset: int = 1
    annotate: bool = False
    progress: bool = True


def _paired(values: list[str], n: int, what: str) -> list[str | None]:
    if not values:
        return [None] * n
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise SiteError([f"{what} is given {len(values)} times for {n} videos: give it once or once per video"])
    return list(values)


def _camera_for(site: Site, video: str, given: str | None) -> str:
    if given:
        try:
            return site.camera(given).id
        except KeyError as exc:
            raise SiteError([str(exc.args[0])]) from None
    if len(site.cameras) == 1:
        return site.cameras[0].id
    named = [c.id for c in site.cameras if c.id in Path(video).stem]
    if len(named) == 1:
        return named[0]
    raise SiteError([f"video {video}: say which camera recorded it with --camera "
                     f"({', '.join(c.id for c in site.cameras)}), or put the camera id in the file name"])


def plan(config: ReplayConfig, site: Site) -> tuple[list[CameraJob], list[str]]:
    """One job per video, with its camera and wall-clock start; and where each start came from."""
    n = len(config.videos)
    jobs, sources = [], []
    # the cores shared among the processes: each detects as many frames at once as it has cores
    threads, ahead = stream_layout(config.detector.threads, usable_cores() // max(1, min(config.jobs, n)))
    detector = dataclasses.replace(config.detector, threads=threads)
    for video, cam, start, gt in zip(config.videos, _paired(config.cameras, n, "--camera"),
                                     _paired(config.starts, n, "--start"), _paired(config.gts, n, "--gt")):
        camera_id = _camera_for(site, video, cam)
        epoch, source = resolve_start(video, start, site.timezone)
        annotate = str(config.out / f"annotated-{camera_id}-{Path(video).stem}.mp4") if config.annotate else None
        jobs.append(CameraJob(str(video), config.site_path, camera_id, epoch, detector, config.detect_fps,
                              config.heartbeat_s, gt, config.gt_frame_offset, annotate, ahead))
        sources.append(source)
    return jobs, sources


def count_all(jobs: list[CameraJob], workers: int, progress: bool) -> list[CameraRecording]:
    """Count every job, in ``workers`` processes; one tqdm bar over all frames (speed and time left)."""
    from tqdm import tqdm

    site = load_site(jobs[0].site_path)
    total = sum(expected_frames(j.video, j.detect_fps if j.detect_fps is not None else
                                site.camera(j.camera_id).detect_fps) for j in jobs)
    with tqdm(total=total, unit="frame", desc="replay", disable=not progress, file=sys.stderr) as bar:
        if workers <= 1 or len(jobs) == 1:
            return [count_video(j, bar.update) for j in jobs]
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager, ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx) as pool:
            q = manager.Queue()
            futures = [pool.submit(count_video, j, q.put) for j in jobs]
            while not all(f.done() for f in futures):
                try:
                    bar.update(q.get(timeout=0.2))
                except queue.Empty:  # re-raised as such through the manager proxy
                    pass
            while not q.empty():
                bar.update(q.get())
            return [f.result() for f in futures]


def read_tickets(path: str | None, start: float) -> list[TicketEvent]:
    """The day's ticket log in the hub's CSV format; a bad row stops the replay with its line number."""
    if not path:
        return []
    events, errors = read_csv(Path(path).read_text(encoding="utf-8"), start)
    if errors:
        raise SiteError([f"{path}: {e}" for e in errors])
    return events


def run(config: ReplayConfig) -> dict[str, Any]:
    """Count, fuse, and write every output into ``config.out``; returns the summary (also ``summary.json``)."""
    from hub.replay import series, timeline
    from hub.replay.report import render

    site = load_site(config.site_path)
    config.out.mkdir(parents=True, exist_ok=True)
    jobs, sources = plan(config, site)
    recordings = count_all(jobs, config.jobs, config.progress)
    tl = timeline.build(site, recordings, read_tickets(config.tickets, min(j.start for j in jobs)), config.tick_s)
    record = timeline.play(tl)
    zones = series.zone_series(recordings, tl.start)
    intervals = series.zone_intervals(recordings, config.interval_s)
    queues = series.queue_series(record, tl.start)
    for table in (zones, intervals, queues):
        series.write(table, config.out)
    series.write_alerts(record, config.out)
    with (config.out / "occupancy.jsonl").open("w", encoding="utf-8") as fh:   # what the edge would have sent
        fh.writelines(s.occupancy.to_json() + "\n" for s in tl.steps if s.occupancy is not None)
    acc = series.accuracy(recordings) or None
    if acc:
        (config.out / "accuracy.json").write_text(json.dumps(acc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        series.write(series.accuracy_table(acc), config.out)
    summary = {
        "site": site.id, "site_name": site.name, "timezone": site.timezone,
        "start": iso_ts(tl.start), "end": iso_ts(tl.end), "start_epoch": tl.start, "end_epoch": tl.end,
        "footage_s": round(tl.end - tl.start, 3), "tick_s": config.tick_s, "heartbeat_s": config.heartbeat_s,
        "tickets_after_footage": tl.tickets_outside, "hub_stats": record.stats,
        "alerts": len(record.alerts),
        "recordings": [{"camera": r.job.camera_id, "video": Path(r.job.video).name, "start": iso_ts(r.job.start),
                        "start_source": src, "frames": len(r.frames), "messages": len(r.messages),
                        "duration_s": round(r.duration_s, 3)}
                       for r, src in zip(recordings, sources)],
    }
    (config.out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    alerts = [a.to_dict() for a in sorted(record.alerts, key=lambda a: (a.raised_at, a.key))]
    (config.out / "report.html").write_text(
        render(summary, zones, intervals, queues, series.heat_by_hour(recordings, site.timezone), alerts, acc,
               site.language),
        encoding="utf-8")
    summary["busy_s"] = [round(r.busy_s, 3) for r in recordings]   # wall time: returned, never written
    return summary
