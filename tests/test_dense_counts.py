"""Packed waiting areas: still-image eval, per-camera detector settings and the fitted occlusion correction.

The Beijing-BRT sample (``../shared/footage/beijing-brt-train``) is real dense
queues under elevated cameras; tests use a few dozen of its images, spread over
its capture times, so that they stay short on a shared 2-core machine.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from ruamel.yaml import YAML

from calibration.site import CountCorrection, SiteError, parse_site
from calibration.site_edit import save_site_text, set_camera_entry
from edge.counting import CameraCounter
from edge.detections import Detections
from edge.detector import Detector, DetectorConfig
from edge.evaluation import GroundTruthError, match_points
from edge.hand_counts import load_counts, load_points
from models import ModelError
from conftest import EXAMPLE_SITE, FOOTAGE, PETS_VIDEO, REPO

HALLGRID = str(Path(sys.executable).with_name("hallgrid"))
BRT = FOOTAGE / "beijing-brt-train"
BRT_SITE = REPO / "calibration" / "examples" / "brt-platform.yaml"


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([HALLGRID, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.fixture(scope="module")
def brt():
    if not (BRT / "counts.csv").is_file():
        pytest.skip(f"the Beijing-BRT sample is not at {BRT} (../shared beside the checkout)")
    return BRT


def subset(brt: Path, folder: Path, camera: str, n: int, start: int = 0, step: int | None = None) -> Path:
    """``n`` images of one camera spread over its capture times, linked into ``folder`` with their counts."""
    counts = load_counts(brt / "counts.csv")
    names = sorted(name for name in counts if name.startswith(f"{camera}-"))
    step = step or len(names) // n
    chosen = names[start::step][:n]
    folder.mkdir(parents=True)
    for name in chosen:
        (folder / name).symlink_to(brt / "frames" / name)
    with (folder / "counts.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([["image", "count"], *([name, counts[name]] for name in chosen)])
    return folder / "counts.csv"


# hand-count files


@pytest.mark.parametrize("text, where", [
    ("img,count\na.jpg,3\n", ":1: expected the header 'image,count'"),
    ("image,count\na.jpg,3\nb.jpg,three\n", ":3: count: 'three' is not a whole number"),
    ("image,count\na.jpg,-1\n", ":2: count: '-1' is not a whole number"),
    ("image,count\na.jpg,3\n\na.jpg,4\n", ":4: image: a.jpg is counted twice"),
    ("image,count\na.jpg,3,7\n", ":2: expected 2 fields"),
    ("image,count\nnotes.txt,3\n", ":2: image: 'notes.txt' is not an image file name"),
    ("image,count\n", ": no counts after the header"),
])
def test_bad_count_files_name_the_line_and_field(tmp_path, text, where):
    path = tmp_path / "counts.csv"
    path.write_text(text)
    with pytest.raises(GroundTruthError) as err:
        load_counts(path)
    assert f"{path}{where}" in str(err.value)


@pytest.mark.parametrize("text, where", [
    ("image,x,y\na.jpg,1.5,2\na.jpg,left,2\n", ":3: x: 'left' is not a pixel coordinate"),
    ("image,x,y\na.jpg,1,nan\n", ":2: x,y: (1, nan) is not a pixel"),
    ("image,x,y\na.jpg,1\n", ":2: expected 3 fields"),
])
def test_bad_point_files_name_the_line_and_field(tmp_path, text, where):
    path = tmp_path / "points.csv"
    path.write_text(text)
    with pytest.raises(GroundTruthError) as err:
        load_points(path)
    assert f"{path}{where}" in str(err.value)


def test_eval_refuses_a_bad_count_file_with_its_line(tmp_path):
    (tmp_path / "a.jpg").write_bytes(cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8))[1].tobytes())
    bad = tmp_path / "counts.csv"
    bad.write_text("image,count\na.jpg,2\nb.jpg,2.5\n")
    done = run("eval", str(tmp_path), "--gt", str(bad))
    assert done.returncode == 2
    assert f"{bad}:3: count: '2.5'" in done.stderr and "Traceback" not in done.stderr


def test_head_points_match_one_to_one_in_the_upper_part_of_a_box():
    box = np.array([[0, 0, 20, 60]], np.float32)
    assert match_points(np.array([[10, 5], [11, 8]], np.float32), box) == 1  # two heads, one box
    assert match_points(np.array([[10, 50]], np.float32), box) == 0  # a point at the feet is not a head
    two = np.array([[0, 0, 20, 60], [15, 0, 35, 60]], np.float32)
    assert match_points(np.array([[17, 5], [26, 6]], np.float32), two) == 2  # each head to its own box


# the site file


SITE_TEXT = """\
# the installer's notes stay
id: hall
name: Hall
cameras:
  - id: cam1
    source: rtsp://192.0.2.1/s  # main entrance
    detector: {input_size: 960, confidence: 0.1}
  - id: cam2
    source: rtsp://192.0.2.2/s
