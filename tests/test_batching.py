"""Batched detection: the frames of several cameras in one model run count exactly what one at a time counts,
and the round-robin batches let no camera starve."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from calibration.site import load_site
from edge.counting import CameraCounter, count_stream, detect_many, stream_layout
from edge.detector import Detector, DetectorConfig
from edge.video import read_frames
from edge.workers import FrameSlots
from conftest import EXAMPLE_SITE, PETS_VIDEO


@pytest.fixture(scope="module")
def pets_frames(need_footage) -> list[np.ndarray]:
    return [f for i, _, f in read_frames(PETS_VIDEO, detect_fps=2, prefetch=0) if i < 400]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DetectorConfig())


def test_frames_detected_side_by_side_count_what_one_at_a_time_counts(pets_frames, detector):
    """``count``/``eval``/``replay`` detect a frame per core on one thread each: the same counts, smoothing
    included, in the same order, as one frame at a time on all cores."""
    site = load_site(EXAMPLE_SITE)
    camera = site.cameras[0]
    frames = [(i, i * 0.5, f) for i, f in enumerate(pets_frames[:120])]
    one = CameraCounter(detector, camera, site.smoothing)
    expected = [(i, t, one.process(f, t)) for i, t, f in frames]
    side_by_side = CameraCounter(Detector(DetectorConfig(threads=1)), camera, site.smoothing)
    got = [(i, t, c) for i, t, _, c in count_stream(side_by_side, iter(frames), ahead=3)]
    assert [(i, t) for i, t, _ in got] == [(i, t) for i, t, _ in expected]
    assert [(c.raw, c.smoothed) for *_, c in got] == [(c.raw, c.smoothed) for *_, c in expected]
    assert any(sum(c.smoothed.values()) for *_, c in got), "people are counted in the clip"
    assert stream_layout(0)[0] == 1 and stream_layout(3) == (3, 1)


def test_a_consumer_that_stops_early_leaves_no_detection_running(pets_frames, detector):
    counter = CameraCounter(detector)
    stream = count_stream(counter, ((i, 0.0, f) for i, f in enumerate(pets_frames[:40])), ahead=2)
    assert next(stream)[0] == 0
    stream.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("detect")]


def test_yolox_sessions_take_a_batch(detector):
    assert detector.detect_many([]) == []
    frame = np.zeros((576, 768, 3), np.uint8)
    box = detector.letterbox(frame)
    assert (box.input_height, box.input_width) in detector._batched, "the 4:3 variant has a symbolic batch"
    blob = np.zeros((3, 3, box.input_height, box.input_width), np.float32)
    assert detector.infer(blob).shape[0] == 3


def test_batched_counts_equal_one_frame_at_a_time_on_the_pets_clip(pets_frames, detector):
    site = load_site(EXAMPLE_SITE)
    camera = site.cameras[0]
    one = CameraCounter(detector, camera, site.smoothing)
    singles = [one.process(f, i * 0.5) for i, f in enumerate(pets_frames)]
    # eight cameras, each seeing the clip from another start: every batch mixes different scenes
    cams = 8
    counters = [CameraCounter(detector, camera, site.smoothing) for _ in range(cams)]
    n = len(pets_frames)
    per_cam: list[list] = [[] for _ in range(cams)]
    for step in range(n):
        idx = [(step + c * 7) % n for c in range(cams)]
        found = detect_many(counters, [pets_frames[i] for i in idx])
        for c, (i, dets) in enumerate(zip(idx, found)):
            single = singles[i].detections
            assert len(dets) == len(single), f"frame {i}: {len(dets)} detections batched, {len(single)} alone"
            np.testing.assert_allclose(dets.xyxy, single.xyxy, atol=1e-3)
            np.testing.assert_allclose(dets.confidence, single.confidence, atol=1e-5)
            per_cam[c].append(counters[c].count(dets, 768, 576, step * 0.5).raw)
    assert sum(sum(r.raw.values()) for r in singles) > 0, "people are counted in the clip"
    for c in range(cams):
        expected = [singles[(step + c * 7) % n].raw for step in range(n)]
        assert per_cam[c] == expected


def test_batch_mixes_cameras_with_different_settings(pets_frames, detector):
    frames = pets_frames[:3]
    settings = [{}, {"input_size": 416}, {"confidence": 0.3, "iou": 0.5}]
    batched = detector.detect_many(frames, settings)
    for frame, s, got in zip(frames, settings, batched):
        alone = detector(frame, **s)
        assert len(got) == len(alone)
        np.testing.assert_allclose(got.xyxy, alone.xyxy, atol=1e-3)


def test_take_many_is_round_robin_and_no_camera_starves():
    cams = [f"c{i}" for i in range(10)]
    slots = FrameSlots(cams, lambda cam: None)
    frame = np.zeros((1, 1, 3), np.uint8)
    got: dict[str, int] = {c: 0 for c in cams}
    for turn in range(50):  # every camera has a frame waiting each turn, the detector takes four
        for c in cams:
            slots.put(c, frame, float(turn))
        batch = slots.take_many(4, 0.01)
        assert len(batch) == 4 and len({cam for cam, _, _ in batch}) == 4, "four cameras, none twice"
        for cam, _, _ in batch:
            got[cam] += 1
            slots.done(cam)
    # each turn continues where the last one stopped: 200 frames over 10 cameras, evenly
    assert set(got.values()) == {20}, got


def test_workers_with_batches_serve_every_camera_at_its_rate():
    cams = [f"c{i}" for i in range(12)]
    slots = FrameSlots(cams, lambda cam: None)
    frame = np.zeros((1, 1, 3), np.uint8)
    served = {c: [] for c in cams}
    lock = threading.Lock()
    stop = threading.Event()
    sizes = []

    def process(items) -> None:
        sizes.append(len(items))
        threading.Event().wait(0.005)  # a batch takes a while: frames come due meanwhile
        with lock:
            for cam, _, ts in items:
                served[cam].append(ts)

    workers = [threading.Thread(target=slots.serve, args=(process, stop, 4, 0.05)) for _ in range(2)]
    for w in workers:
        w.start()
    for i in range(200):
        for c in cams:
            slots.put(c, frame, float(i))
        threading.Event().wait(0.002)
    threading.Event().wait(0.3)
    stop.set()
    slots.close()
    for w in workers:
        w.join(timeout=5)
    counts = [len(served[c]) for c in cams]
    assert min(counts) >= 0.8 * max(counts), counts
    assert max(sizes) > 1, "frames that came due together were batched"
    for c in cams:
        assert served[c] == sorted(served[c]) and served[c][-1] == 199.0, "each camera in order, newest last"


@pytest.mark.parametrize("workers, threads, cores, expected", [
    (0, 0, 2, (2, 1)),  # the default: a worker per core, one thread per run
    (1, 0, 2, (1, 2)),  # one worker: its runs use every core
    (0, 0, 1, (1, 1)),
    (2, 3, 4, (2, 3)),  # what the operator says wins
])
def test_plan_workers(workers, threads, cores, expected):
    from edge.workers import plan_workers

    assert plan_workers(workers, threads, cores) == expected
