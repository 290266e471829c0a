"""Camera-to-floor-plan mapping: a homography fitted from point pairs the installer clicks.

Why: a hall is watched by several cameras whose views overlap. Seen on the floor
plan, two zones of different cameras that cover the same floor and belong to the
same grid cell count the same people twice, which no single camera view shows.

The fit is OpenCV's ``findHomography`` with RANSAC; every pair's reprojection
error is reported, and a pairing whose error exceeds the tolerance is refused
with the bad pairs named, never silently used: a wrong click moves a zone to the
wrong place on the plan without any other visible sign.

Pure OpenCV/numpy: pixels in, numbers and messages out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from calibration.checks import OVERLAP_SHARE, overlapping_pairs

MIN_PAIRS = 4
DEFAULT_TOLERANCE_PX = 3.0  # in floor-plan pixels: a click is rarely more precise than this


class FloorPlanError(ValueError):
    """A point pairing that cannot be used; the message lists the bad pairs and what to do."""


@dataclass(frozen=True)
class FloorFit:
    """A fitted camera-to-plan homography and how well every pair agrees with it.

    ``errors[i]`` is the distance in plan pixels between plan point i and image point i projected.
    """

    homography: np.ndarray  # (3, 3), image pixels -> plan pixels
    errors: np.ndarray  # (N,)
    warnings: list[str] = field(default_factory=list)

    @property
    def max_error(self) -> float:
        return float(self.errors.max())

    def project(self, points: Sequence[Sequence[float]]) -> np.ndarray:
        """(N, 2) image pixels -> (N, 2) plan pixels."""
        pts = np.asarray(points, np.float64).reshape(-1, 1, 2)
        return cv2.perspectiveTransform(pts, self.homography).reshape(-1, 2)


def _reprojection(h: np.ndarray, image: np.ndarray, plan: np.ndarray) -> np.ndarray:
    projected = cv2.perspectiveTransform(image.reshape(-1, 1, 2), h).reshape(-1, 2)
    return np.linalg.norm(projected - plan, axis=1)


def fit_homography(image_px: Sequence[Sequence[float]], plan_px: Sequence[Sequence[float]],
                   tolerance_px: float = DEFAULT_TOLERANCE_PX) -> FloorFit:
    """Fit image -> plan from matching pixel points; raise FloorPlanError naming the pairs that do not fit.

    >>> sq = [(0, 0), (100, 0), (100, 100), (0, 100), (50, 50)]
    >>> round(fit_homography(sq, [(2 * x, 2 * y) for x, y in sq]).max_error, 6)
    0.0
    """
    image = np.asarray(image_px, np.float64).reshape(-1, 2)
    plan = np.asarray(plan_px, np.float64).reshape(-1, 2)
    if len(image) != len(plan):
        raise FloorPlanError(f"{len(image)} image points but {len(plan)} plan points: click each point on both "
                             "pictures, in the same order")
    if len(image) < MIN_PAIRS:
        raise FloorPlanError(f"{len(image)} point pairs given; at least {MIN_PAIRS} are needed (5 or more to "
                             "check them against each other)")
    h, _ = cv2.findHomography(image, plan, cv2.RANSAC, tolerance_px)
    if h is None:
        raise FloorPlanError("no homography fits these points (three or more of them on one line?): spread the "
                             "points over the floor, at its corners")
    errors = _reprojection(h, image, plan)
    # every floor point the camera sees lies in front of it: the projective depth of all of them has one sign
    w = (np.c_[image, np.ones(len(image))] @ h.T)[:, 2]
    folded = np.flatnonzero(np.sign(w) != np.sign(np.median(w)))
    bad = sorted(set(np.flatnonzero(errors > tolerance_px).tolist()) | set(folded.tolist()))
    if bad:
        listed = ", ".join(f"pair {i + 1} (image {tuple(np.round(image[i], 1))} -> plan "
                           f"{tuple(np.round(plan[i], 1))}: {errors[i]:.1f} px off)" for i in bad)
        raise FloorPlanError(f"{len(bad)} of {len(image)} point pairs do not agree with the others beyond "
                             f"{tolerance_px:g} px: {listed}; re-click them (same order on both pictures) or "
                             "remove them")
    warnings = []
    if len(image) == MIN_PAIRS:
        warnings.append("only 4 point pairs: any 4 points fit exactly, so a wrong click cannot be noticed; "
                        "add a fifth point to check them")
    return FloorFit(h, errors, warnings)


def project_polygon(fit: FloorFit, polygon_rel: Sequence[Sequence[float]], frame_size: tuple[int, int]
                    ) -> np.ndarray:
    """A zone polygon relative to the frame (0..1) -> plan pixels."""
    w, h = frame_size
    return fit.project(np.asarray(polygon_rel, np.float64) * (w, h))


@dataclass(frozen=True)
class FloorZone:
    """A zone projected on the floor plan, with what identifies it."""

    camera: str
    zone: str
    grid_cell: str
    polygon: np.ndarray  # (N, 2) plan pixels


def double_counting(zones: Sequence[FloorZone], min_share: float = OVERLAP_SHARE,
                    metres_per_px: float | None = None) -> list[str]:
    """Warnings for zones of different cameras that cover the same floor in the same grid cell.

    With ``metres_per_px`` (the plan's scale, from ``floor_plan.width_m``) each warning also gives the
    shared floor in square metres.

    >>> a = FloorZone("cam1", "wait", "B", np.array([(0, 0), (10, 0), (10, 10), (0, 10)]))
    >>> b = FloorZone("cam2", "wait2", "B", np.array([(5, 0), (15, 0), (15, 10), (5, 10)]))
    >>> double_counting([a, b])[0][:40]
    'cam1/wait and cam2/wait2 (grid cell B) c'
    >>> double_counting([a, b], metres_per_px=0.1)[0].split("(")[2][:34]
    '50% of the smaller zone, 0.5 m² of'
    """
    out = []
    pairs = overlapping_pairs(zones, lambda z: z.polygon,
                              lambda a, b: a.camera != b.camera and a.grid_cell == b.grid_cell, min_share)
    for za, zb, share, shared_px in pairs:
        area = f", {shared_px * metres_per_px ** 2:.1f} m² of floor" if metres_per_px else ""
        out.append(f"{za.camera}/{za.zone} and {zb.camera}/{zb.zone} (grid cell {za.grid_cell}) cover the "
                   f"same floor ({share:.0%} of the smaller zone{area}): people there are counted "
                   "twice; shrink one zone to its own side of the overlap or mask it in one camera")
    return out


def site_double_counting(site, plan_size: tuple[int, int], frame_sizes: dict[str, tuple[int, int]] | None = None,
                         tolerance_px: float = DEFAULT_TOLERANCE_PX) -> list[str]:
    """Fit every camera of a site that has ``floor_points``, project its zones and warn about double counting.

    ``plan_size`` is the floor-plan picture's (width, height); a camera's frame size comes from
    ``frame_sizes`` or its ``frame_size`` in the site. A camera whose pairing is refused gets a warning
    with the bad pairs and is left out of the overlap check. With the plan's ``width_m`` the warnings
    give the doubly counted floor in square metres.
    """
    frame_sizes = frame_sizes or {}
    pw, ph = plan_size
    floor, warnings = [], []
    for cam in site.cameras:
        if cam.floor_points is None:
            continue
        size = frame_sizes.get(cam.id) or cam.frame_size
        if size is None:
            warnings.append(f"camera {cam.id}: floor_points need its frame_size to be known; skipped")
            continue
        try:
            fit = fit_homography(np.asarray(cam.floor_points.image) * size, np.asarray(cam.floor_points.plan) * (pw, ph),
                                 tolerance_px)
        except FloorPlanError as exc:
            warnings.append(f"camera {cam.id}: {exc}")
            continue
        warnings += [f"camera {cam.id}: {w}" for w in fit.warnings]
        floor += [FloorZone(cam.id, z.id, z.grid_cell, project_polygon(fit, z.polygon, size)) for z in cam.zones]
    width_m = site.floor_plan.width_m if site.floor_plan else None
    return warnings + double_counting(floor, metres_per_px=width_m / pw if width_m else None)