"""


def test_a_site_with_a_correction_round_trips_keeping_comments(tmp_path):
    entry = {"people_per_detection": 1.31, "images": 40, "cv_mae": 1.9, "raw_cv_mae": 3.2, "fitted": "2026-12-01"}
    text = set_camera_entry(SITE_TEXT, "cam1", "count_correction", entry)
    site = parse_site(text)
    assert site.camera("cam1").count_correction == CountCorrection(**entry)
    assert site.camera("cam1").detector.input_size == 960
    assert site.camera("cam2").count_correction is None
    assert "# the installer's notes stay" in text and "# main entrance" in text
    refit = set_camera_entry(text, "cam1", "count_correction", {**entry, "people_per_detection": 1.2, "images": 60})
    assert refit.count("count_correction") == 1
    assert parse_site(refit).camera("cam1").count_correction.people_per_detection == 1.2
    assert parse_site(set_camera_entry(refit, "cam1", "count_correction", None)).camera("cam1").count_correction \
        is None
    path = tmp_path / "site.yaml"
    path.write_text(refit)
    with pytest.raises(SiteError, match=r"count_correction.people_per_detection"):
        save_site_text(path, set_camera_entry(refit, "cam1", "count_correction", {**entry, "people_per_detection": -1}))
    assert path.read_text() == refit  # a bad correction is never written


def test_camera_detector_settings_are_validated_with_their_line():
    with pytest.raises(SiteError, match=r"<site>:7: cameras\[0\].detector.input_size"):
        parse_site(SITE_TEXT.replace("input_size: 960", "input_size: 99999"))


# behaviour where it works today


def test_a_camera_without_dense_settings_counts_exactly_as_before(need_footage):
    frame = next(iter(_frames(PETS_VIDEO, 1)))
    detector = Detector(DetectorConfig())
    camera = parse_site(EXAMPLE_SITE.read_text()).cameras[0]
    assert camera.detector is None and camera.count_correction is None
    counter = CameraCounter(detector, camera)
    result = counter.process(frame, 0.0)
    h, w = frame.shape[:2]
    assert result.corrected == result.raw == counter.zones.count(detector(frame), w, h)
    assert np.array_equal(counter.detect(frame).xyxy, detector(frame).xyxy)


def test_input_size_enlarges_the_yolox_input_and_is_refused_for_a_fixed_model(need_footage):
    frame = next(iter(_frames(PETS_VIDEO, 1)))
    detector = Detector(DetectorConfig())
    blob, _ = detector.preprocess(frame, input_size=640)
    assert blob.shape == (1, 3, 480, 640)  # 768x576 scaled to 640 wide (the default input is 320x256)
    fixed = Detector(DetectorConfig(model="yolo11n_int8_320"))
    with pytest.raises(ModelError, match="fixed input of 320"):
        fixed(frame, input_size=640)


def _frames(video: Path, n: int):
    cap = cv2.VideoCapture(str(video))
    for _ in range(n):
        ok, frame = cap.read()
        if ok:
            yield frame
    cap.release()


# the commands on real dense images


def test_eval_on_images_writes_per_image_counts_and_point_scores(brt, tmp_path):
    counts = subset(brt, tmp_path / "cam2", "2", 10)
    out = tmp_path / "per-image.csv"
    dense = run("eval", str(tmp_path / "cam2"), "--gt", str(counts), "--gt-points", str(brt / "points.csv"),
                "--out", str(out), "--site", str(BRT_SITE), "--camera", "cam2")
    assert dense.returncode == 0, dense.stderr
    result = json.loads(dense.stdout)
    for key in ("count_mae", "count_rmse", "bias", "frames", "fps", "recall", "precision"):
        assert key in result
    assert result["frames"] == 10 and result["fps"] > 0
    assert 0 < result["recall"] <= 1 and 0 < result["precision"] <= 1
    with out.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["image", "gt", "count"] and len(rows) == 11
    truth = load_counts(counts)
    assert all(int(gt) == truth[image] for image, gt, _ in rows[1:])
    default = json.loads(run("eval", str(tmp_path / "cam2"), "--gt", str(counts), "--gt-points",
                             str(brt / "points.csv")).stdout)
    # the camera's settings see the packed crowd the default misses
    assert result["recall"] > default["recall"] + 0.2
    assert result["count_mae"] < default["count_mae"] / 2


def test_fit_counts_on_one_half_corrects_the_other(brt, tmp_path):
    """Hand counts of the earlier half of a camera's snapshots, scored on the later half."""
    fit_counts = subset(brt, tmp_path / "earlier", "1", 12, start=0, step=15)  # images 0..165 of 382
    score_counts = subset(brt, tmp_path / "later", "1", 12, start=200, step=15)  # images 200..365
    site = tmp_path / "site.yaml"
    yaml = YAML(typ="safe")
    doc = yaml.load(BRT_SITE.read_text())
    del doc["cameras"][0]["detector"]  # the default detector: far under, the case the correction is for
    with site.open("w") as fh:
        fh.write("# hall notes\n")
        yaml.dump(doc, fh)
    done = run("fit-counts", str(site), "--camera", "cam1", "--images", str(tmp_path / "earlier"),
               "--gt", str(fit_counts))
    assert done.returncode == 0, done.stderr
    assert "people per detection" in done.stdout and "5-fold" in done.stdout and "banded" in done.stdout
    correction = parse_site(site.read_text()).camera("cam1").count_correction
    assert correction is not None and correction.images == 12
    assert site.read_text().startswith("# hall notes")
    scored = run("eval", str(tmp_path / "later"), "--gt", str(score_counts), "--site", str(site), "--camera", "cam1")
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    assert result["correction"] is not None
    assert result["count_mae"] < 0.7 * result["raw_count_mae"]
    assert abs(result["bias"]) < 0.5 * result["raw_count_mae"]  # raw is all undercount: |raw bias| = raw MAE


