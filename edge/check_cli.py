"""``hallgrid check``: validate a site and show every camera's zones, masks and detections on a snapshot.

Why: the installer proves a site before the hall relies on it. The PNG shows
what the box will count (zones, masks, each person's feet point, the counts);
the warnings (``calibration.checks``, ``calibration.floorplan``) say what is
likely to count wrong; ``--truth`` compares the counts with what the installer
sees (``calibration.proof``).
"""

from __future__ import annotations

from pathlib import Path

import click
import cv2
import numpy as np

from calibration.checks import CameraView, check_camera
from calibration.floorplan import site_double_counting
from calibration.proof import ProofSample, TruthError, parse_truth, prove
from calibration.site import Camera, Site, SiteError, load_site
from edge.cli import USER_ERRORS, camera_of, detector_config, detector_options, fail
from edge.correction import corrected_counts
from edge.counting import CameraCounter
from edge.detections import Detections
from edge.zones import ZoneCounter, to_pixels

ZONE_BGR, MASK_BGR, PERSON_BGR = (67, 160, 46), (30, 30, 200), (255, 229, 0)


def draw_overlay(frame: np.ndarray, camera: Camera, detections: Detections, counts: dict[str, int]) -> np.ndarray:
    """The frame with zones (green, with id and count), masks (red) and people (box and feet point) drawn."""
    h, w = frame.shape[:2]
    out = frame.copy()
    fill = frame.copy()
    for zone in camera.zones:
        cv2.fillPoly(fill, [to_pixels(zone.polygon, w, h)], ZONE_BGR)
    for mask in camera.masks:
        cv2.fillPoly(fill, [to_pixels(mask.polygon, w, h)], MASK_BGR)
    cv2.addWeighted(fill, 0.3, out, 0.7, 0, out)
    for zone in camera.zones:
        pts = to_pixels(zone.polygon, w, h)
        cv2.polylines(out, [pts], True, ZONE_BGR, 2, cv2.LINE_AA)
        cx, cy = pts.mean(axis=0).astype(int)
        label = f"{zone.id}: {counts.get(zone.id, 0)}"
        cv2.putText(out, label, (cx - 40, cy), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, label, (cx - 40, cy), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
    for mask in camera.masks:
        cv2.polylines(out, [to_pixels(mask.polygon, w, h)], True, MASK_BGR, 2, cv2.LINE_AA)
    for (x1, y1, x2, y2), (fx, fy) in zip(detections.xyxy.astype(int), detections.anchors().astype(int)):
        cv2.rectangle(out, (x1, y1), (x2, y2), PERSON_BGR, 1)
        cv2.circle(out, (fx, fy), 4, PERSON_BGR, -1, cv2.LINE_AA)
        cv2.circle(out, (fx, fy), 4, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def snapshot_of(site: Site, camera: Camera, snapshot: str | None) -> np.ndarray:
    """The picture to check: the given image, or the first frame of the camera's source."""
    from edge.snapshots import SnapshotSource

    if snapshot:
        image = cv2.imread(snapshot)
        if image is None:
            raise SiteError([f"--snapshot {snapshot}: not a picture OpenCV can read"])
        return image
    source = SnapshotSource(site.resolve_source(camera))
    try:
        return source.grab().image
    except (OSError, ValueError) as exc:
        raise SiteError([f"camera {camera.id}: no snapshot from its source: {exc}; pass --snapshot IMG"]) from None
    finally:
        source.close()


def _out_path(out: str | None, site: Site, camera: Camera, several: bool) -> Path:
    if not out:
        return Path(f"check-{site.id}-{camera.id}.png")
    path = Path(out)
    return path.with_name(f"{path.stem}-{camera.id}{path.suffix or '.png'}") if several else path


@click.command(name="check")
@click.argument("site_path", type=click.Path(dir_okay=False))
@click.option("--camera", "camera_id", help="Check only this camera (default: all).")
@click.option("--snapshot", type=click.Path(exists=True, dir_okay=False),
              help="Picture to check on instead of a frame from the camera's source.")
@click.option("--out", help="PNG to write (several cameras: one per camera, NAME-CAMERA.png).")
@click.option("--truth", help="People you see per zone in the snapshot: ZONE=N,ZONE=N (needs one camera).")
@detector_options
def check_cmd(site_path, camera_id, snapshot, out, truth, model, model_dir, confidence, threads):
    """Validate SITE and draw every zone, mask and detection over a snapshot; print warnings and counts."""
    from edge.detector import Detector

    try:
        site = load_site(site_path)
        cameras = [camera_of(site, camera_id)] if camera_id else list(site.cameras)
        wanted = parse_truth(truth) if truth else {}
        if wanted and len(cameras) > 1:
            raise TruthError("--truth needs --camera: zone counts belong to one snapshot of one camera")
        detector = Detector(detector_config(site, model, confidence, threads, model_dir))
        click.echo(f"site {site.id}: valid, {len(site.cameras)} camera(s), "
                   f"{sum(len(c.zones) for c in site.cameras)} zone(s); model {detector.name} "
                   f"({detector.size} px input)")
        warnings, sizes = 0, {}
        for camera in cameras:
            frame = snapshot_of(site, camera, snapshot)
            h, w = frame.shape[:2]
            sizes[camera.id] = (w, h)
            counter = ZoneCounter.for_camera(camera)
            camera_counter = CameraCounter(detector, camera)  # the camera's detector settings, as the edge
            input_size = camera_counter.detect_options.get("input_size", detector.size)
            detections = counter.unmasked(camera_counter.detect(frame), w, h)
            counts = corrected_counts(counter.count(detections, w, h), camera.count_correction) if camera.zones \
                else {}
            path = _out_path(out, site, camera, len(cameras) > 1)
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), draw_overlay(frame, camera, detections, counts))
            click.echo(f"camera {camera.id}: {len(detections)} people, counts "
                       f"{', '.join(f'{z}={n}' for z, n in counts.items()) or '-'}; picture {path}")
            if camera.frame_size and tuple(camera.frame_size) != (w, h):
                click.echo(f"warning: {camera.id}: snapshot is {w}x{h} but frame_size says "
                           f"{camera.frame_size[0]}x{camera.frame_size[1]}", err=True)
                warnings += 1
            findings = check_camera(camera, CameraView(w, h, input_size, detections.xyxy))
            for finding in findings:
                click.echo(f"warning: {finding}", err=True)
            warnings += len(findings)
            if wanted:
                unknown = set(wanted) - set(counts)
                if unknown:
                    raise TruthError(f"--truth names zones camera {camera.id} does not have: {', '.join(sorted(unknown))}")
                small = {f.zone for f in findings if f.kind == "small_people"}
                for p in prove([ProofSample(z, counts[z], n) for z, n in wanted.items()], small, input_size):
                    click.echo(f"proof {camera.id}/{p.zone}: counted {counts[p.zone]}, you see {wanted[p.zone]}; "
                               f"error {p.bias:+.0f}" + (f"; {' '.join(p.suggestions)}" if p.suggestions else "; ok"))
        if site.floor_plan and site.source_file:
            plan = cv2.imread(str(site.source_file.parent / site.floor_plan.image))
            if plan is None:
                raise SiteError([f"floor_plan.image {site.floor_plan.image}: not a picture OpenCV can read"])
            for text in site_double_counting(site, (plan.shape[1], plan.shape[0]), sizes):
                click.echo(f"warning: floor plan: {text}", err=True)
                warnings += 1
        click.echo(f"{warnings} warning(s)")
    except (*USER_ERRORS, TruthError) as exc:
        fail(exc)
