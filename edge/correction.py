"""The occlusion correction a camera's site entry carries, applied with plain arithmetic on the edge box.

In a packed waiting area the detector sees part of the crowd; how large a part is
a property of the camera's view (height, angle, how people stand), so it is
measured once per camera from an installer's hand counts (``hallgrid fit-counts``,
edge/count_fit.py) and stored as one number: people per detection. Scaling each
zone's detections by it keeps an empty zone at 0 and lets zone counts add up to
the camera's count. The edge box needs no fitting library for this.
"""

from __future__ import annotations

from calibration.site import CountCorrection


def corrected_counts(raw: dict[str, int], correction: CountCorrection | None) -> dict[str, int]:
    """Each zone's detections scaled to people; unchanged without a correction.

    >>> corrected_counts({"queue": 10, "desk": 0}, CountCorrection(people_per_detection=1.26, images=40))
    {'queue': 13, 'desk': 0}
    """
    if correction is None:
        return dict(raw)
    k = correction.people_per_detection
    return {zone: int(round(k * n)) for zone, n in raw.items()}