def test_fit_counts_needs_enough_hand_counts(brt, tmp_path):
    counts = subset(brt, tmp_path / "few", "2", 4)
    site = tmp_path / "site.yaml"
    site.write_text(BRT_SITE.read_text())
    done = run("fit-counts", str(site), "--camera", "cam2", "--images", str(tmp_path / "few"), "--gt", str(counts))
    assert done.returncode == 2 and "at least 10 are needed" in done.stderr
    assert site.read_text() == BRT_SITE.read_text()


# the edge service publishes raw detections and corrected counts


@pytest.mark.timeout(90)
def test_edge_publishes_raw_detections_and_the_corrected_count(tmp_path, broker, need_footage):
    from test_edge_service import Edge, Subscriber, write_site

    site = write_site(tmp_path / "site.yaml", str(PETS_VIDEO), detect_fps=4)
    site.write_text(set_camera_entry(site.read_text(), "cam1", "count_correction",
                                     {"people_per_detection": 2.0, "images": 30}))
    sub = Subscriber(broker)
    edge = Edge(tmp_path, site, broker)
    try:
        sub.wait_for(lambda: any(m.raw % 2 for m in sub.occupancy()), 60, "an odd raw count")
        msgs = sub.occupancy()
        # each zone's count is twice some raw count (smoothing only picks counts it has seen)
        assert all(m.count % 2 == 0 for m in msgs)
        assert any(m.count > 0 for m in msgs)
    finally:
        edge.stop()
        sub.close()



def test_check_detects_with_the_camera_settings(brt, tmp_path):
    """What the installer checks is what the edge counts: the camera's input size and confidence apply."""
    snapshot = sorted((brt / "frames").glob("2-*.jpg"))[100]
    plain = tmp_path / "plain.yaml"
    plain.write_text(BRT_SITE.read_text().replace("    detector: {input_size: 960, confidence: 0.1}\n", ""))

    def people(site: Path) -> int:
        done = run("check", str(site), "--camera", "cam2", "--snapshot", str(snapshot), "--out",
                   str(tmp_path / "check.png"))
        assert done.returncode == 0, done.stderr
        line = next(x for x in done.stdout.splitlines() if x.startswith("camera cam2:"))
        return int(line.split()[2])

    assert people(BRT_SITE) > people(plain) + 3


