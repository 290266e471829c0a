"""Model registry commands: list, compare on the real clip, export (where the extra is installed), bad files."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge.detector import Detector, DetectorConfig
from models import ModelError
from models.export import record
from models.registry import ModelSpec, load_manifest, sha256_of
from conftest import PETS_GT, PETS_VIDEO, SHARED
from test_eval_cli import run

SHARED_MODELS = sorted(p.stem for p in (SHARED / "models").glob("*.onnx"))


def test_models_list_shows_every_team_model_verified():
    done = run("models", "list")
    assert done.returncode == 0, done.stderr
    for name in SHARED_MODELS:
        line = next(l for l in done.stdout.splitlines() if l.startswith(name + " "))
        assert "verified" in line


def test_compare_ranks_every_model_found(need_footage):
    done = run("models", "compare", str(PETS_VIDEO), "--gt", str(PETS_GT), "--frames", "15", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    names = [r["model"] for r in report["results"]]
    assert sorted(names) == SHARED_MODELS
    maes = [r["count_mae"] for r in report["results"]]
    assert maes == sorted(maes)
    assert all(r["frames"] == 15 and r["fps"] > 0 and 0 <= r["recall"] <= 1 for r in report["results"])


def tiny_onnx(path, output_shape) -> None:
    """A valid ONNX graph that is not a detector: input 1x3x64x64, a constant output of the given shape."""
    value = helper.make_tensor("v", TensorProto.FLOAT, output_shape, np.zeros(output_shape, np.float32).ravel())
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["output"], value=value)], "not_a_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, output_shape)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_wrong_family_model_is_refused_with_its_shape(tmp_path):
    path = tmp_path / "classifier.onnx"
    tiny_onnx(path, [1, 1000, 6])
    with pytest.raises(ModelError, match=r"unrecognised detector output shape \[1, 1000, 6\]"):
        Detector(DetectorConfig(model=str(path)))


def test_truncated_unlisted_model_is_refused(tmp_path):
    path = tmp_path / "cut.onnx"
    path.write_bytes((SHARED / "models" / "yolo11n_int8_320.onnx").read_bytes()[:50_000])
    with pytest.raises(ModelError, match="cannot be loaded"):
        Detector(DetectorConfig(model=str(path)))


def test_recorded_model_is_found_through_its_folder_manifest(tmp_path):
    source = SHARED / "models" / "yolox_nano_320.onnx"
    copy = tmp_path / "hall7.onnx"
    copy.write_bytes(source.read_bytes())
    record(ModelSpec("hall7", "hall7.onnx", "yolox", 320, sha256_of(copy), "Apache-2.0", "test"), tmp_path)
    assert "hall7" in load_manifest(tmp_path)
    det = Detector(DetectorConfig(model="hall7", model_dir=str(tmp_path)))
    assert det.model.verified and det.name == "hall7"


@pytest.mark.skipif(importlib.util.find_spec("ultralytics") is None,
                    reason="the export extra is not installed (pip install 'hallgrid[export]'); CI stays without it")
def test_export_builds_exports_and_runs_a_model(tmp_path):
    done = run("models", "export", "yolo11n.yaml", "--imgsz", "160", "--out", str(tmp_path), timeout=600)
    assert done.returncode == 0, done.stderr
    det = Detector(DetectorConfig(model="yolo11n_160", model_dir=str(tmp_path)))
    assert det.size == 160 and det.family.value == "ultralytics"
    det(np.zeros((240, 320, 3), np.uint8))


def test_fetch_derives_the_320_and_640_files_from_the_416_release(tmp_path):
    """A user machine has only Megvii's 416 release: the 320/640 files are derived, then sha256-checked."""
    from models.fetch import fetch_model

    manifest = load_manifest()
    (tmp_path / "yolox_nano_416.onnx").write_bytes((SHARED / "models" / "yolox_nano_416.onnx").read_bytes())
    for name in ("yolox_nano_320", "yolox_nano_640"):
        path = fetch_model(manifest[name], manifest, tmp_path)  # raises if the bytes differ from the release's
        assert sha256_of(path) == manifest[name].sha256
