"""Floor plan: a homography from clicked point pairs, a wrong pairing refused, double counting on the floor."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration.floorplan import FloorPlanError, FloorZone, double_counting, fit_homography, site_double_counting
from calibration.site import parse_site

# a camera looking down at a floor: a known homography from image pixels to plan pixels
TRUE_H = np.array([[0.9, 0.25, 30.0], [0.05, 1.6, -40.0], [0.0001, 0.0011, 1.0]])
IMAGE = np.array([[100, 200], [650, 210], [700, 540], [60, 520], [380, 300], [250, 450], [520, 400], [400, 520]],
                 np.float64)
PLAN = cv2.perspectiveTransform(IMAGE.reshape(-1, 1, 2), TRUE_H).reshape(-1, 2)


def test_known_pairs_fit_with_sub_half_pixel_error():
    fit = fit_homography(IMAGE, PLAN + np.random.default_rng(0).normal(0, 0.1, PLAN.shape))
    assert fit.max_error < 0.5
    assert np.allclose(fit.project([[300, 300]]), cv2.perspectiveTransform(np.array([[[300.0, 300.0]]]), TRUE_H)[0],
                       atol=0.5)
    assert not fit.warnings


def test_a_wrong_pairing_is_refused_naming_the_bad_pairs():
    swapped = PLAN.copy()
    swapped[[2, 5]] = swapped[[5, 2]]  # two points clicked in the wrong order on the plan
    with pytest.raises(FloorPlanError) as info:
        fit_homography(IMAGE, swapped)
    text = str(info.value)
    assert "pair 3 " in text and "pair 6 " in text and "pair 1 " not in text


def test_four_pairs_fit_but_are_flagged_as_unchecked_and_a_folded_pairing_is_refused():
    assert "fifth" in fit_homography(IMAGE[:4], PLAN[:4]).warnings[0]
    crossed = PLAN[:4][[0, 2, 1, 3]]  # a bowtie: no camera sees a floor like this
    with pytest.raises(FloorPlanError):
        fit_homography(IMAGE[:4], crossed)


def test_too_few_or_unequal_points_are_refused():
    with pytest.raises(FloorPlanError, match="at least 4"):
        fit_homography(IMAGE[:3], PLAN[:3])
    with pytest.raises(FloorPlanError, match="same order"):
        fit_homography(IMAGE[:5], PLAN[:4])


def square(x0, y0, x1, y1):
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], np.float64)


def test_overlapping_zones_of_two_cameras_in_one_grid_cell_warn_of_double_counting():
    a = FloorZone("cam1", "waiting", "B", square(0, 0, 100, 100))
    b = FloorZone("cam2", "waiting-2", "B", square(60, 0, 160, 100))
    other_cell = FloorZone("cam2", "counter", "C", square(0, 0, 100, 100))
    touching = FloorZone("cam2", "side", "B", square(100, 0, 200, 100))
    warnings = double_counting([a, b, other_cell, touching])
    assert len(warnings) == 1 and "cam1/waiting and cam2/waiting-2" in warnings[0] and "40%" in warnings[0]


SITE = """\
id: hall
name: Hall
cameras:
  - id: cam1
    source: a.mp4
    frame_size: [800, 600]
    zones:
      - {{id: wait-1, name: W1, type: waiting, grid_cell: B, capacity: 4, polygon: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]]}}
    floor_points: {{image: {img}, plan: {plan1}}}
  - id: cam2
    source: b.mp4
    frame_size: [800, 600]
    zones:
      - {{id: wait-2, name: W2, type: waiting, grid_cell: B, capacity: 4, polygon: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]]}}
    floor_points: {{image: {img}, plan: {plan2}}}
floor_plan: {{image: plan.png}}
"""


def test_site_cameras_projected_to_the_plan_warn_where_their_zones_overlap():
    img = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9], [0.5, 0.5]]
    # both cameras see the same floor: cam2's picture is cam1's shifted by a tenth of the plan
    plan1 = [[x / 2, y / 2] for x, y in img]
    plan2 = [[x / 2 + 0.1, y / 2] for x, y in img]
    site = parse_site(SITE.format(img=img, plan1=plan1, plan2=plan2))
    warnings = site_double_counting(site, (1000, 1000))
    assert any("cam1/wait-1 and cam2/wait-2" in w for w in warnings), warnings
    far = [[x / 2 + 0.5, y / 2 + 0.5] for x, y in img]
    assert site_double_counting(parse_site(SITE.format(img=img, plan1=plan1, plan2=far)), (1000, 1000)) == []


def test_double_counting_gives_the_shared_floor_in_square_metres_when_the_plan_has_its_width():
    a = FloorZone("cam1", "waiting", "B", square(0, 0, 100, 100))
    b = FloorZone("cam2", "waiting-2", "B", square(60, 0, 160, 100))
    (warning,) = double_counting([a, b], metres_per_px=0.05)  # 40 x 100 px shared = 2 x 5 m
    assert "40% of the smaller zone, 10.0 m² of floor" in warning
    img = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9], [0.5, 0.5]]
    plan1 = [[x / 2, y / 2] for x, y in img]
    plan2 = [[x / 2 + 0.1, y / 2] for x, y in img]
    text = SITE.format(img=img, plan1=plan1, plan2=plan2)
    assert not any("m²" in w for w in site_double_counting(parse_site(text), (1000, 1000)))
    metric = parse_site(text.replace("{image: plan.png}", "{image: plan.png, width_m: 20}"))
    assert any("cam1/wait-1 and cam2/wait-2" in w and "m² of floor" in w
               for w in site_double_counting(metric, (1000, 1000)))
