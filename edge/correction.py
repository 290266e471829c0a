"""The occlusion correction a camera's site entry carries, applied with numpy on the edge box.

In a packed waiting area the detector sees part of the crowd; how large a part is
a property of the camera's view (height, angle, how people stand), so it is
measured once per camera from an installer's hand counts (``hallgrid fit-counts``,
edge/count_fit.py) and stored in the site file (calibration.site.CountCorrection).

The count is a weighted sum of a zone's detection features, the same for each zone:

- detections per score band: a confident detection is one person, a low-scoring one
  is a real, half-hidden person only some of the time, so each band gets its own
  people per detection, including a band below the camera's counting threshold;
- crowding: the zone's detections times the share of the zone their boxes cover.
  Where people stand densely, each one hides the next with a chance that grows
  with the density, so the people missed grow with detections x coverage (the
  first-order term of an occlusion model, visible = people x exp(-k x coverage);
  count regression from detections and density: Chan et al. 2008, Ryan et al.
  2009, DecideNet 2018);
- optionally, candidates: the boxes the detector proposed in the zone before NMS, above a
  low score. YOLOX proposes a box from each grid cell near a person and NMS keeps one per
  person, so the proposals measure how much of the zone the crowd fills, including people
  too hidden to keep a box of their own (a crowd's area in the detector's own units).

Weights are at least 0 and there is no constant, so the count never falls when a
detection is added and an empty zone stays 0; each zone is corrected from its own
detections and area, and the camera's count is the sum of its zones' counts. The
older form, one number of people per detection, is applied exactly as before. The
edge box needs no fitting library for either.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from calibration.site import CountCorrection
from edge.detections import Detections


def detection_features(detections: Detections, bands: Sequence[float]) -> np.ndarray:
    """(N, bands + 1): a one-hot of each detection's score band, then its box area in pixels (0 outside the bands).

    >>> d = Detections(np.array([[0, 0, 10, 10], [5, 0, 15, 20], [50, 50, 60, 60]], np.float32),
    ...                np.array([0.9, 0.07, 0.02], np.float32))
    >>> detection_features(d, [0.05, 0.3]).tolist()
    [[0.0, 1.0, 100.0], [1.0, 0.0, 200.0], [0.0, 0.0, 0.0]]
    """
    band = np.searchsorted(np.asarray(bands, float), detections.confidence, side="right") - 1
    inside = band >= 0
    onehot = (band[:, None] == np.arange(len(bands))[None, :]).astype(float)
    area = np.prod(detections.xyxy[:, 2:] - detections.xyxy[:, :2], axis=1).astype(float) * inside
    return np.concatenate([onehot, area[:, None]], axis=1)


def zone_features(detections: Detections, membership: np.ndarray, zone_areas: np.ndarray,
                  bands: Sequence[float], candidates: np.ndarray | None = None) -> np.ndarray:
    """(zones, bands + 1[+ 1]): each zone's detections per score band, its crowding[, its candidates].

    Crowding is the zone's detections (in any band) x the summed area of their boxes / the zone's
    area: a ratio of pixel areas, so it does not depend on the stream's resolution. ``membership`` is
    the (zones, N) boolean of ZoneCounter.membership for the same detections, ``zone_areas`` the
    zones' pixels (masks excluded). ``candidates``, when given, is (zones, M) membership of the boxes
    proposed before NMS (``Detections.candidates``); their number per zone is the last column.

    >>> d = Detections(np.array([[0, 0, 10, 10], [5, 0, 15, 20]], np.float32), np.array([0.9, 0.07], np.float32))
    >>> zone_features(d, np.array([[True, True], [False, False]]), np.array([1000.0, 500.0]), [0.05, 0.3]).tolist()
    [[1.0, 1.0, 0.6], [0.0, 0.0, 0.0]]
    >>> zone_features(d, np.array([[True, True], [False, False]]), np.array([1000.0, 500.0]), [0.05, 0.3],
    ...               np.array([[True, True, False], [False, False, True]]))[:, -1].tolist()
    [2.0, 1.0]
    """
    per_detection = detection_features(detections, bands)
    member = membership.astype(float)
    bands_n = member @ per_detection[:, :-1]
    coverage = (member @ per_detection[:, -1]) / np.maximum(np.asarray(zone_areas, float), 1.0)
    columns = [bands_n, (bands_n.sum(axis=1) * coverage)[:, None]]
    if candidates is not None:
        columns.append(np.asarray(candidates).sum(axis=1, dtype=float)[:, None])
    return np.concatenate(columns, axis=1)


def candidate_boxes(detections: Detections) -> Detections:
    """The boxes proposed before NMS as Detections (for zone membership); none if they were not asked for."""
    boxes = detections.candidates if detections.candidates is not None else np.zeros((0, 4), np.float32)
    return Detections(boxes, np.zeros(len(boxes), np.float32))


def weights(correction: CountCorrection) -> np.ndarray:
    """The banded correction's weights in zone_features' order (the candidates' last, if it has them)."""
    extra = [correction.people_per_candidate] if correction.candidate_score is not None else []
    return np.array([*correction.people_per_band, correction.people_per_crowding, *extra], float)


def corrected_counts(raw: dict[str, int], correction: CountCorrection | None,
                     features: np.ndarray | None = None) -> dict[str, int]:
    """Each zone's people: unchanged without a correction, else from its detections or its features.

    ``features`` (zones, bands + 1, + 1 with candidates; zones in ``raw``'s order) are needed for the
    banded form.

    >>> corrected_counts({"queue": 10, "desk": 0}, CountCorrection(people_per_detection=1.26, images=40))
    {'queue': 13, 'desk': 0}
    >>> c = CountCorrection(score_bands=[0.05, 0.3], people_per_band=[1.5, 1.0], people_per_crowding=2.0, images=30)
    >>> corrected_counts({"queue": 4, "desk": 0}, c, np.array([[2, 4, 1.5], [0, 0, 0]]))
    {'queue': 10, 'desk': 0}
    >>> c = c.model_copy(update={"candidate_score": 0.01, "people_per_candidate": 0.05})
    >>> corrected_counts({"queue": 4, "desk": 0}, c, np.array([[2, 4, 1.5, 60], [0, 0, 0, 0]]))
    {'queue': 13, 'desk': 0}
    """
    if correction is None:
        return dict(raw)
    if correction.people_per_detection is not None:
        k = correction.people_per_detection
        return {zone: int(round(k * n)) for zone, n in raw.items()}
    if features is None:
        raise ValueError("the banded count correction needs each zone's detection features")
    people = np.round(np.asarray(features, float) @ weights(correction))
    return {zone: int(n) for zone, n in zip(raw, people)}


def describe(correction: CountCorrection | None) -> float | dict | None:
    """The correction's weights for a JSON summary: the factor (first form), or the banded weights.

    >>> describe(CountCorrection(people_per_detection=1.2, images=30))
    1.2
    """
    if correction is None or correction.people_per_detection is not None:
        return correction.people_per_detection if correction else None
    fields = {"score_bands", "people_per_band", "people_per_crowding"}
    if correction.candidate_score is not None:
        fields |= {"candidate_score", "people_per_candidate"}
    return correction.model_dump(include=fields)
