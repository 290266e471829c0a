"""The occlusion correction on the Beijing-BRT cameras, every figure on images it was not fitted on.

For each camera of ``calibration/examples/brt-platform.yaml`` (its detector settings), one
detection pass per image (down to the correction's floor) serves every fit:

- ``raw``: the counted detections alone;
- ``factor (old)``: the first version's one number, people per detection by least squares,
  5-fold cross-validated in capture-time order;
- ``fit-counts``: what ``hallgrid fit-counts`` keeps (detections alone, factor or banded, chosen
  by its own 5-fold cross-validation), scored by nested cross-validation: each outer fold is
  counted by the choice and weights made on the other four folds alone;
- ``banded``: the banded form alone, 5-fold cross-validated;
- the same with 30 hand counts, as an installer collects them: every k-th snapshot in time
  (each offset k in turn), fitted on those 30 and scored on all the others.

Then what the correction costs: CPU time per image of the model run, and of decoding, NMS and
zone counting without and with a banded correction (process time, so the other work on a shared
machine does not count), and PETS09-S2L1 with the default settings (a site without hand counts).

    .venv/bin/python bench/dense_correction.py [--footage ../shared/footage]
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import click
import numpy as np

from calibration.site import CountCorrection, load_site
from edge.count_fit import _factor, cross_validated, cross_validated_banded, cross_validated_fit, fit_correction, \
    predict
from edge.counting import CameraCounter
from edge.detector import Detector, DetectorConfig
from edge.evaluation import evaluate, evaluate_images
from edge.fit_counts_cli import measure_snapshots
from edge.hand_counts import images_of, load_counts

SITE = str(files("calibration") / "examples" / "brt-platform.yaml")
FOOTAGE = Path(__file__).resolve().parents[1].parent / "shared" / "footage"
FEW = 30


def err(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    e = np.asarray(pred, float) - truth
    return float(np.abs(e).mean()), float(e.mean())


def few_snapshots(snaps, n: int = FEW) -> dict[str, list[tuple[float, float]]]:
    """Fit on every k-th snapshot (n of them, each offset in turn), score on the rest: (MAE, bias) per draw."""
    truth, raw, feats = snaps.truth, snaps.raw, snaps.features
    step = len(truth) // n
    out: dict[str, list] = {"raw": [], "factor (old)": [], "fit-counts": [], "kept": []}
    for offset in range(step):
        fit_idx = np.arange(offset, len(truth), step)[:n]
        rest = np.setdiff1d(np.arange(len(truth)), fit_idx)
        factor = _factor(raw[fit_idx].sum(1), truth[fit_idx])
        fit = fit_correction(raw[fit_idx], truth[fit_idx], feats[fit_idx], snaps.bands)
        out["raw"].append(err(raw[rest].sum(1), truth[rest]))
        out["factor (old)"].append(err(np.round(factor * raw[rest]).sum(1), truth[rest]))
        out["fit-counts"].append(err(predict(fit, raw[rest], feats[rest]), truth[rest]))
        out["kept"].append(fit.form)
    return out


def speed(detector: Detector, camera, correction: CountCorrection, folder: Path, names: list[str], repeat: int = 5):
    """Milliseconds of CPU (process time: the load of others does not count) per image for each step:
    the model run (once), then decoding + NMS and zone counting, without and with the banded
    correction (which decodes down to its lowest band and computes the features), repeated."""
    import time

    import cv2

    plain = CameraCounter(detector, camera)
    corrected = CameraCounter(detector, camera.model_copy(update={"count_correction": correction}))
    cpu = {"model": 0.0, "without": 0.0, "with": 0.0}
    wall = 0.0
    for name in names:
        frame = cv2.imread(str(folder / name))
        h, w = frame.shape[:2]
        started, started_wall = time.process_time(), time.perf_counter()
        blob, box = detector.preprocess(frame, plain.detect_options.get("input_size"))
        output = detector.infer(blob)
        cpu["model"] += time.process_time() - started
        wall += time.perf_counter() - started_wall
        for label, counter in (("without", plain), ("with", corrected)):
            opts = counter.search_options
            started = time.process_time()
            for i in range(repeat):
                found = detector.postprocess(output, box, opts.get("confidence"), opts.get("iou"))
                counter.count(found, w, h, float(i))
            cpu[label] += (time.process_time() - started) / repeat
    return {k: 1000 * v / len(names) for k, v in cpu.items()} | {"wall_fps": len(names) / wall}


@click.command()
@click.option("--footage", default=str(FOOTAGE), show_default=True, type=click.Path(exists=True, file_okay=False))
@click.option("--site", "site_path", default=SITE, show_default=True)
@click.option("--speed-images", default=40, show_default=True, type=click.IntRange(1))
def main(footage: str, site_path: str, speed_images: int) -> None:
    base = Path(footage)
    brt = base / "beijing-brt-train"
    all_counts = load_counts(brt / "counts.csv")
    site = load_site(site_path)
    detector = Detector(DetectorConfig(model=site.detector.model or DetectorConfig().model))
    loads = [os.getloadavg()[0]]
    pets = evaluate(CameraCounter(Detector(DetectorConfig())), base / "pets09-s2l1" / "vtest.avi",
                    base / "pets09-s2l1" / "gt.txt")
    rows, few, speeds = [], {}, {}
    for cam in site.cameras:
        prefix = cam.id[-1] + "-"  # image names start with the camera number
        counts = {n: c for n, c in all_counts.items() if n.startswith(prefix)}
        counter = CameraCounter(detector, cam.model_copy(update={"count_correction": None}))
        snaps = measure_snapshots(counter, images_of(brt / "frames", counts), counts)
        truth = snaps.truth
        nested, forms = cross_validated_fit(snaps.raw, truth, snaps.features, snaps.bands)
        fit = fit_correction(snaps.raw, truth, snaps.features, snaps.bands)
        rows.append((cam.id, len(truth), {
            "raw": err(snaps.raw.sum(1), truth),
            "factor (old)": err(cross_validated(snaps.raw, truth), truth),
            "fit-counts": err(nested, truth),
            "banded": err(cross_validated_banded(snaps.features, truth), truth)}, forms, fit))
        few[cam.id] = few_snapshots(snaps)
        banded = CountCorrection(score_bands=list(fit.score_bands), people_per_band=list(fit.people_per_band),
                                 people_per_crowding=fit.people_per_crowding, images=fit.images)
        names = sorted(counts)[::max(1, len(counts) // speed_images)][:speed_images]
        speeds[cam.id] = speed(detector, cam, banded, brt / "frames", names)
    loads.append(os.getloadavg()[0])

    click.echo(f"load average (1 min) before {loads[0]:.1f}, after {loads[1]:.1f}; {os.cpu_count()} cores")
    click.echo(f"PETS09-S2L1, default settings, no hand counts: count MAE {pets['count_mae']:.3f}")
    click.echo("| camera | images | correction | MAE | bias | 30 hand counts: MAE (range over draws) | bias |")
    click.echo("|---|---|---|---|---|---|---|")
    for cam_id, n, scores, forms, fit in rows:
        for label, (mae, bias) in scores.items():
            draws = few[cam_id].get(label)
            small = (f"{np.mean([d[0] for d in draws]):.2f} ({min(d[0] for d in draws):.2f}-"
                     f"{max(d[0] for d in draws):.2f}) | {np.mean([d[1] for d in draws]):+.2f}") if draws else "- | -"
            click.echo(f"| {cam_id} | {n} | {label} | {mae:.2f} | {bias:+.2f} | {small} |")
        click.echo(f"{cam_id}: forms kept per outer fold {forms}; on all images: {fit.form}, bands "
                   f"{fit.score_bands}, people per band {fit.people_per_band}, per crowding "
                   f"{fit.people_per_crowding}; {len(few[cam_id]['raw'])} draws of {FEW}, fit-counts kept "
                   f"{ {f: few[cam_id]['kept'].count(f) for f in sorted(set(few[cam_id]['kept']))} }")
    for cam_id, s in speeds.items():
        click.echo(f"{cam_id} CPU per image (ms): model run {s['model']:.1f}; decoding, NMS and counting "
                   f"{s['without']:.2f} without the correction, {s['with']:.2f} with (+"
                   f"{100 * (s['with'] - s['without']) / (s['model'] + s['without']):.1f} % of the image's CPU); "
                   f"model run alone {s['wall_fps']:.1f} images/s wall clock")

if __name__ == "__main__":
    main()
