"""The real models on real photos, for every family in the team's model folder, and model errors."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from edge.detections import Detections, iou_matrix
from edge.detector import Detector, DetectorConfig, Family, recognise_family
from models import ModelError, resolve_model
from models.registry import list_models
from conftest import IMAGES

# Hand-drawn person boxes (xyxy) on the two photos.
BUS_PEOPLE = np.array([[50, 400, 245, 905], [220, 405, 345, 860], [665, 380, 810, 880], [0, 550, 75, 875]],
                      np.float32)
ZIDANE_PEOPLE = np.array([[745, 40, 1145, 715], [120, 195, 1110, 715]], np.float32)

MODELS = {  # model -> (family, people found in bus.jpg at confidence 0.25)
    "yolox_nano_416": (Family.YOLOX, 4),
    "yolox_nano_320": (Family.YOLOX, 3),  # misses the man cut off at the left edge at 320 px
    "yolov8n_int8_640": (Family.ULTRALYTICS, 4),
    "yolo11n_int8_320": (Family.ULTRALYTICS, 4),
}


def matched(found: Detections, truth: np.ndarray) -> int:
    if not len(found):
        return 0
    return int((iou_matrix(truth, found.xyxy).max(axis=1) >= 0.5).sum())


@pytest.fixture(scope="module", params=sorted(MODELS))
def detector(request) -> Detector:
    return Detector(DetectorConfig(model=request.param, confidence=0.25))


def test_family_is_recognised_from_the_model(detector):
    assert detector.family is MODELS[detector.name][0]


def test_people_in_bus_photo(detector):
    found = detector(cv2.imread(str(IMAGES / "bus.jpg")))
    expected = MODELS[detector.name][1]
    assert len(found) == expected
    assert matched(found, BUS_PEOPLE) == expected  # every box sits on a real person, not the bus


def test_people_in_zidane_photo(detector):
    found = detector(cv2.imread(str(IMAGES / "zidane.jpg")))
    assert len(found) == 2
    assert matched(found, ZIDANE_PEOPLE) == 2


def test_boxes_are_in_frame_pixels_for_a_non_square_frame(detector):
    frame = cv2.imread(str(IMAGES / "zidane.jpg"))  # 1280 x 720: letterbox padding must be undone
    found = detector(frame)
    assert found.xyxy[:, [0, 2]].max() <= 1280 and found.xyxy[:, [1, 3]].max() <= 720
    assert found.confidence.min() >= 0.25


def test_threshold_from_config():
    strict = Detector(DetectorConfig(model="yolox_nano_416", confidence=0.8))
    assert len(strict(cv2.imread(str(IMAGES / "bus.jpg")))) == 2


def test_yolov5_layout_is_recognised():
    assert recognise_family([1, 6300, 85], 320, {}) is Family.YOLOV5
    assert recognise_family([1, 2100, 85], 320, {}) is Family.YOLOX
    assert recognise_family([1, 84, 2100], 320, {"author": "Ultralytics"}) is Family.ULTRALYTICS
    with pytest.raises(ModelError, match="unrecognised detector output"):
        recognise_family([1, 1000, 6], 320, {})


def test_missing_model_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr("models.registry.shared_dirs", lambda: [])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(ModelError) as info:
        resolve_model("yolo11n_int8_320", model_dir=tmp_path / "mine", fetch=False)
    assert "not found" in str(info.value) and str(tmp_path / "mine") in str(info.value)
    assert str(tmp_path / "cache") in str(info.value)


def test_unknown_model_name():
    with pytest.raises(ModelError, match="unknown model 'yolo99'.*yolox_nano_320"):
        resolve_model("yolo99")


def test_truncated_known_model_is_refused(tmp_path):
    good = resolve_model("yolox_nano_320").path
    (tmp_path / good.name).write_bytes(good.read_bytes()[:100_000])
    with pytest.raises(ModelError, match="corrupt or not yolox_nano_320"):
        resolve_model("yolox_nano_320", model_dir=tmp_path)


def test_corrupt_unlisted_file_gives_one_clear_error(tmp_path):
    bad = tmp_path / "custom.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(ModelError, match="cannot be loaded by onnxruntime"):
        Detector(DetectorConfig(model=str(bad)))


def test_renamed_model_still_works(tmp_path):
    copy = tmp_path / "hall-camera-model.onnx"
    shutil.copy(resolve_model("yolo11n_int8_320").path, copy)
    det = Detector(DetectorConfig(model=str(copy), confidence=0.25))
    assert det.family is Family.ULTRALYTICS and det.size == 320
    assert not det.model.verified


def test_registry_lists_the_team_models():
    rows = {spec.name: (path, ok) for spec, path, ok in list_models() if spec}
    assert all(ok for path, ok in rows.values() if path)
    assert rows["yolox_nano_320"][0] is not None


def test_yolox_takes_a_wide_frame_without_square_padding():
    """A 16:9 frame is fed as 320x192, not 320x320, and finds the same people at the same places."""
    frame = cv2.imread(str(IMAGES / "zidane.jpg"))  # 1280 x 720
    fitted = Detector(DetectorConfig(model="yolox_nano_320", confidence=0.25))
    square = Detector(DetectorConfig(model="yolox_nano_320", confidence=0.25, fit_aspect=False))
    blob, box = fitted.preprocess(frame)
    assert blob.shape == (1, 3, 192, 320) and (box.input_height, box.input_width) == (192, 320)
    assert square.preprocess(frame)[0].shape == (1, 3, 320, 320)
    a, b = fitted(frame), square(frame)
    assert len(a) == len(b) == 2
    assert (iou_matrix(a.xyxy, b.xyxy).max(axis=1) > 0.85).all()  # measured 0.97 and 0.89: edge context differs


def test_ultralytics_exports_keep_their_square_input():
    det = Detector(DetectorConfig(model="yolo11n_int8_320"))
    assert det.preprocess(cv2.imread(str(IMAGES / "zidane.jpg")))[0].shape == (1, 3, 320, 320)