# the banded correction


BANDED = {"score_bands": [0.05, 0.1], "people_per_band": [0.25, 0.9], "people_per_crowding": 0.35, "images": 30}


def test_an_old_and_a_banded_correction_load_and_bad_ones_name_the_field(tmp_path):
    old = parse_site(set_camera_entry(SITE_TEXT, "cam1", "count_correction",
                                      {"people_per_detection": 1.3, "images": 40}))
    assert old.camera("cam1").count_correction.people_per_detection == 1.3
    assert old.camera("cam1").count_correction.lowest_score is None  # the old form detects as before
    text = set_camera_entry(SITE_TEXT, "cam1", "count_correction", BANDED)
    banded = parse_site(text).camera("cam1").count_correction
    assert banded == CountCorrection(**BANDED) and banded.lowest_score == 0.05
    assert "# the installer's notes stay" in text
    for bad, message in [({**BANDED, "people_per_band": [0.25]}, "one weight per band"),
                         ({**BANDED, "score_bands": [0.1, 0.05]}, "must ascend"),
                         ({**BANDED, "people_per_detection": 1.2}, "either people_per_detection"),
                         ({"people_per_detection": 1.2, "people_per_crowding": 0.3, "images": 3}, "banded form"),
                         ({**BANDED, "people_per_band": [0.25, -0.9]}, "people_per_band[1]: must be at least 0")]:
        with pytest.raises(SiteError, match=r"<site>:\d+: cameras\[0\].count_correction") as err:
            parse_site(set_camera_entry(SITE_TEXT, "cam1", "count_correction", bad))
        assert message in str(err.value)


def test_banded_counts_keep_empty_zones_at_zero_add_up_and_never_fall_when_someone_is_seen():
    from edge.correction import corrected_counts, zone_features
    from edge.zones import ZoneCounter, ZoneShape

    correction = CountCorrection(**BANDED)
    zones = ZoneCounter([ZoneShape("left", [(0, 0), (0.5, 0), (0.5, 1), (0, 1)]),
                         ZoneShape("right", [(0.5, 0), (1, 0), (1, 1), (0.5, 1)])])
    whole = ZoneCounter([])
    rng = np.random.default_rng(7)

    def people(dets, counter):
        raw = counter.count(dets.filter(dets.confidence > 0.1), 200, 100)
        feats = zone_features(dets, counter.membership(dets, 200, 100), counter.areas(200, 100), [0.05, 0.1])
        return corrected_counts(raw, correction, feats), feats

    for _ in range(20):
        n = int(rng.integers(0, 30))
        xy = rng.uniform(0, 90, (n, 2)) * [1, 0.8]  # everyone on the left half
        dets = Detections(np.concatenate([xy, xy + rng.uniform(5, 25, (n, 2))], 1).astype(np.float32),
                          rng.uniform(0.05, 1, n).astype(np.float32))
        counts, feats = people(dets, zones)
        assert counts["right"] == 0 and not feats[1].any()
        assert counts["left"] == people(dets, ZoneCounter([ZoneShape("left", zones.zones[0].polygon)]))[0]["left"]
        one_more = Detections(np.concatenate([dets.xyxy, [[10, 10, 30, 60]]]).astype(np.float32),
                              np.concatenate([dets.confidence, [0.07]]).astype(np.float32))
        assert people(one_more, zones)[0]["left"] >= counts["left"]
    empty = Detections()
    assert people(empty, whole)[0] == {"all": 0} or set(people(empty, whole)[0].values()) == {0}


def test_fit_correction_keeps_the_form_the_hand_counts_support():
    from edge.count_fit import fit_correction, predict

    rng = np.random.default_rng(3)
    counted = rng.integers(0, 40, 60).astype(float)
    low = rng.integers(0, 20, 60).astype(float)
    crowding = counted ** 2 / 80
    truth = np.round(counted + 0.5 * low + 0.4 * crowding)  # hidden people: half the low ones, more when packed
    features = np.stack([low, counted, crowding], 1)
    fit = fit_correction(counted, truth, features, (0.05, 0.1))
    assert fit.form == "banded" and fit.cv_mae < 0.5 < fit.factor_cv_mae < fit.raw_mae
    assert fit.people_per_band == pytest.approx((0.5, 1.0), abs=0.05)  # (the counts are whole people)
    assert fit.people_per_crowding == pytest.approx(0.4, abs=0.1)
    entry = CountCorrection(**fit.entry())
    assert entry.score_bands == [0.05, 0.1] and entry.cv_mae == fit.cv_mae
    assert np.abs(predict(fit, counted, features) - truth).mean() < 0.5
    exact = fit_correction(counted, counted, features, (0.05, 0.1))  # the detector already counts right
    assert exact.form == "none" and exact.entry() is None


