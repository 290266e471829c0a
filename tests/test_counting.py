"""Zone counting on real footage frames, and smoothing on scripted detection sequences."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.site import load_site
from edge.clock import ManualClock
from edge.counting import CameraCounter
from edge.detections import Anchor, Detections
from edge.detector import Detector
from edge.evaluation import load_mot
from edge.smoothing import CountSmoother
from edge.video import VideoError, read_frames
from edge.zones import ZoneCounter, ZoneShape
from conftest import EXAMPLE_SITE, PETS_GT, PETS_VIDEO


def boxes(*xyxy) -> Detections:
    return Detections(np.array(xyxy, np.float32).reshape(-1, 4), np.ones(len(xyxy), np.float32))


def test_anchor_is_the_feet_by_default():
    counter = ZoneCounter([ZoneShape("floor", [(0, 0.5), (1, 0.5), (1, 1), (0, 1)])])
    tall = boxes([10, 10, 30, 80])  # head in the top half, feet in the bottom half
    assert counter.count(tall, 100, 100) == {"floor": 1}
    by_centre = ZoneCounter(counter.zones, anchor=Anchor.CENTER)
    assert by_centre.count(tall, 100, 100) == {"floor": 0}


def test_exclusion_mask_removes_detections_from_every_zone():
    zones = [ZoneShape("a", [(0, 0), (1, 0), (1, 1), (0, 1)]), ZoneShape("b", [(0, 0), (0.5, 0), (0.5, 1), (0, 1)])]
    counter = ZoneCounter(zones, masks=[[(0.1, 0.1), (0.3, 0.1), (0.3, 0.3), (0.1, 0.3)]])
    dets = boxes([15, 0, 25, 20], [60, 0, 70, 90])  # feet (20, 20) in the mask; (65, 90) free
    assert counter.count(dets, 100, 100) == {"a": 1, "b": 0}
    assert len(counter.unmasked(dets, 100, 100)) == 1


@pytest.fixture(scope="module")
def pets_frames(need_footage):
    wanted = {0, 200, 400, 600}
    frames = {}
    for i, _, f in read_frames(PETS_VIDEO):
        if i in wanted:
            frames[i] = f
        if i >= max(wanted):
            break
    return frames


def test_zone_counts_on_real_frames_match_ground_truth(pets_frames):
    """On real frames the detector's per-zone counts are within one person of the annotated ones."""
    site = load_site(EXAMPLE_SITE)
    camera = site.cameras[0]
    detector = Detector()
    truth = load_mot(PETS_GT)
    zones = ZoneCounter.for_camera(camera)
    total_err = 0
    for index, frame in pets_frames.items():
        h, w = frame.shape[:2]
        found = zones.count(detector(frame), w, h)
        expected = zones.count(truth[index + 1], w, h)
        assert sum(expected.values()) >= 2  # the frames chosen do have people in the zones
        for zone in expected:
            assert abs(found[zone] - expected[zone]) <= 1, (index, zone, found, expected)
            total_err += abs(found[zone] - expected[zone])
    assert total_err <= 3


def test_camera_counter_smooths_with_injected_time(pets_frames):
    site = load_site(EXAMPLE_SITE)
    counter = CameraCounter(Detector(), site.cameras[0], site.smoothing)
    clock = ManualClock(1_000_000.0)
    frame = pets_frames[200]
    first = counter.process(frame, clock.now())
    assert first.smoothed == first.raw  # nothing to smooth against yet
    empty = np.zeros_like(frame)
    dropped = counter.process(empty, clock.advance(0.1))  # a frame where nobody is seen
    assert sum(dropped.raw.values()) == 0
    assert dropped.smoothed == first.smoothed  # held through the one-frame dropout


def test_one_frame_dropout_does_not_change_the_smoothed_count():
    s = CountSmoother(enter_s=0.3, exit_s=0.6)
    raw = [3] * 10 + [1] + [3] * 10 + [2, 2] + [3] * 10
    out = [s.update(n, i * 0.1) for i, n in enumerate(raw)]
    assert set(out) == {3}


def test_one_frame_false_positive_does_not_change_the_smoothed_count():
    s = CountSmoother(enter_s=0.3, exit_s=0.6)
    raw = [2] * 10 + [3] + [2] * 10 + [4, 4] + [2] * 5
    assert set(s.update(n, i * 0.1) for i, n in enumerate(raw)) == {2}


@pytest.mark.parametrize("exit_s", [0.4, 0.6, 1.0])
def test_real_departure_shows_within_the_exit_delay(exit_s):
    s = CountSmoother(enter_s=0.3, exit_s=exit_s)
    t = 0.0
    for _ in range(20):
        s.update(4, t)
        t += 0.1
    left_at = t
    while s.update(2, t) != 2:
        t += 0.1
        assert t - left_at <= exit_s + 1e-6, "departure not shown within exit delay"
    assert t - left_at >= exit_s - 0.1 - 1e-6  # and not before it: short occlusions are bridged


def test_arrival_shows_within_the_enter_delay_at_a_low_detect_rate():
    s = CountSmoother(enter_s=0.3, exit_s=0.6)
    times = [i * 0.5 for i in range(10)]  # 2 detections per second
    out = [s.update(0 if t < 2 else 1, t) for t in times]
    # one sample is never enough; the second, half a second later, confirms it: under a second of lag
    assert out[times.index(2.0)] == 0 and out[times.index(2.5)] == 1


def test_unreadable_video_is_a_clear_error(tmp_path):
    junk = tmp_path / "broken.mp4"
    junk.write_bytes(b"not a video at all" * 1000)
    with pytest.raises(VideoError, match="broken.mp4"):
        list(read_frames(junk))
    with pytest.raises(VideoError, match="does not exist"):
        list(read_frames(tmp_path / "missing.avi"))
