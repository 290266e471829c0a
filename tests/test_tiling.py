"""Tiled detection (edge/tiling.py): the tile plan, the merge across seams, the site setting, and real dense images.

The dense-image test uses the Beijing-BRT sample (``../shared/footage/beijing-brt-train``),
skipped with the reason when it is absent.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration.site import SiteError, TileSettings, parse_site
from edge.counting import CameraCounter, detect_many
from edge.detector import Detector, DetectorConfig
from edge.evaluation import match_points
from edge.hand_counts import load_counts, load_points
from edge.tiling import detect_tiled, merge, plan_tiles
from conftest import FOOTAGE, PETS_VIDEO

BRT = FOOTAGE / "beijing-brt-train"

SITE = """\
id: hall
name: Hall
cameras:
  - id: cam1
    source: rtsp://192.0.2.1/s
    detector:
      input_size: 640
      confidence: 0.2
      tiles: {region: [0, 0, 1, 0.6], tile: 0.5, overlap: 0.25, scale: 1.5}
  - id: cam2
    source: rtsp://192.0.2.2/s
"""


@pytest.fixture(scope="module")
def detector():
    return Detector(DetectorConfig())


@pytest.fixture(scope="module")
def pets_frame(need_footage):
    cap = cv2.VideoCapture(str(PETS_VIDEO))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


# the tile plan


@pytest.mark.parametrize("width,height,settings", [
    (360, 640, TileSettings()),
    (768, 576, TileSettings(tile=0.3, overlap=0.4)),
    (1920, 1080, TileSettings(region=(0.2, 0.1, 0.9, 0.5), tile=0.25, overlap=0)),
    (360, 640, TileSettings(region=(0.0, 0.0, 1.0, 0.05), tile=0.5)),  # a region thinner than a tile
])
def test_tiles_cover_the_region_inside_the_frame_with_one_size(width, height, settings):
    tiles = plan_tiles(width, height, settings)
    rx0, ry0, rx1, ry1 = settings.region or (0, 0, 1, 1)
    covered = np.zeros((height, width), bool)
    for t in tiles:
        assert 0 <= t.x0 < t.x1 <= width and 0 <= t.y0 < t.y1 <= height
        covered[t.y0:t.y1, t.x0:t.x1] = True
    region = (slice(round(ry0 * height), round(ry1 * height)), slice(round(rx0 * width), round(rx1 * width)))
    assert covered[region].all(), "every pixel of the region is in a tile"
    assert len({(t.x1 - t.x0, t.y1 - t.y0, t.input_size) for t in tiles}) == 1, "one shape: one batched model run"
    side = max(tiles[0].x1 - tiles[0].x0, tiles[0].y1 - tiles[0].y0)
    assert tiles[0].input_size == round(settings.scale * side)


def test_neighbouring_tiles_overlap_by_the_setting():
    tiles = plan_tiles(1000, 400, TileSettings(tile=0.5, overlap=0.25, region=(0, 0, 1, 0.5)))
    row = sorted({t.x0 for t in tiles})
    assert row[:2] == [0, 150]  # 200 px tiles, a step of 150: 50 px (25 %) shared
    assert tiles[-1].x1 == 1000, "the last tile ends at the region's edge"


# the merge


def test_merge_drops_a_partial_box_at_a_seam_and_keeps_neighbours():
    whole = [100, 50, 130, 150]
    cut = [100, 50, 130, 95]  # the same person cut by a tile's lower edge: IoU 0.45, inside the whole box
    beside = [128, 52, 158, 150]  # the next person in the queue, shoulder to shoulder
    boxes = np.array([cut, whole, beside], np.float32)
    scores = np.array([0.9, 0.6, 0.5], np.float32)
    kept = merge(boxes, scores, iou=0.45, ios=0.6)
    assert sorted(kept.tolist()) == [0, 2], "the partial box wins on score, the whole one goes, the neighbour stays"
    assert sorted(merge(boxes, scores, iou=0.45, ios=1.0).tolist()) == [0, 1, 2], "IoU alone keeps the duplicate"
    assert merge(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.45, 0.6).size == 0


# the site setting


def test_tiles_are_a_per_camera_setting_that_defaults_to_off():
    site = parse_site(SITE)
    tiles = site.camera("cam1").detector.tiles
    assert tiles == TileSettings(region=(0, 0, 1, 0.6), tile=0.5, overlap=0.25, scale=1.5)
    assert tiles.full_frame and tiles.merge_ios == 0.6
    assert site.camera("cam2").detector is None


@pytest.mark.parametrize("bad,field", [
    ("region: [0, 0, 1, 0.6]", "region: [0, 0.6, 1, 0.2]"),
    ("scale: 1.5", "scale: 9"),
    ("overlap: 0.25", "overlap: 0.9"),
])
def test_bad_tile_settings_are_refused_with_their_line(bad, field):
    with pytest.raises(SiteError, match=r"<site>:9: cameras\[0\].detector.tiles"):
        parse_site(SITE.replace(bad, field))


# detection


def test_without_tiles_detection_is_unchanged(detector, pets_frame):
    plain = detector(pets_frame)
    again = detector(pets_frame, tiles=None)
    np.testing.assert_array_equal(plain.xyxy, again.xyxy)
    counter = CameraCounter(detector, parse_site(SITE).camera("cam2"))
    np.testing.assert_array_equal(counter.detect(pets_frame).xyxy, plain.xyxy)


def test_a_tiled_camera_detects_through_its_tiles_also_in_a_batch(detector, pets_frame):
    site = parse_site(SITE)
    tiled, plain = CameraCounter(detector, site.camera("cam1")), CameraCounter(detector, site.camera("cam2"))
    expected = detect_tiled(detector, pets_frame, site.camera("cam1").detector.tiles, input_size=640,
                            confidence=0.2)
    got = tiled.detect(pets_frame)
    assert len(got) > 0
    np.testing.assert_allclose(got.xyxy, expected.xyxy, atol=1e-3)
    batch = detect_many([tiled, plain, tiled], [pets_frame] * 3)
    np.testing.assert_allclose(batch[0].xyxy, expected.xyxy, atol=1e-3)
    np.testing.assert_allclose(batch[2].xyxy, expected.xyxy, atol=1e-3)
    np.testing.assert_allclose(batch[1].xyxy, detector(pets_frame).xyxy, atol=1e-3)
    w = pets_frame.shape[1]
    assert (got.xyxy[:, [0, 2]] >= 0).all() and (got.xyxy[:, [0, 2]] <= w).all(), "boxes are in frame pixels"


def test_tiles_find_people_in_a_packed_crowd_the_whole_frame_misses(detector):
    if not (BRT / "counts.csv").is_file():
        pytest.skip(f"the Beijing-BRT sample is not at {BRT} (../shared beside the checkout)")
    counts, points = load_counts(BRT / "counts.csv"), load_points(BRT / "points.csv")
    densest = sorted(counts, key=lambda n: -counts[n])[:3]  # shoulder to shoulder, 60+ people
    tiles = TileSettings(tile=0.5, overlap=0.25, scale=1.5)
    whole_found = tiled_found = 0
    for name in densest:
        frame = cv2.imread(str(BRT / "frames" / name))
        whole_found += match_points(points[name], detector(frame, input_size=960, confidence=0.1).xyxy)
        tiled_found += match_points(points[name], detector(frame, input_size=960, confidence=0.1, tiles=tiles).xyxy)
    assert tiled_found > whole_found, (whole_found, tiled_found)