def test_a_banded_correction_counts_the_same_detections_as_raw_and_publishes_more(brt):
    """The correction asks the detector for low-scoring boxes too; raw stays the camera's detections."""
    camera = parse_site(BRT_SITE.read_text()).camera("cam2")
    frame = cv2.imread(str(sorted((brt / "frames").glob("2-*.jpg"))[150]))
    detector = Detector(DetectorConfig())
    plain = CameraCounter(detector, camera).process(frame, 0.0)
    banded = CameraCounter(detector, camera.model_copy(update={"count_correction": CountCorrection(**BANDED)}))
    assert banded.search_options["confidence"] == 0.05 and banded.detect_options["confidence"] == 0.1
    found = banded.detect(frame)
    result = banded.count(found, frame.shape[1], frame.shape[0], 0.0)
    assert len(found) > len(result.detections)  # some scored between 0.05 and 0.1
    assert result.raw == plain.raw and np.array_equal(result.detections.xyxy, plain.detections.xyxy)
    assert result.corrected != result.raw
    old = CameraCounter(detector, camera.model_copy(update={"count_correction": CountCorrection(
        people_per_detection=1.5, images=30)})).process(frame, 0.0)
    assert old.raw == plain.raw and old.corrected == {z: round(1.5 * n) for z, n in plain.raw.items()}


# the banded correction with candidates (boxes proposed before NMS)


CANDIDATES = {**BANDED, "candidate_score": 0.01, "people_per_candidate": 0.04}


def test_a_correction_with_candidates_round_trips_and_bad_ones_name_the_field(tmp_path):
    text = set_camera_entry(SITE_TEXT, "cam1", "count_correction", {**CANDIDATES, "cv_mae": 2.8, "raw_cv_mae": 3.4})
    path = tmp_path / "site.yaml"
    save_site_text(path, text)
    again = parse_site(path.read_text()).camera("cam1").count_correction
    assert again == CountCorrection(**CANDIDATES, cv_mae=2.8, raw_cv_mae=3.4)
    assert parse_site(set_camera_entry(path.read_text(), "cam1", "count_correction", again.model_dump(
        exclude_none=True))).camera("cam1").count_correction == again  # written back as read
    assert "# the installer's notes stay" in path.read_text()
    for bad, message in [({**BANDED, "people_per_candidate": 0.04}, "needs candidate_score"),
                         ({**CANDIDATES, "candidate_score": 1.5}, "candidate_score: must be less than 1.0"),
                         ({**CANDIDATES, "people_per_candidate": -0.1}, "people_per_candidate"),
                         ({"people_per_detection": 1.2, "candidate_score": 0.01, "images": 3}, "banded form")]:
        with pytest.raises(SiteError, match=r"<site>:\d+: cameras\[0\].count_correction") as err:
            parse_site(set_camera_entry(SITE_TEXT, "cam1", "count_correction", bad))
        assert message in str(err.value)


def test_fit_correction_keeps_candidates_when_they_explain_the_hidden_people():
    from edge.correction import corrected_counts
    from edge.count_fit import CANDIDATE_SCORE, fit_correction, predict

    rng = np.random.default_rng(5)
    counted = rng.integers(0, 30, 60).astype(float)
    low = rng.integers(0, 10, 60).astype(float)
    hidden = rng.integers(0, 20, 60).astype(float)  # people no box is kept for, but the detector proposed boxes
    proposed = 25 * (counted + hidden) + rng.integers(0, 5, 60)
    crowding = counted ** 2 / 80
    truth = counted + hidden
    features = np.stack([low, counted, crowding, proposed], 1)
    fit = fit_correction(counted, truth, features, (0.05, 0.1))
    assert fit.form == "candidates"
    assert fit.candidates_cv_mae < 0.5 * min(fit.banded_cv_mae, fit.factor_cv_mae, fit.raw_mae)
    assert fit.candidates[-1] == pytest.approx(1 / 25, rel=0.1)
    entry = CountCorrection(**fit.entry())
    assert entry.candidate_score == CANDIDATE_SCORE and entry.people_per_candidate == fit.candidates[-1]
    # the edge's numpy arithmetic gives the fit's counts, zone by zone
    edge = [corrected_counts({"all": int(n)}, entry, f[None])["all"] for n, f in zip(counted, features)]
    assert edge == predict(fit, counted, features).tolist()
    without = fit_correction(counted, truth, features[:, :3], (0.05, 0.1))  # no candidates: the older forms
    assert without.form in ("none", "factor", "banded") and without.candidates is None


