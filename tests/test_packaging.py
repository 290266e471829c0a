"""The wheel as a hall's IT installs it: built from the tree, installed into a clean venv from PyPI.

The dev venv is an editable install with every extra, so it cannot show a
dependency missing from an extra or a file missing from the wheel. This test
builds the wheel, installs it alone (the edge box: ``hallgrid edge`` works, hub
commands say which extra to install), then with the ``hub`` extra, starts
``hallgrid hub`` on a site file written by the installed ``hallgrid init`` and fetches the board
with its scripts and styles over HTTP. It needs PyPI (or a filled pip cache):
the first run downloads the dependencies, later runs take them from the cache.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from conftest import REPO, free_port

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(1500)]
TOKEN = "packaging-test-token-0123"


def sh(*args, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    got = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert got.returncode == 0, f"{args}: {got.stderr[-3000:]}"
    return got


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", out, REPO)
    (built,) = out.glob("hallgrid-*.whl")
    return built


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    sh(sys.executable, "-m", "venv", venv)
    return venv


def test_wheel_carries_the_package_data_and_nothing_else(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("hub/board/index.html", "hub/board/board.js", "hub/board/board.css", "hub/messages/catalogue.yaml",
                   "calibration/examples/demo-hall.yaml", "models/manifest.yaml", "edge/static/calibrate/editor.js"):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("tests/", "bench/", "deploy/")) or n.endswith(".onnx")]


def test_clean_install_edge_only_then_with_the_hub_extra_serves_the_board(wheel, clean_venv, broker, tmp_path):
    pip = [clean_venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check"]
    hallgrid = clean_venv / "bin" / "hallgrid"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HALLGRID_", "PYTHON", "VIRTUAL_ENV"))}
    env["HALLGRID_STATE_DIR"] = str(tmp_path / "state")
    run = dict(env=env, cwd=tmp_path)       # never the checkout: python would import the tree, not the wheel

    sh(*pip, "install", "--quiet", wheel, **run)                          # the edge box: no extras
    assert sh(hallgrid, "--version", **run).stdout.strip() == "hallgrid 0.1.0"
    assert "Serve a site's cameras" in sh(hallgrid, "edge", "--help", **run).stdout
    demo = Path(sh(clean_venv / "bin" / "python", "-c", "import calibration, pathlib; print(pathlib.Path("
                   "calibration.__file__).parent / 'examples' / 'demo-hall.yaml')", **run).stdout.strip())
    assert demo.is_file() and str(demo).startswith(str(clean_venv)), "the example sites ship in the wheel"
    site = tmp_path / "hall.yaml"                # the installer's own site file, from the installed command
    sh(hallgrid, "init", "--id", "hall-1", "--name", "Hall 1", "--timezone", "Asia/Shanghai",
       "--camera", "cam1=rtsp://10.0.0.5/stream1", "--out", site, **run)
    assert sh(hallgrid, "check", site, "--offline", **run).stdout.startswith("site hall-1: valid")
    no_hub = subprocess.run([hallgrid, "hub", "--site", site], capture_output=True, text=True, timeout=60, **run)
    assert no_hub.returncode == 1 and "Traceback" not in no_hub.stderr
    assert re.fullmatch(r"error: 'hallgrid hub' needs the hub extra \(module '\w+' is not installed\): "
                        r"pip install 'hallgrid\[hub\]'", no_hub.stderr.strip().splitlines()[-1]), no_hub.stderr

    sh(*pip, "install", "--quiet", f"{wheel}[hub]", **run)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([hallgrid, "hub", "--site", site, "--mqtt", broker.url, "--http", f"127.0.0.1:{port}"],
                            env={**env, "HALLGRID_TOKEN": TOKEN}, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the installed hub never became ready"
            time.sleep(0.3)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
            board = client.get("/board")
            assert board.status_code == 200 and "<html" in board.text.lower()
            assets = re.findall(r'(?:src|href)="(/board/static/[^"]+)"', board.text)
            assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets), assets
            for asset in assets:
                got = client.get(asset)
                assert got.status_code == 200 and got.content, asset
            assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200
            assert client.get("/api/sites").json() == [{"id": "hall-1", "name": "Hall 1"}]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert (tmp_path / "state" / "hub.db").is_file()
