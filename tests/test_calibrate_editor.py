"""The installer's zone editor in real headless Chromium against a real calibrate server on the sample footage."""

from __future__ import annotations

import threading
import time

import cv2
import httpx
import pytest
import uvicorn

from calibration.site import load_site
from edge.calibrate_server import CalibrateApp, create_app
from edge.detector import Detector, DetectorConfig
from edge.zones import ZoneCounter
from conftest import EXAMPLE_SITE, PETS_VIDEO, SCREENSHOTS, free_port

pytestmark = pytest.mark.usefixtures("need_footage")
TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def server(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text(EXAMPLE_SITE.read_text().replace("source: sample://vtest.avi", f"source: {PETS_VIDEO}"))
    detector = Detector(DetectorConfig(model="yolox_nano_320", threads=1))
    editor = CalibrateApp(site, detector, TOKEN)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(editor), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", site, detector
    srv.should_exit = True
    thread.join(timeout=10)
    editor.close()


def click_at(page, rel_points):
    box = page.locator("#canvas").bounding_box()
    for rx, ry in rel_points:
        page.mouse.click(box["x"] + rx * box["width"], box["y"] + ry * box["height"])


def frame_of(index: int):
    cap = cv2.VideoCapture(str(PETS_VIDEO))
    for _ in range(index + 1):
        ok, frame = cap.read()
    cap.release()
    return frame


def test_draw_count_save_and_refuse_invalid(server, browser):
    base, site_path, detector = server
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{base}/?token={TOKEN}")
    assert "token" not in page.url  # dropped from the address bar once the cookie is set
    page.wait_for_function("document.querySelector('#canvas').dataset.snapshot")
    page.uncheck("#live")
    before = page.get_attribute("#canvas", "data-snapshot")
    page.click("#detect")
    page.wait_for_function(f"document.querySelector('#canvas').dataset.snapshot !== '{before}'")

    # draw a zone over the right half of the walkway, by clicks, and name it
    page.click("#new-zone")
    click_at(page, [(0.45, 0.2), (0.98, 0.2), (0.98, 0.65), (0.45, 0.65)])
    page.click("#finish")
    page.fill("#f-id", "drawn")
    count = page.locator("#shape-list .count[data-zone='drawn']")
    page.wait_for_function("() => { const c = document.querySelector(\"#shape-list .count[data-zone='drawn']\");"
                           " return c && c.textContent !== '–'; }")
    shown = int(count.text_content())
    snapshot = page.get_attribute("#canvas", "data-snapshot")
    assert page.get_attribute("#canvas", "data-counted-snapshot") == snapshot
    frame_index = int(page.get_attribute("#canvas", "data-frame-index"))
    assert page.locator("#people circle").count() >= 1  # live detections drawn over the snapshot

    page.click("#save")
    page.wait_for_selector("#message.ok")
    assert "previous version kept" in page.text_content("#message")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "calibrate-editor.png"))

    # the saved file loads and counts, on the same frame, what the editor showed
    camera = load_site(site_path).camera("cam1")
    zone = next(z for z in camera.zones if z.id == "drawn")
    assert zone.polygon[0] == pytest.approx((0.45, 0.2), abs=0.01)
    frame = frame_of(frame_index)
    h, w = frame.shape[:2]
    counted = ZoneCounter.for_camera(camera).count(detector(frame), w, h)
    assert counted["drawn"] == shown and shown >= 1
    assert "# the blue signpost" in site_path.read_text()  # comments survive the round trip
    assert list(site_path.parent.glob("site.yaml.*.bak"))

    # a self-intersecting polygon is refused with a message in the page, and the file is unchanged
    saved = site_path.read_text()
    page.click("#new-zone")
    click_at(page, [(0.1, 0.7), (0.4, 0.95), (0.4, 0.7), (0.1, 0.95)])
    page.click("#finish")
    page.click("#save")
    page.wait_for_selector("#message.error")
    assert "Not saved" in page.text_content("#message") and "not a simple area" in page.text_content("#message")
    # shown live while drawing, too (the debounced recount lands shortly after the edit)
    page.wait_for_function("document.querySelector('#problems').textContent.includes('not a simple area')")
    assert site_path.read_text() == saved
    page.screenshot(path=str(SCREENSHOTS / "calibrate-editor-invalid.png"))
    page.close()


def test_every_request_needs_the_token(server):
    base, _, _ = server
    assert httpx.get(f"{base}/api/cameras/cam1/snapshot.jpg").status_code == 401
    assert httpx.get(f"{base}/").status_code == 401
    assert httpx.get(f"{base}/?token=wrong").status_code == 401
    ok = httpx.get(f"{base}/api/cameras/cam1/snapshot.jpg", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/jpeg"
