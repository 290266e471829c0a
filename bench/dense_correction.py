"""The occlusion correction on the Beijing-BRT cameras, every figure on images it was not fitted on.

For each camera of ``calibration/examples/brt-platform.yaml`` (its detector settings), one
detection pass per image (down to the correction's floor, with the boxes proposed before NMS)
serves every fit. Snapshots of one day are near-duplicates, so the figures are scored by
capture date (the name's YYYYMMDD): each day is counted by a correction fitted on the other
days alone.

- ``raw``: the counted detections alone;
- ``banded (before)``: what ``hallgrid fit-counts`` kept before the candidates form (detections
  alone, factor or banded, chosen by its own 5-fold cross-validation on the other days);
- ``fit-counts``: what it keeps now (the same, plus banded with candidates);
- each also with about 40 hand counts, as an installer collects them: for each scored day, 40
  snapshots of the other days (every k-th in time, five offsets k), fitted on those alone;
  the mean over draws per image, and the range of the MAE over the five draws.

The camera 1 figures are where the form and CANDIDATE_SCORE were chosen (design); camera 2 is
the held-out check of the same procedure. Then the speed of the dense setting with the
correction against the default setting, taking turns image by image (wall clock and process
time, with the load average), and PETS09-S2L1 with the default settings (a site without hand
counts).

    .venv/bin/python bench/dense_correction.py [--footage ../shared/footage]
"""

from __future__ import annotations

import os
import time
from importlib.resources import files
from pathlib import Path

import click
import cv2
import numpy as np

from calibration.site import CountCorrection, load_site
from edge.count_fit import cross_validated_fit, fit_correction, predict
from edge.counting import CameraCounter
from edge.detector import Detector, DetectorConfig
from edge.evaluation import evaluate
from edge.fit_counts_cli import measure_snapshots
from edge.hand_counts import images_of, load_counts

SITE = str(files("calibration") / "examples" / "brt-platform.yaml")
FOOTAGE = Path(__file__).resolve().parents[1].parent / "shared" / "footage"
FEW = 40
DRAWS = 5
SIZES = ((0, 10), (10, 20), (20, 30), (30, 100))  # people in the image: where the error is


