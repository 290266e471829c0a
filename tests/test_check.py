"""`hallgrid check`: a valid site drawn over its camera's snapshot, and the warnings an installer must see."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from calibration.checks import CameraView, check_camera
from calibration.site import load_site
from hub.cli import cli
from conftest import EXAMPLE_SITE, PETS_VIDEO, SCREENSHOTS

pytestmark = pytest.mark.usefixtures("need_footage")


def run_check(*args: str):
    result = CliRunner().invoke(cli, ["check", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_example_site_check_writes_a_png_with_no_warnings(tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    png = SCREENSHOTS / "check-example-site.png"
    out = run_check(str(EXAMPLE_SITE), "--out", str(png), "--truth", "entrance=1,waiting-b=1")
    image = cv2.imread(str(png))
    assert image is not None and image.shape == (576, 768, 3)
    assert "site demo-hall: valid" in out and "0 warning(s)" in out
    assert "proof cam1/entrance:" in out and "proof cam1/waiting-b:" in out


VARIANT = """\
id: variant
name: Variant hall
detector: {{model: yolox_nano_320}}
cameras:
  - id: cam1
    source: {video}
    zones:
      - {{id: sky, name: Sky, type: other, grid_cell: X, capacity: 1, polygon: [[0.1, 0.0], [0.5, 0.0], [0.5, 0.07], [0.1, 0.07]]}}
      - {{id: wait-1, name: W1, type: waiting, grid_cell: B, capacity: 4, polygon: [[0.0, 0.3], [0.5, 0.3], [0.5, 0.7], [0.0, 0.7]]}}
      - {{id: wait-2, name: W2, type: waiting, grid_cell: B, capacity: 4, polygon: [[0.3, 0.3], [0.8, 0.3], [0.8, 0.7], [0.3, 0.7]]}}
      - {{id: far, name: Far, type: waiting, grid_cell: C, capacity: 2, polygon: [[0.30, 0.27], [0.34, 0.27], [0.34, 0.29], [0.30, 0.29]]}}
  - id: cam2
    source: {video}
"""


def test_variant_site_warns_outside_overlap_no_zones_and_tiny_far_zone(tmp_path):
    site = tmp_path / "variant.yaml"
    site.write_text(VARIANT.format(video=PETS_VIDEO))
    out = run_check(str(site), "--out", str(tmp_path / "v.png"))
    assert (tmp_path / "v-cam1.png").is_file() and (tmp_path / "v-cam2.png").is_file()
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert any("cam1/sky:" in w and "outside the frame" in w for w in warnings), warnings
    assert any("cam1/wait-1:" in w and "overlaps zone wait-2 in the same grid cell B" in w for w in warnings)
    assert any(w.startswith("warning: cam2: camera has no zones") for w in warnings)
    assert any("cam1/far:" in w and "px tall at the model's 320 px input" in w for w in warnings), warnings
    assert not any("wait-2:" in w or "cam1/wait-1:" in w and "outside" in w for w in warnings)
    assert f"{len(warnings)} warning(s)" in out


def test_small_people_seen_by_the_detector_are_reported_from_their_boxes(tmp_path):
    site = tmp_path / "variant.yaml"
    site.write_text(VARIANT.format(video=PETS_VIDEO))
    camera = load_site(site).camera("cam1")
    boxes = np.array([[300, 575, 306, 600]], np.float32)  # 25 px tall in a 1920 px frame: 4 px at 320
    findings = check_camera(camera, CameraView(1920, 1440, 320, boxes))
    assert any(f.kind == "small_people" and f.zone == "wait-1" and "detected in it" in f.message for f in findings)


def test_check_refuses_an_invalid_site_with_its_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(EXAMPLE_SITE).read_text().replace("capacity: 4", "capacity: -1", 1))
    result = CliRunner().invoke(cli, ["check", str(bad)])
    assert result.exit_code == 2 and "capacity" in result.output


def test_live_camera_that_stopped_sending_is_an_error_not_a_frozen_picture():
    from types import SimpleNamespace

    from edge.snapshots import SnapshotSource

    source = SnapshotSource("rtsp://127.0.0.1:9/stream", live_timeout_s=0.3, stale_s=0.2)
    source._reader = SimpleNamespace(health=SimpleNamespace(detail="read timed out"), stop=lambda: None)
    first, second = np.zeros((4, 4, 3), np.uint8), np.ones((4, 4, 3), np.uint8)
    source._on_frame(first, 0.0)
    assert source.grab().image is first
    time.sleep(0.25)  # the camera died after its first frame
    with pytest.raises(OSError, match="stopped sending frames.*read timed out"):
        source.grab()
    source._on_frame(second, 0.0)  # it came back
    assert source.grab().image is second
    source.close()
