"""``hallgrid models``: list the models found, export new ones, and compare them on footage by measurement."""

from __future__ import annotations

import json
from pathlib import Path

import click

from calibration.site import SmoothingSettings, load_site
from edge.cli import USER_ERRORS, camera_of, fail
from edge.counting import CameraCounter
from edge.detector import Detector, DetectorConfig
from edge.evaluation import evaluate, evaluate_images
from edge.samples import resolve_sample
from models import ModelError
from models.registry import cache_dir, list_models


@click.group(name="models")
def models_group() -> None:
    """Detector models: what is found, export, comparison."""


@models_group.command(name="list")
@click.option("--model-dir", envvar="HALLGRID_MODEL_DIR", help="Folder searched first.")
def list_cmd(model_dir: str | None) -> None:
    """The models the registry finds, with folder, family, input size, license and sha256 check."""
    click.echo(f"{'name':<22} {'family':<12} {'input':>5}  {'license':<12} {'sha256':<10} file")
    for spec, path, ok in list_models(model_dir):
        name = spec.name if spec else path.stem
        check = ("verified" if ok else "MISMATCH") if spec and path else ("missing" if spec else "unlisted")
        click.echo(f"{name:<22} {(spec.family if spec else '?'):<12} {(spec.input if spec else 0):>5}  "
                   f"{(spec.license if spec else '?'):<12} {check:<10} {path or '(not found)'}")


@models_group.command(name="export")
@click.argument("weights")
@click.option("--imgsz", default=320, show_default=True, type=click.IntRange(32, 2048))
@click.option("--int8", is_flag=True, help="Dynamic int8 quantisation (measure: often slower on CPUs).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Model folder (default: the user cache).")
def export_cmd(weights: str, imgsz: int, int8: bool, out_dir: str | None) -> None:
    """Export an Ultralytics model (.pt, model YAML or name) to ONNX, record it, and check it runs."""
    from models.export import export_ultralytics

    try:
        folder = Path(out_dir) if out_dir else cache_dir()
        spec = export_ultralytics(weights, folder, imgsz, int8)
        detector = Detector(DetectorConfig(model=spec.name, model_dir=str(folder)))
        import numpy as np

        detector(np.zeros((480, 640, 3), np.uint8))
        click.echo(f"exported {spec.name} ({detector.family.value}, {detector.size}px) to {folder / spec.file}; "
                   f"sha256 {spec.sha256[:12]}; recorded in {folder / 'manifest.yaml'}")
    except USER_ERRORS as exc:
        fail(exc)


@models_group.command(name="compare")
@click.argument("video")
@click.option("--gt", "gt_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="MOTChallenge ground truth for a video; hand counts (image,count) for a folder of images.")
@click.option("--gt-points", "points_path", type=click.Path(exists=True, dir_okay=False),
              help="Images: head points (image,x,y) for recall and precision.")
@click.option("--gt-frame-offset", default=1, show_default=True)
@click.option("--site", "site_path", type=click.Path(dir_okay=False))
@click.option("--camera", "camera_id")
@click.option("--model-dir", envvar="HALLGRID_MODEL_DIR")
@click.option("--confidence", default=DetectorConfig().confidence, show_default=True, type=float)
@click.option("--within-mae", default=0.40, show_default=True, help="Report the fastest model at or below this MAE.")
@click.option("--frames", "max_frames", type=click.IntRange(1), help="Only the first N frames (a quick look).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of the table.")
def compare_cmd(video, gt_path, points_path, gt_frame_offset, site_path, camera_id, model_dir, confidence,
                within_mae, max_frames, as_json):
    """Run eval for every model found (on a video or a folder of images) and rank them by count error.

    With --site/--camera the camera's detector settings apply to every model; a model that cannot
    take them (a fixed input size) is skipped with the reason.
    """
    try:
        site = load_site(site_path) if site_path else None
        camera = camera_of(site, camera_id)
        images = Path(video).is_dir()
        if images:
            from edge.hand_counts import images_of, load_counts, load_points

            counts = load_counts(gt_path)
            frames = images_of(video, counts)[:max_frames]
            points = load_points(points_path) if points_path else None
        else:
            video = resolve_sample(video)
        results = []
        for spec, path, _ in list_models(model_dir):
            if path is None:
                continue
            try:
                detector = Detector(DetectorConfig(model=str(path), confidence=confidence))
            except ModelError as exc:
                click.echo(f"skipping {path}: {exc}", err=True)
                continue
            counter = CameraCounter(detector, camera, site.smoothing if site else SmoothingSettings())
            if images:
                try:
                    summary = evaluate_images(counter, frames, counts, points).summary(points is not None)
                except ModelError as exc:
                    click.echo(f"skipping {path}: {exc}", err=True)
                    continue
            else:
                summary = evaluate(counter, video, gt_path, gt_frame_offset, max_frames=max_frames)
            summary["model"] = spec.name if spec else path.stem
            summary["input"] = counter.detect_options.get("input_size", detector.size)
            summary.pop("per_zone", None)
            results.append(summary)
        results.sort(key=lambda r: (r["count_mae"], -r["fps"]))
        eligible = [r for r in results if r["count_mae"] <= within_mae]
        fastest = max(eligible, key=lambda r: r["fps"]) if eligible else None
        if as_json:
            click.echo(json.dumps({"results": results, "within_mae": within_mae,
                                   "fastest_within": fastest["model"] if fastest else None}))
            return
        click.echo(f"{'model':<22} {'input':>5} {'count_mae':>9} {'raw_mae':>8} {'recall':>7} {'precision':>9} "
                   f"{'fps':>7}")
        for r in results:
            recall, precision = (f"{r[k]:.3f}" if k in r else "-" for k in ("recall", "precision"))
            click.echo(f"{r['model']:<22} {r['input']:>5} {r['count_mae']:>9.3f} {r['raw_count_mae']:>8.3f} "
                       f"{recall:>7} {precision:>9} {r['fps']:>7.1f}")
        click.echo(f"fastest with count MAE <= {within_mae}: " + (f"{fastest['model']} ({fastest['fps']:.1f} fps)"
                                                                  if fastest else "none"))
    except USER_ERRORS as exc:
        fail(exc)
