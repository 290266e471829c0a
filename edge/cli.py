"""Edge commands: count people per zone in footage, and measure how right the counts are."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import sys
from pathlib import Path

import click
from tqdm import tqdm

from calibration.proof import TruthError
from calibration.site import Camera, Site, SiteError, SmoothingSettings, load_site
from edge.cli_errors import RunFailure
from edge.counting import CameraCounter, count_stream, stream_layout, usable_cores
from edge.detector import Detector, DetectorConfig
from edge.evaluation import GroundTruthError, evaluate
from edge.logs import log_options, setup_logging
from edge.mqtt_url import BrokerUrlError, mqtt_options
from edge.samples import SampleError, resolve_sample
from edge.state_dir import state_dir
from edge.video import VideoError, expected_frames, read_frames, video_info
from models import ModelError

# input errors: the top command group (hub.cli) reports them with exit status 2, no traceback
USER_ERRORS = (SiteError, ModelError, VideoError, GroundTruthError, SampleError, BrokerUrlError, TruthError)


def detector_config(site: Site | None, model: str | None, confidence: float | None, threads: int | None,
                    model_dir: str | None) -> DetectorConfig:
    """Command line over site file over built-in defaults."""
    base = DetectorConfig()
    settings = site.detector if site else None
    return DetectorConfig(
        model=model or (settings.model if settings and settings.model else base.model),
        model_dir=model_dir,
        confidence=confidence or (settings.confidence if settings and settings.confidence else base.confidence),
        threads=threads if threads is not None else (settings.threads if settings else base.threads),
    )


def camera_of(site: Site | None, camera_id: str | None) -> Camera | None:
    if site is None:
        return None
    if camera_id is None:
        if len(site.cameras) > 1:
            raise SiteError([f"site {site.id} has several cameras; name one with --camera "
                             f"({', '.join(c.id for c in site.cameras)})"])
        return site.cameras[0]
    try:
        return site.camera(camera_id)
    except KeyError as exc:
        raise SiteError([str(exc.args[0])]) from None


def detector_options(fn):
    """The options every detecting command shares."""
    for option in reversed([
        click.option("--model", help="Model name from the registry or an .onnx path."),
        click.option("--model-dir", envvar="HALLGRID_MODEL_DIR", help="Folder searched first for model files."),
        click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True)),
        click.option("--threads", type=click.IntRange(0), help="onnxruntime threads (0: all cores)."),
    ]):
        fn = option(fn)
    return fn


def build_counter(site_path: str | None, camera_id: str | None, model, model_dir, confidence, threads
                  ) -> tuple[CameraCounter, int]:
    """The camera's counter for a video, and how many frames to detect at once (``stream_layout``)."""
    site = load_site(site_path) if site_path else None
    camera = camera_of(site, camera_id)
    if camera and camera.detector and confidence:  # the command line wins over the camera's settings too
        camera = camera.model_copy(update={"detector": camera.detector.model_copy(update={"confidence": confidence})})
    config = detector_config(site, model, confidence, threads, model_dir)
    run_threads, ahead = stream_layout(config.threads)
    detector = Detector(dataclasses.replace(config, threads=run_threads))
    return CameraCounter(detector, camera, site.smoothing if site else SmoothingSettings()), ahead


@click.command()
@click.argument("video")
@click.option("--site", "site_path", type=click.Path(dir_okay=False), help="Site file (zones); default: whole frame.")
@click.option("--camera", "camera_id", help="Camera of the site whose zones apply.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True),
              help="Write per-frame counts as CSV to this file (default: standard output).")
@click.option("--detect-fps", type=click.FloatRange(0, min_open=True), help="Detect at this rate (default: every frame).")
@detector_options
def count(video, site_path, camera_id, out, detect_fps, model, model_dir, confidence, threads):
    """Count people per zone in every frame of VIDEO (raw and smoothed) as CSV; progress on stderr."""
    counter, ahead = build_counter(site_path, camera_id, model, model_dir, confidence, threads)
    video = resolve_sample(video)
    total = expected_frames(video_info(video), detect_fps) or None
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(Path(out).open("w", newline="", encoding="utf-8")) if out else sys.stdout
        writer = csv.writer(sink)
        writer.writerow(["frame", "ts", "zone", "raw", "count"])
        bar = stack.enter_context(tqdm(total=total, unit="frame", desc="count", file=sys.stderr))
        for index, ts, _, result in count_stream(counter, read_frames(video, detect_fps), ahead):
            writer.writerows([index, f"{ts:.3f}", zone, result.raw[zone], result.smoothed[zone]]
                             for zone in counter.zones.zone_ids)
            bar.set_postfix_str(" ".join(f"{z}={n}" for z, n in result.smoothed.items()), refresh=False)
            bar.update()


@click.command(name="eval")
@click.argument("video")
@click.option("--gt", "gt_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="MOTChallenge ground truth (frame,id,left,top,width,height,...) for a video; hand counts "
                   "(image,count) for a folder of images.")
@click.option("--gt-points", "points_path", type=click.Path(exists=True, dir_okay=False),
              help="Images: head points (image,x,y) for recall and precision.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Images: per-image CSV image,gt,count.")
@click.option("--gt-frame-offset", default=1, show_default=True,
              help="Ground-truth frame number of video frame 0.")
