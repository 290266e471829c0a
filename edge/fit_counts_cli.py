"""``hallgrid fit-counts``: learn a camera's occlusion correction from an installer's hand counts.

The camera's own zones, masks and detector settings count the snapshots (any
correction already stored is ignored, so a refit starts from the detections); the
detector is also asked for the detections scoring down to the correction's floor,
in the same pass, with the boxes it proposes before NMS. Detections alone, the one factor
and the banded forms (without and with those candidates) are scored
by cross-validation (edge/count_fit.py) and the best is written under the camera
in the site file, comments and order kept, the old file backed up.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from calibration.site import load_site
from calibration.site_edit import save_site_text, set_camera_entry
from edge.cli import USER_ERRORS, camera_of, detector_config, detector_options
from edge.cli_errors import fail
from edge.correction import candidate_boxes, zone_features
from edge.count_fit import CANDIDATE_SCORE, CorrectionFit, FitError, fit_correction, score_bands
from edge.counting import CameraCounter
from edge.detector import Detector


@dataclass
class Snapshots:
    """What the correction is fitted from: per image, the counted detections and the features per zone."""

    names: list[str]
    truth: np.ndarray     # (images,) hand counts
    raw: np.ndarray       # (images, zones) detections above the camera's confidence
    features: np.ndarray  # (images, zones, len(bands) + 2) edge.correction.zone_features with candidates
    bands: tuple[float, ...]
    busy_s: float         # reading and detecting


def measure_snapshots(counter: CameraCounter, images: list[Path], counts: dict[str, int],
                      bands: tuple[float, ...] | None = None, progress: bool = False) -> Snapshots:
    """Detect once per snapshot with the camera's settings down to the lowest band, with the boxes proposed
    before NMS above CANDIDATE_SCORE; count and describe it."""
    import cv2
    from tqdm import tqdm

    from edge.evaluation import GroundTruthError

    bands = bands or score_bands(counter.threshold)
    options = {**counter.detect_options, "confidence": min(bands[0], counter.threshold),
               "candidates": CANDIDATE_SCORE}
    raw, features, busy = [], [], 0.0
    for path in tqdm(images, disable=not progress, unit="image", desc="fit-counts"):
        started = time.perf_counter()
        frame = cv2.imread(str(path))
        if frame is None:
            raise GroundTruthError(f"{path}: cannot be read as an image")
        h, w = frame.shape[:2]
        found = counter.detector(frame, **options)
        busy += time.perf_counter() - started
        counted = found.filter(found.confidence > counter.threshold)
        raw.append(list(counter.zones.count(counted, w, h).values()))
        features.append(zone_features(found, counter.zones.membership(found, w, h), counter.zones.areas(w, h), bands,
                                      counter.zones.membership(candidate_boxes(found), w, h)))
    return Snapshots([p.name for p in images], np.array([counts[p.name] for p in images], float),
                     np.array(raw, float), np.array(features, float), bands, busy)


def report(camera_id: str, snaps: Snapshots, fit: CorrectionFit) -> list[str]:
    """The lines fit-counts prints: each form's cross-validated error, its weights, and the one kept."""
    lo, *rest = fit.score_bands or (None,)
    lines = [f"camera {camera_id}: {fit.images} images, {snaps.truth.mean():.1f} people on average",
             f"  detections alone:                    MAE {fit.raw_mae:.2f}, bias {fit.raw_bias:+.2f}",
             f"  one factor ({fit.folds}-fold, by name/time):    MAE {fit.factor_cv_mae:.2f}, bias "
             f"{fit.factor_cv_bias:+.2f}; {fit.people_per_detection:.3f} people per detection"]
    if fit.people_per_band is not None:
        bands = ", ".join(f"{w:.2f} per detection from {b:g}" for w, b in zip(fit.people_per_band,
                                                                             fit.score_bands))
        lines.append(f"  banded ({fit.folds}-fold, by name/time):        MAE {fit.banded_cv_mae:.2f}, bias "
                     f"{fit.banded_cv_bias:+.2f}; {bands}; {fit.people_per_crowding:.2f} per unit of crowding")
    if fit.candidates is not None:
        *band_w, crowding, candidate = fit.candidates
        bands = ", ".join(f"{w:.2f} per detection from {b:g}" for w, b in zip(band_w, fit.score_bands))
        lines.append(f"  banded + candidates ({fit.folds}-fold, by name/time): MAE {fit.candidates_cv_mae:.2f}, bias "
                     f"{fit.candidates_cv_bias:+.2f}; {bands}; {crowding:.2f} per unit of crowding; "
                     f"{candidate:.3f} per box proposed before NMS above {CANDIDATE_SCORE:g}")
    kept = {"none": "detections alone count best on these snapshots: no correction",
            "factor": "kept: the one factor", "banded": "kept: the banded correction",
            "candidates": "kept: the banded correction with candidates"}[fit.form]
    lines.append(f"  {kept}")
    return lines


@click.command(name="fit-counts")
@click.argument("site_path", metavar="SITE", type=click.Path(exists=True, dir_okay=False))
@click.option("--camera", "camera_id", help="The camera the snapshots come from (needed with several).")
@click.option("--images", "image_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of the camera's snapshots.")
@click.option("--gt", "gt_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Hand counts: image,count (people in the camera's zones; the whole frame without zones).")
@click.option("--dry-run", is_flag=True, help="Print the fit, leave the site file as it is.")
@click.option("--progress/--no-progress", default=False)
@detector_options
def fit_counts_cmd(site_path, camera_id, image_dir, gt_path, dry_run, progress, model, model_dir, confidence,
                   threads):
    """Fit one camera's occlusion correction from hand-counted snapshots and store it in SITE."""
    from edge.hand_counts import images_of, load_counts

    try:
        site = load_site(site_path)
        camera = camera_of(site, camera_id).model_copy(update={"count_correction": None})
        counter = CameraCounter(Detector(detector_config(site, model, confidence, threads, model_dir)), camera)
        counts = load_counts(gt_path)
        snaps = measure_snapshots(counter, images_of(image_dir, counts), counts, progress=progress)
        fit = fit_correction(snaps.raw, snaps.truth, snaps.features, snaps.bands)
        for line in report(camera.id, snaps, fit):
            click.echo(line)
        if dry_run:
            return
        entry = fit.entry()
        if entry is None and camera_of(site, camera_id).count_correction is None:
            click.echo(f"camera {camera.id} keeps counting its detections; {site_path} is unchanged")
            return
        if entry is not None:
            entry["fitted"] = dt.date.today().isoformat()
        path = Path(site_path)
        saved = save_site_text(path, set_camera_entry(path.read_text(encoding="utf-8"), camera.id,
                                                      "count_correction", entry))
        click.echo(("stored under" if entry else "any stored correction removed from") + f" camera {camera.id} in "
                   f"{path}" + (f" (previous: {saved.backup})" if saved.backup else ""))
    except (*USER_ERRORS, FitError) as exc:
        fail(exc)