def test_candidates_come_from_the_same_pass_and_leave_raw_alone(brt):
    camera = parse_site(BRT_SITE.read_text()).camera("cam1")
    frame = cv2.imread(str(sorted((brt / "frames").glob("1-*.jpg"))[300]))
    detector = Detector(DetectorConfig())
    plain = CameraCounter(detector, camera)
    counter = CameraCounter(detector, camera.model_copy(update={"count_correction": CountCorrection(**CANDIDATES)}))
    assert counter.search_options == {"input_size": 960, "confidence": 0.05, "candidates": 0.01}
    found = counter.detect(frame)
    assert found.candidates is not None and len(found.candidates) > 3 * len(found)
    batched = detect_many_one(counter, frame)
    assert np.array_equal(batched.candidates, found.candidates) and np.array_equal(batched.xyxy, found.xyxy)
    h, w = frame.shape[:2]
    result = counter.count(found, w, h, 0.0)
    before = plain.process(frame, 0.0)
    assert result.raw == before.raw and np.array_equal(result.detections.xyxy, before.detections.xyxy)
    bands = CountCorrection(**BANDED)
    banded = CameraCounter(detector, camera.model_copy(update={"count_correction": bands})).process(frame, 0.0)
    # the candidates' weight on top of the banded form: 0.04 per proposed box
    added = sum(result.corrected.values()) - sum(banded.corrected.values())
    assert added == pytest.approx(0.04 * len(found.candidates), abs=1)
    no_proposals = Detections(found.xyxy, found.confidence)  # e.g. a tiled camera: none are kept
    assert counter.count(no_proposals, w, h, 0.0).corrected == banded.corrected


def detect_many_one(counter: CameraCounter, frame: np.ndarray) -> Detections:
    from edge.counting import detect_many

    return detect_many([counter, counter], [frame, frame])[1]


def test_fit_counts_with_candidates_on_earlier_days_counts_a_later_day_better(brt, tmp_path):
    """The dense camera as set up: hand counts of the days before 6 May 2017 (every second), scored on
    snapshots of 6 May (every sixth): no day is both fitted and scored."""
    counts = load_counts(brt / "counts.csv")
    names = sorted(n for n in counts if n.startswith("1-"))
    earlier = [n for n in names if n[2:10] < "20170506"][::2]
    later = [n for n in names if n[2:10] >= "20170506"][::6]
    for folder, chosen in (("earlier", earlier), ("later", later)):
        (tmp_path / folder).mkdir()
        for name in chosen:
            (tmp_path / folder / name).symlink_to(brt / "frames" / name)
        with (tmp_path / folder / "counts.csv").open("w", newline="") as fh:
            csv.writer(fh).writerows([["image", "count"], *([n, counts[n]] for n in chosen)])
    site = tmp_path / "site.yaml"
    site.write_text(BRT_SITE.read_text())
    done = run("fit-counts", str(site), "--camera", "cam1", "--images", str(tmp_path / "earlier"),
               "--gt", str(tmp_path / "earlier" / "counts.csv"))
    assert done.returncode == 0, done.stderr
    assert "banded + candidates" in done.stdout
    correction = parse_site(site.read_text()).camera("cam1").count_correction
    assert correction.images == len(earlier) and correction.people_per_candidate > 0
    scored = run("eval", str(tmp_path / "later"), "--gt", str(tmp_path / "later" / "counts.csv"), "--site", str(site),
                 "--camera", "cam1")
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    assert result["correction"]["people_per_candidate"] == correction.people_per_candidate
    assert result["count_mae"] < result["raw_count_mae"] - 0.2
    assert abs(result["bias"]) <= 1