def err(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    e = np.asarray(pred, float) - truth
    return float(np.abs(e).mean()), float(e.mean())


def capture_dates(names: list[str]) -> np.ndarray:
    """The YYYYMMDD of ``CAM-YYYYMMDDhhmmss.jpg``."""
    return np.array([name.split("-", 1)[1][:8] for name in names])


def few_by_date(raw, truth, feats, bands, dates, n: int = FEW) -> dict:
    """Each day scored by fits on ``n`` snapshots of the other days (DRAWS offsets): per-image mean errors."""
    abs_err, signed, per_draw, kept = np.zeros(len(truth)), np.zeros(len(truth)), np.zeros((DRAWS, 2)), []
    for day in np.unique(dates):
        scored, pool = np.flatnonzero(dates == day), np.flatnonzero(dates != day)
        step = max(1, len(pool) // n)
        offsets = np.unique(np.linspace(0, step - 1, DRAWS).astype(int))
        errors = []
        for k, offset in enumerate(np.resize(offsets, DRAWS)):
            fit_idx = pool[offset::step][:n]
            fit = fit_correction(raw[fit_idx], truth[fit_idx], feats[fit_idx], bands)
            kept.append(fit.form)
            e = predict(fit, raw[scored], feats[scored]) - truth[scored]
            errors.append(e)
            per_draw[k] += [np.abs(e).sum(), e.sum()]
        abs_err[scored] = np.abs(errors).mean(0)
        signed[scored] = np.mean(errors, 0)
    maes = per_draw[:, 0] / len(truth)
    return {"mae": abs_err.mean(), "bias": signed.mean(), "low": maes.min(), "high": maes.max(),
            "kept": {f: kept.count(f) for f in sorted(set(kept))}}


def speed(detector: Detector, counters: dict[str, CameraCounter], folder: Path, names: list[str]) -> dict:
    """Images/s (wall clock) and CPU ms per image of each counter's full step (detect, count, correct) on
    decoded frames, the counters taking turns image by image so that they share the load."""
    busy = {k: 0.0 for k in counters}
    cpu = dict(busy)
    frames = [cv2.imread(str(folder / name)) for name in names]
    for counter in counters.values():
        counter.process(frames[0], 0.0)  # builds the session for this input shape (a live camera's one-off)
    order = list(counters)
    for i, frame in enumerate(frames):
        for key in order[i % len(order):] + order[:i % len(order)]:
            started, started_cpu = time.perf_counter(), time.process_time()
            counters[key].process(frame, float(i))
            busy[key] += time.perf_counter() - started
            cpu[key] += time.process_time() - started_cpu
    return {k: (len(frames) / busy[k], 1000 * cpu[k] / len(frames)) for k in counters}


@click.command()
@click.option("--footage", default=str(FOOTAGE), show_default=True, type=click.Path(exists=True, file_okay=False))
@click.option("--site", "site_path", default=SITE, show_default=True)
@click.option("--speed-images", default=60, show_default=True, type=click.IntRange(1))
def main(footage: str, site_path: str, speed_images: int) -> None:
    base = Path(footage)
    brt = base / "beijing-brt-train"
    all_counts = load_counts(brt / "counts.csv")
    site = load_site(site_path)
    detector = Detector(DetectorConfig(model=site.detector.model or DetectorConfig().model))
    loads = [os.getloadavg()[0]]
    pets = evaluate(CameraCounter(Detector(DetectorConfig())), base / "pets09-s2l1" / "vtest.avi",
                    base / "pets09-s2l1" / "gt.txt")
    rows, speeds = [], {}
    for cam in site.cameras:
        prefix = cam.id[-1] + "-"  # image names start with the camera number
        counts = {n: c for n, c in all_counts.items() if n.startswith(prefix)}
        counter = CameraCounter(detector, cam.model_copy(update={"count_correction": None}))
        snaps = measure_snapshots(counter, images_of(brt / "frames", counts), counts)
        truth, raw, feats, bands = snaps.truth, snaps.raw, snaps.features, snaps.bands
        before = feats[..., :len(bands) + 1]  # without the candidates' column: the forms of before
        dates = capture_dates(snaps.names)
        scores = {"raw": (err(raw.sum(1), truth), None, {"mae": np.nan})}
        for label, f in (("banded (before)", before), ("fit-counts", feats)):
            by_date, forms = cross_validated_fit(raw, truth, f, bands, groups=dates)
            by_time, _ = cross_validated_fit(raw, truth, f, bands)
            scores[label] = (err(by_date, truth), err(by_time, truth), few_by_date(raw, truth, f, bands, dates),
                             {x: forms.count(x) for x in sorted(set(forms))},
                             {f"{lo}-{hi - 1}": (int(m.sum()), *err(by_date[m], truth[m])) for lo, hi in SIZES
                              if (m := (truth >= lo) & (truth < hi)).any()})
        raw_few = err(raw.sum(1), truth)
        fit = fit_correction(raw, truth, feats, bands)
        rows.append((cam.id, len(truth), len(np.unique(dates)), scores, raw_few, fit))
        entry = fit.entry()
        names = sorted(counts)[::max(1, len(counts) // speed_images)][:speed_images]
        counters = {"default 320": CameraCounter(detector),
                    "960": CameraCounter(detector, cam.model_copy(update={"count_correction": None})),
                    "960 + correction": CameraCounter(detector, cam.model_copy(update={
                        "count_correction": CountCorrection(**entry) if entry else None}))}
        speeds[cam.id] = speed(detector, counters, brt / "frames", names)
        loads.append(os.getloadavg()[0])

    click.echo(f"1-min load average: {' -> '.join(f'{x:.1f}' for x in loads)}; {os.cpu_count()} cores")
    click.echo(f"PETS09-S2L1, default settings, no hand counts: count MAE {pets['count_mae']:.3f}")
    click.echo(f"| camera | correction | MAE by date | bias | MAE 5-fold by time | {FEW} hand counts: MAE (range) "
               "| bias | forms kept (by date; 40) |")
    click.echo("|---|---|---|---|---|---|---|---|")
    for cam_id, n, days, scores, raw_few, fit in rows:
        for label, value in scores.items():
            (mae, bias), by_time = value[0], value[1]
            if label == "raw":
                click.echo(f"| {cam_id} ({n} images, {days} days) | raw | {mae:.2f} | {bias:+.2f} | {mae:.2f} "
                           f"| {mae:.2f} | {bias:+.2f} | - |")
                continue
            few, forms = value[2], value[3]
            click.echo(f"| {cam_id} | {label} | {mae:.2f} | {bias:+.2f} | {by_time[0]:.2f} | {few['mae']:.2f} "
                       f"({few['low']:.2f}-{few['high']:.2f}) | {few['bias']:+.2f} | {forms}; {few['kept']} |")
        click.echo(f"{cam_id} fit-counts by date, per crowd size (images, MAE, bias): {scores['fit-counts'][4]}")
        click.echo(f"{cam_id} on all its images: kept {fit.form}; banded {fit.people_per_band} "
                   f"{fit.people_per_crowding}; with candidates (bands, crowding, candidate) {fit.candidates}; "
                   f"5-fold CV: banded {fit.banded_cv_mae}, candidates {fit.candidates_cv_mae}")
    for cam_id, s in speeds.items():
        click.echo(f"{cam_id}: " + "; ".join(f"{k} {fps:.1f} images/s, {ms:.0f} ms CPU per image"
                                             for k, (fps, ms) in s.items())
                   + f"; 960 + correction / default: {s['960 + correction'][0] / s['default 320'][0]:.2f} "
                   f"of the speed, / 960: {s['960 + correction'][0] / s['960'][0]:.2f}")


if __name__ == "__main__":
    main()
