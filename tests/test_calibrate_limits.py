"""The calibration editor's doors, over HTTP against a real calibrate server (the same one the browser test
uses, on the sample footage): body and shape limits, bytes-safe cookies, and 40 concurrent saves."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import httpx
import pytest

from calibration.site import MAX_ZONES, SiteError, load_site, parse_site
from calibration.site_edit import KEEP_BACKUPS

from test_calibrate_editor import TOKEN, server  # noqa: F401  (the live editor fixture)

pytestmark = pytest.mark.usefixtures("need_footage")
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SAVE = "/api/cameras/cam1/save"


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def zone(i: int, dx: float = 0.0) -> dict:
    x = (i % 8) * 0.12 + dx
    y = (i // 8) * 0.12
    return {"id": f"z{i}", "name": f"Zone {i}", "type": "waiting", "grid_cell": "A", "capacity": 4,
            "polygon": [[x, y], [x + 0.1, y], [x + 0.1, y + 0.1], [x, y + 0.1]]}


def camera_body(site_path: Path, dx: float = 0.0, extra: int = 0) -> dict:
    """The camera's own zones (services and counters name them) moved by ``dx``, plus ``extra`` new ones."""
    zones = [{**zone(i, dx), "id": z.id, "type": z.type.value} for i, z in
             enumerate(load_site(site_path).camera("cam1").zones)]
    return {"zones": zones + [zone(len(zones) + i) for i in range(extra)], "masks": []}


def test_big_bodies_and_too_many_zones_are_refused_quickly(server):  # noqa: F811
    base, site_path, _ = server
    before_text, before_rss = site_path.read_text(), rss_mib()
    with httpx.Client(base_url=base, headers=AUTH, timeout=60) as c:
        c.get("/api/site")
        big = json.dumps({"zones": [zone(0)], "masks": [], "pad": "x" * 2_000_000}).encode()
        t0 = time.perf_counter()
        r = c.post(SAVE, content=big, headers={"content-type": "application/json"})
        took = time.perf_counter() - t0
        print(f"editor: 2 MB save -> {r.status_code} in {took * 1000:.1f} ms")
        assert r.status_code == 413 and took < 0.050
        # 3,000 zones in 185 KB (under the body limit): refused by the shape limits before any geometry
        many = {"zones": [{"id": f"z{i}", "polygon": [[0.1, 0.1], [0.2, 0.1], [0.2, 0.2]]} for i in range(3000)],
                "masks": []}
        t0 = time.perf_counter()
        r = c.post(SAVE, json=many)
        took = time.perf_counter() - t0
        print(f"editor: 3,000-zone save ({len(json.dumps(many)) // 1000} KB) -> {r.status_code} in "
              f"{took * 1000:.0f} ms, RSS grew {rss_mib() - before_rss:.1f} MiB")
        assert r.status_code == 422 and f"at most {MAX_ZONES} items" in r.text and took < 2.0
        points = {"zones": [{**zone(0), "polygon": [[0.1 + i * 1e-4, 0.1] for i in range(500)]}], "masks": []}
        assert c.post("/api/cameras/cam1/counts", json=points).status_code == 422
        assert site_path.read_text() == before_text
        assert rss_mib() - before_rss < 20
        body = camera_body(site_path, extra=1)
        good = c.post(SAVE, json=body)                                     # and good input still saves
        assert good.status_code == 200 and good.json()["ok"], good.text
    assert [z.id for z in load_site(site_path).camera("cam1").zones] == [z["id"] for z in body["zones"]]


def test_non_ascii_cookies_and_tokens_get_401_not_500(server):  # noqa: F811
    base, _, _ = server
    with httpx.Client(base_url=base, timeout=30) as c:
        for cookie in ("hallgrid_calibrate=\u00e9t\u00e9".encode(), b"hallgrid_calibrate=\xff\xfe",
                       "hallgrid_calibrate=\u00e9".encode("latin-1")):
            for path in ("/", "/api/site", "/static/editor.js"):
                assert c.get(path, headers=[(b"cookie", cookie)]).status_code == 401
        assert c.get("/", headers=[(b"authorization", "Bearer \u00e9".encode())]).status_code == 401
        assert c.get("/api/site", headers=AUTH).status_code == 200


def test_40_concurrent_saves_keep_the_mode_and_ten_backups(server):  # noqa: F811
    base, site_path, _ = server
    os.chmod(site_path, 0o600)
    results: list[int] = []
    barrier = threading.Barrier(40)
    bodies = [camera_body(site_path, dx=i * 0.001, extra=1) for i in range(40)]

    def save(i: int) -> None:
        with httpx.Client(base_url=base, headers=AUTH, timeout=120) as c:
            barrier.wait()
            r = c.post(SAVE, json=bodies[i])
            results.append(r.status_code)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert results == [200] * 40
    site = load_site(site_path)                                        # a whole, valid file
    assert [z.id for z in site.camera("cam1").zones] == [z["id"] for z in bodies[0]["zones"]]
    assert stat.S_IMODE(site_path.stat().st_mode) == 0o600
    backups = sorted(site_path.parent.glob(f"{site_path.name}.*.bak"))
    assert len(backups) == KEEP_BACKUPS
    assert all(stat.S_IMODE(b.stat().st_mode) == 0o600 for b in backups)
    assert not [p for p in site_path.parent.iterdir() if p.name.endswith(".tmp")]
    with httpx.Client(base_url=base, headers=AUTH, timeout=60) as c:
        assert c.post(SAVE, json=camera_body(site_path)).json()["ok"]


def test_the_site_model_bounds_lists_and_strings():
    from test_hub_site import HALL_YAML, SQUARE

    zones = "".join(f"      - {{id: extra{i}, name: X, type: other, grid_cell: A, capacity: 1, polygon: {SQUARE}}}\n"
                    for i in range(MAX_ZONES))
    text = HALL_YAML.replace("    zones:\n", "    zones:\n" + zones, 1)
    with pytest.raises(SiteError, match=r"cameras\[0\]\.zones: List should have at most 64 items"):
        parse_site(text)
    with pytest.raises(SiteError, match=r"name: String should have at most 128 characters"):
        parse_site(HALL_YAML.replace("name: Test hall", "name: " + "n" * 129))
    with pytest.raises(SiteError, match=r"polygon: List should have at most 100 items"):
        parse_site(HALL_YAML.replace(SQUARE, "[" + ", ".join(f"[0.{i:03d}, 0.5]" for i in range(101)) + "]", 1))


def test_removing_every_mask_of_a_commented_camera_writes_valid_yaml(tmp_path):
    from calibration.site_edit import edit_camera
    from conftest import EXAMPLE_SITE

    site_path = tmp_path / "site.yaml"
    site_path.write_text(EXAMPLE_SITE.read_text())
    assert load_site(site_path).camera("cam1").masks           # the example has a commented mask
    text = edit_camera(site_path.read_text(), "cam1", camera_body(site_path)["zones"], [])
    assert parse_site(text).camera("cam1").masks == []
