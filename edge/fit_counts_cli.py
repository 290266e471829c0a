"""``hallgrid fit-counts``: learn a camera's occlusion correction from an installer's hand counts.

The camera's own zones, masks and detector settings count the snapshots (any
correction already stored is ignored, so a refit starts from the detections);
the factor and its cross-validated error are printed and written under the
camera in the site file, comments and order kept, the old file backed up.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
import numpy as np

from calibration.site import load_site
from calibration.site_edit import save_site_text, set_camera_entry
from edge.cli import USER_ERRORS, camera_of, detector_config, detector_options, fail
from edge.count_fit import FitError, fit_correction
from edge.counting import CameraCounter
from edge.detector import Detector


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
    """Fit people per detection for one camera from hand-counted snapshots and store it in SITE."""
    from edge.evaluation import evaluate_images
    from edge.hand_counts import images_of, load_counts

    try:
        site = load_site(site_path)
        camera = camera_of(site, camera_id).model_copy(update={"count_correction": None})
        counter = CameraCounter(Detector(detector_config(site, model, confidence, threads, model_dir)), camera)
        counts = load_counts(gt_path)
        score = evaluate_images(counter, images_of(image_dir, counts), counts, progress=progress)
        raw = np.array([row[3] for row in score.rows])
        truth = np.array([row[1] for row in score.rows])
        fit = fit_correction(raw, truth)
        click.echo(f"camera {camera.id}: {fit.images} images, {truth.mean():.1f} people on average; "
                   f"{fit.people_per_detection:.3f} people per detection")
        click.echo(f"  detections alone:               MAE {fit.raw_mae:.2f}, bias {fit.raw_bias:+.2f}")
        click.echo(f"  corrected ({fit.folds}-fold, by name/time): MAE {fit.cv_mae:.2f}, bias {fit.cv_bias:+.2f}")
        if fit.cv_mae > fit.raw_mae:
            click.echo("  note: on images it was not fitted on, the correction moves the bias to "
                       f"{fit.cv_bias:+.2f} but raises the error; the detector settings are the lever here")
        if dry_run:
            return
        entry = {"people_per_detection": fit.people_per_detection, "images": fit.images, "cv_mae": fit.cv_mae,
                 "raw_cv_mae": fit.raw_mae, "fitted": dt.date.today().isoformat()}
        path = Path(site_path)
        saved = save_site_text(path, set_camera_entry(path.read_text(encoding="utf-8"), camera.id,
                                                      "count_correction", entry))
        click.echo(f"stored under camera {camera.id} in {path}" + (f" (previous: {saved.backup})"
                                                                   if saved.backup else ""))
    except (*USER_ERRORS, FitError) as exc:
        fail(exc)
