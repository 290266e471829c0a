"""Counting accuracy and speed in packed waiting areas (README: "Packed waiting areas").

For each camera of the Beijing-BRT sample (``../shared/footage/beijing-brt-train``)
and PETS09-S2L1, in one run on this machine:

- ``default``: today's settings (the site default model at its own input, whole frame);
- ``dense``: the camera's detector settings from ``calibration/examples/brt-platform.yaml``;
- each with the people-per-detection correction scored by 5-fold cross-validation in
  capture-time order (every image's corrected count comes from a factor fitted on the
  other folds, never on itself), and with the factor fitted on the *other* camera
  (does the method carry over, or must each camera have its own hand counts?).

The detector is not fitted, so one detection pass per setting serves every fold.

    .venv/bin/python bench/dense.py [--step 1] [--footage ../shared/footage]
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import click
import numpy as np

from calibration.site import load_site
from edge.count_fit import _factor, cross_validated
from edge.counting import CameraCounter
from edge.detector import Detector, DetectorConfig
from edge.evaluation import evaluate, evaluate_images
from edge.hand_counts import images_of, load_counts, load_points

SITE = str(files("calibration") / "examples" / "brt-platform.yaml")
FOOTAGE = Path(__file__).resolve().parents[1].parent / "shared" / "footage"


def run_setting(counter: CameraCounter, folder: Path, counts: dict, points: dict) -> dict:
    score = evaluate_images(counter, images_of(folder, counts), counts, points)
    summary = score.summary(with_points=True)
    summary["raw"] = np.array([r[3] for r in score.rows], float)
    summary["truth"] = np.array([r[1] for r in score.rows], float)
    return summary


def err(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    e = pred - truth
    return float(np.abs(e).mean()), float(e.mean())


@click.command()
@click.option("--step", default=1, show_default=True, type=click.IntRange(1), help="Every Nth image (quick look).")
@click.option("--footage", default=str(FOOTAGE), show_default=True, type=click.Path(exists=True, file_okay=False))
@click.option("--site", "site_path", default=SITE, show_default=True)
def main(step: int, footage: str, site_path: str) -> None:
    base = Path(footage)
    brt = base / "beijing-brt-train"
    all_counts = load_counts(brt / "counts.csv")
    points = load_points(brt / "points.csv")
    site = load_site(site_path)
    load_before = os.getloadavg()[0]
    pets = evaluate(CameraCounter(Detector(DetectorConfig())), base / "pets09-s2l1" / "vtest.avi",
                    base / "pets09-s2l1" / "gt.txt")
    results: dict[tuple[str, str], dict] = {}
    for cam in site.cameras:
        prefix = cam.id[-1] + "-"  # image names start with the camera number
        names = sorted(n for n in all_counts if n.startswith(prefix))[::step]
        counts = {n: all_counts[n] for n in names}
        default = CameraCounter(Detector(DetectorConfig()))
        dense = CameraCounter(Detector(DetectorConfig(model=site.detector.model or DetectorConfig().model)), cam)
        for setting, counter in (("default", default), ("dense", dense)):
            results[cam.id, setting] = run_setting(counter, brt / "frames", counts, points)
    load_after = os.getloadavg()[0]

    click.echo(f"load average (1 min) before {load_before:.1f}, after {load_after:.1f}; {os.cpu_count()} cores")
    click.echo(f"PETS09-S2L1, default settings ({pets['model']}, confidence {pets['confidence']}): "
               f"count MAE {pets['count_mae']:.3f}, {pets['fps']:.1f} frames/s")
    click.echo("| camera | settings | images | images/s | recall | precision | raw MAE | raw bias "
               "| corrected MAE (5-fold by time) | bias | factor | MAE with other camera's factor |")
    click.echo("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (cam_id, setting), r in results.items():
        other = next(r2 for (c2, s2), r2 in results.items() if c2 != cam_id and s2 == setting)
        raw_mae, raw_bias = err(r["raw"], r["truth"])
        cv_mae, cv_bias = err(cross_validated(r["raw"], r["truth"]), r["truth"])
        factor = _factor(r["raw"], r["truth"])
        other_mae, _ = err(np.round(_factor(other["raw"], other["truth"]) * r["raw"]), r["truth"])
        detector = site.camera(cam_id).detector if setting == "dense" else None
        label = (f"input {detector.input_size}, conf {detector.confidence}" if detector
                 else f"input {DetectorConfig().model.rsplit('_', 1)[-1]}, conf {DetectorConfig().confidence}")
        click.echo(f"| {cam_id} | {setting}: {label} | {r['frames']} | {r['fps']:.1f} | {r['recall']:.2f} | "
                   f"{r['precision']:.2f} | {raw_mae:.2f} | {raw_bias:+.2f} | {cv_mae:.2f} | {cv_bias:+.2f} | "
                   f"{factor:.2f} | {other_mae:.2f} |")


if __name__ == "__main__":
    main()