@click.option("--site", "site_path", type=click.Path(dir_okay=False), help="Site file; default: whole frame.")
@click.option("--camera", "camera_id")
@click.option("--progress/--no-progress", default=False)
@detector_options
def eval_cmd(video, gt_path, points_path, out, gt_frame_offset, site_path, camera_id, progress, model, model_dir,
             confidence, threads):
    """Measure counting accuracy on VIDEO (or a folder of images) against ground truth; prints one JSON line."""
    counter, ahead = build_counter(site_path, camera_id, model, model_dir, confidence, threads)
    if Path(video).is_dir():
        click.echo(json.dumps(eval_images(counter, video, gt_path, points_path, out, progress, ahead)))
        return
    if points_path or out:
        raise GroundTruthError("--gt-points and --out are for a folder of images")
    click.echo(json.dumps(evaluate(counter, resolve_sample(video), gt_path, gt_frame_offset, progress, ahead=ahead)))


def eval_images(counter: CameraCounter, folder: str, gt_path: str, points_path: str | None, out: str | None,
                progress: bool, ahead: int = 1) -> dict:
    """``hallgrid eval`` on stills: the summary, and the per-image counts written to ``out``."""
    from edge.correction import describe
    from edge.evaluation import evaluate_images
    from edge.hand_counts import images_of, load_counts, load_points

    counts = load_counts(gt_path)
    points = load_points(points_path) if points_path else None
    score = evaluate_images(counter, images_of(folder, counts), counts, points, progress, ahead)
    if out:
        with Path(out).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["image", "gt", "count"])
            writer.writerows(row[:3] for row in score.rows)
    summary = score.summary(points is not None)
    summary["model"] = counter.detector.name
    summary["input_size"] = counter.detect_options.get("input_size", counter.detector.size)
    summary["confidence"] = counter.detect_options.get("confidence", counter.detector.config.confidence)
    summary["correction"] = describe(counter.correction)
    return summary


def default_outbox(site_id: str) -> Path:
    """Where the outbox lives unless told: the state folder (a volume in the Docker image)."""
    return state_dir() / f"outbox-{site_id}.db"


@click.command(name="edge")
@click.option("--site", "site_path", required=True, type=click.Path(dir_okay=False), envvar="HALLGRID_SITE",
              help="Site file: cameras, zones, detector settings.")
@click.option("--camera", "camera_ids", multiple=True, envvar="HALLGRID_CAMERA",
              help="Serve only these cameras (repeatable; HALLGRID_CAMERA: ids separated by spaces; default: all).")
@mqtt_options
@click.option("--outbox", "outbox_path", type=click.Path(dir_okay=False), envvar="HALLGRID_OUTBOX",
              help="SQLite store-and-forward file (default: STATE/outbox-SITE.db, STATE = HALLGRID_STATE_DIR "
              "or ~/.local/state/hallgrid).")
@click.option("--outbox-max", default=100_000, show_default=True, type=click.IntRange(1),
              help="Messages kept while the broker is away; the oldest are dropped beyond.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), envvar="HALLGRID_METRICS_PORT",
              help="Serve Prometheus /metrics and the /livez, /readyz probes on this port.")
@click.option("--metrics-addr", default="127.0.0.1", show_default=True, envvar="HALLGRID_METRICS_ADDR",
              help="Address /metrics binds (0.0.0.0 to let a Prometheus on another machine scrape).")
@click.option("--prefix", default="hallgrid", show_default=True, envvar="HALLGRID_PREFIX", help="MQTT topic prefix.")
@click.option("--heartbeat", default=10.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds between re-sends of an unchanged count (and status).")
@click.option("--stall", "stall_s", default=3.0, show_default=True, type=click.FloatRange(0.5),
              help="Seconds without frames before a camera is reported camera_lost.")
@click.option("--discovery/--no-discovery", default=False, show_default=True,
              help="Announce zones to Home Assistant (MQTT discovery).")
@click.option("--workers", default=0, show_default=True, type=click.IntRange(0), envvar="HALLGRID_WORKERS",
              help="Detector threads taking frames round-robin (0: one per core; each run uses --threads).")
@click.option("--batch", default=8, show_default=True, type=click.IntRange(1),
              help="Most frames of different cameras detected in one model run (1: one at a time).")
@log_options()
@detector_options
def edge_cmd(site_path, camera_ids, broker, outbox_path, outbox_max, metrics_port, metrics_addr, prefix, heartbeat,
             stall_s, discovery, workers, batch, log_level, log_format, model, model_dir, confidence, threads):
    """Serve a site's cameras: count people per zone and publish occupancy over MQTT until stopped."""
    import signal

    from edge.service import EdgeConfig, EdgeService
    from edge.workers import plan_workers
    from edge.sources import classify

    setup_logging(log_level, log_format)
    site = load_site(site_path)
    cameras = [camera_of(site, c) for c in camera_ids] if camera_ids else list(site.cameras)
    for cam in cameras:
        try:
            classify(site.resolve_source(cam), cam.loop)
        except ValueError as exc:
            raise SiteError([f"camera {cam.id}: {exc}"]) from None
    detector = detector_config(site, model, confidence, threads, model_dir)
    workers, per_run = plan_workers(workers, detector.threads, usable_cores())
    config = EdgeConfig(site=site, cameras=cameras, broker=broker,
                        detector=dataclasses.replace(detector, threads=per_run),
                        outbox_path=Path(outbox_path) if outbox_path else default_outbox(site.id),
                        prefix=prefix, heartbeat_s=heartbeat, outbox_max_rows=outbox_max,
                        discovery=discovery, stall_s=stall_s, workers=workers, batch=batch,
                        metrics_port=metrics_port, metrics_addr=metrics_addr)
    service = EdgeService(config)
    signal.signal(signal.SIGTERM, lambda *_: service.request_stop())
    try:
        service.start()
    except OSError as exc:  # e.g. the metrics port is taken
        raise RunFailure(f"cannot start: {exc}") from None
    click.echo(f"edge: site {site.id}, cameras {', '.join(c.id for c in cameras)}, broker {broker.redacted()}, "
               f"model {service.detector.name}", err=True)
    try:
        while not service.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    service.stop()
