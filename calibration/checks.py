"""Checks of a camera's zones against what the camera and the model can actually see: numbers in, warnings out.

Why: a site file can be perfectly valid and still count wrong. A zone where
people are a few pixels tall at the model's input is never counted; a zone in
the band where a person's body leaves the frame has its people cut off; two
zones of one grid cell that overlap count the same person twice; a camera with
no zones publishes nothing. None of these is an error of the file, so they are
warnings, each with the fix.

No pixels and no model here: the caller (``edge/check_cli.py``, the editor)
passes the frame size, the model's input size and the person boxes it found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import shapely
from shapely.geometry import Polygon, box

from calibration.site import Camera

MIN_PERSON_PX = 12.0  # person height at the model input below which detection is unreliable
DEFAULT_PERSON_SHARE = 0.15  # person height as a share of the frame height when no one is detected
OUTSIDE_SHARE = 0.5  # a zone with more than this share outside the usable frame is "mostly outside"
OVERLAP_SHARE = 0.05  # of the smaller zone's area: below this, shared edges are not an overlap

T = TypeVar("T")


@dataclass(frozen=True)
class Finding:
    """One warning about a camera or one of its zones; ``kind`` lets tests and tools pick them out."""

    camera: str
    zone: str | None
    kind: str  # no_zones | outside_frame | small_people | tiny_zone | overlap
    message: str

    def __str__(self) -> str:
        where = f"{self.camera}/{self.zone}" if self.zone else self.camera
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class CameraView:
    """What is known of one snapshot: its size, the model's input side, and the people found in it.

    ``people`` is (N, 4) xyxy in frame pixels.
    """

    width: int
    height: int
    model_input: int
    people: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))

    @property
    def scale(self) -> float:
        """Frame pixels -> model-input pixels (the letterbox fits the longer side)."""
        return self.model_input / max(self.width, self.height)


def _pixels(polygon: Sequence[Sequence[float]], view: CameraView) -> Polygon:
    return Polygon(np.asarray(polygon, np.float64) * (view.width, view.height)).buffer(0)


def person_height_at(view: CameraView, feet_y: float) -> float | None:
    """Expected person height (frame px) for feet at ``feet_y``, from the people in view.

    On a floor seen in perspective a person's height in the image grows about
    linearly with the image row of their feet, so three or more detections give
    a line; fewer give their median; none gives None.
    """
    people = np.asarray(view.people, np.float64).reshape(-1, 4)
    if not len(people):
        return None
    heights, feet = people[:, 3] - people[:, 1], people[:, 3]
    if len(people) >= 3 and np.ptp(feet) > 0.05 * view.height:
        slope, offset = np.polyfit(feet, heights, 1)
        return float(max(slope * feet_y + offset, 0.0))
    return float(np.median(heights))


def check_camera(camera: Camera, view: CameraView, min_person_px: float = MIN_PERSON_PX) -> list[Finding]:
    """Every warning for one camera's zones in one snapshot."""
    if not camera.zones:
        return [Finding(camera.id, None, "no_zones", "camera has no zones: it counts nothing; draw its zones "
                        "with `hallgrid calibrate` or remove it from the site")]
    out: list[Finding] = []
    typical = person_height_at(view, view.height / 2) or DEFAULT_PERSON_SHARE * view.height
    # where a person's feet can be while the whole person is still in the frame
    usable = box(0.2 * typical, typical * 0.8, view.width - 0.2 * typical, view.height - 0.01 * view.height)
    people = np.asarray(view.people, np.float64).reshape(-1, 4)
    feet = np.c_[(people[:, 0] + people[:, 2]) / 2, people[:, 3]]
    for zone in camera.zones:
        poly = _pixels(zone.polygon, view)
        if poly.area <= 0:
            continue
        outside = 1 - poly.intersection(usable).area / poly.area
        if outside > OUTSIDE_SHARE:
            out.append(Finding(camera.id, zone.id, "outside_frame",
                               f"{outside:.0%} of the zone lies outside the frame or where people standing in it "
                               "are cut off by the frame's edge: they are detected late or not at all; move the "
                               "zone into the picture or turn the camera"))
        inside = shapely.contains_xy(poly, feet[:, 0], feet[:, 1]) if len(feet) else np.zeros(0, bool)
        seen = people[inside, 3] - people[inside, 1]
        minx, miny, maxx, maxy = poly.bounds
        expected = float(np.median(seen)) if len(seen) else person_height_at(view, (miny + maxy) / 2)
        if expected is not None and expected * view.scale < min_person_px:
            how = "people detected in it are" if len(seen) else "people standing in it would be"
            out.append(Finding(camera.id, zone.id, "small_people",
                               f"{how} about {expected * view.scale:.0f} px tall at the model's {view.model_input} px "
                               f"input (reliable from {min_person_px:g} px): use a bigger model size or a camera "
                               "closer to this area"))
        elif (maxy - miny) * view.scale < min_person_px:
            out.append(Finding(camera.id, zone.id, "tiny_zone",
                               f"the zone is only {(maxy - miny) * view.scale:.0f} px tall at the model's "
                               f"{view.model_input} px input, less than the error of a person's feet point: "
                               "people will flicker in and out; draw it larger or use a bigger model size"))
    out += overlaps(camera)
    return out


def overlapping_pairs(items: Sequence[T], polygon: Callable[[T], Sequence[Sequence[float]]],
                      same_group: Callable[[T, T], bool], min_share: float = OVERLAP_SHARE
                      ) -> list[tuple[T, T, float, float]]:
    """Pairs of items whose polygons share more than ``min_share`` of the smaller one's area.

    Only pairs for which ``same_group(a, b)`` holds are compared. Each result is
    ``(a, b, share, shared_area)``, the area in the polygons' own units.

    >>> sq = lambda x: [(x, 0), (x + 10, 0), (x + 10, 10), (x, 10)]
    >>> [(a, b, round(s, 2)) for a, b, s, _ in overlapping_pairs([0, 6, 10], sq, lambda a, b: True)]
    [(0, 6, 0.4), (6, 10, 0.6)]
    """
    out = []
    shapes = [(item, Polygon(polygon(item)).buffer(0)) for item in items]
    for i, (a, pa) in enumerate(shapes):
        for b, pb in shapes[i + 1:]:
            if not same_group(a, b):
                continue
            smaller = min(pa.area, pb.area)
            shared = pa.intersection(pb).area
            if smaller > 0 and shared / smaller > min_share:
                out.append((a, b, shared / smaller, shared))
    return out


def overlaps(camera: Camera, min_share: float = OVERLAP_SHARE) -> list[Finding]:
    """Zones of one camera and one grid cell that share floor: a person there is counted twice in the cell."""
    return [Finding(camera.id, za.id, "overlap",
                    f"overlaps zone {zb.id} in the same grid cell {za.grid_cell} ({share:.0%} of the "
                    "smaller zone): a person standing there is counted twice in the cell; move the "
                    "shared edge so the zones only touch")
            for za, zb, share, _ in overlapping_pairs(camera.zones, lambda z: z.polygon,
                                                      lambda a, b: a.grid_cell == b.grid_cell, min_share)]
