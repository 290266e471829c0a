"""``hallgrid check``: validate a site and show every camera's zones, masks and detections on a snapshot.

Why: the installer proves a site before the hall relies on it. The PNG shows
what the box will count (zones, masks, each person's feet point, the counts);
the warnings (``calibration.checks``, ``calibration.floorplan``) say what is
likely to count wrong; ``--truth`` compares the counts with what the installer
sees (``calibration.proof``).
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import click
import cv2
import numpy as np

from calibration.checks import CameraView, check_camera
from calibration.floorplan import site_double_counting
from calibration.proof import ProofSample, TruthError, parse_truth, prove
from calibration.site import Camera, Site, SiteError, load_site
from edge.cli import camera_of, detector_config, detector_options
from edge.cli_errors import InputError, RunFailure
from edge.counting import CameraCounter
from edge.detections import Detections
from edge.sources import SourceKind, classify
from edge.zones import ZoneCounter, to_pixels

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
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
    source_url = site.resolve_source(camera)
    if problem := unreachable(source_url):
        raise RunFailure(f"camera {camera.id} unreachable: {problem}; check the camera and its source, pass "
                         "--snapshot IMG, or validate the file alone with --offline")
    source = SnapshotSource(source_url)
    try:
        return source.grab().image
    except (OSError, ValueError) as exc:
        raise RunFailure(f"camera {camera.id}: no snapshot from its source: {exc}; pass --snapshot IMG") from None
    finally:
        source.close()


def unreachable(source: str, timeout_s: float = 3.0) -> str | None:
    """Why a camera source cannot be opened at all, in plain words (None: try it).

    OpenCV only says it could not open a stream; a TCP connection to the camera's
    host tells refused from unreachable from a typo in the host name, which is what
    the installer needs to know. Credentials in the URL are never shown."""
    try:
        spec = classify(source)
    except ValueError as exc:
        return str(exc)
    if spec.kind is SourceKind.FILE:
        return None if Path(spec.url).is_file() else f"file {spec.url} does not exist"
    if spec.kind is not SourceKind.STREAM:
        return None
    parts = urlsplit(spec.url)
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return f"malformed port in {parts.scheme}://{parts.hostname}"
    if not parts.hostname or port is None:
        return None
    where = f"{parts.hostname}:{port}"
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except ConnectionRefusedError:
        return f"connection refused ({where})"
    except socket.timeout:
        return f"no answer within {timeout_s:g} s ({where})"
    except socket.gaierror:
        return f"unknown host {parts.hostname!r}"
    except OSError as exc:
        return f"{exc.strerror or exc} ({where})"
    return None


def check_offline(site: Site) -> int:
    """The file alone: what can be checked without a model or a camera; returns the number of warnings."""
    warnings = 0
    for camera in site.cameras:
        source = site.resolve_source(camera)
        try:
            spec = classify(source, camera.loop)
        except ValueError as exc:
            raise InputError(f"{site.source_file}: camera {camera.id}: source: {exc}") from None
        if spec.kind is SourceKind.FILE and not Path(spec.url).is_file():
            click.echo(f"warning: camera {camera.id}: source file {spec.url} does not exist here", err=True)
            warnings += 1
        if not camera.zones:
            click.echo(f"warning: camera {camera.id}: camera has no zones: it counts nothing", err=True)
            warnings += 1
    if site.floor_plan and site.source_file and not (site.source_file.parent / site.floor_plan.image).is_file():
        click.echo(f"warning: floor_plan.image {site.floor_plan.image} does not exist beside the site file", err=True)
        warnings += 1
    return warnings


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
@click.option("--offline", is_flag=True, help="Validate the file alone: no model, no camera, no picture.")
@detector_options
def check_cmd(site_path, camera_id, snapshot, out, truth, offline, model, model_dir, confidence, threads):
    """Validate SITE and draw every zone, mask and detection over a snapshot; print warnings and counts."""
    from edge.detector import Detector

    site = load_site(site_path)
    if offline:
        warnings = check_offline(site)
        click.echo(f"site {site.id}: valid, {len(site.cameras)} camera(s), "
                   f"{sum(len(c.zones) for c in site.cameras)} zone(s) (offline: the file alone)")
        click.echo(f"{warnings} warning(s)")
        return

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
        result = camera_counter.count(camera_counter.detect(frame), w, h, 0.0)  # corrected as the edge does
        detections = counter.unmasked(result.detections, w, h)
        counts = result.corrected if camera.zones else {}
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
