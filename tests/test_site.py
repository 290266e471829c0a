"""The site file: the example loads, and every kind of mistake is reported with file, line and field."""

from __future__ import annotations

import pytest

from calibration.site import SiteError, ZoneType, load_site, parse_site
from conftest import EXAMPLE_SITE

GOOD = """\
id: hall-1
name: Test hall
cameras:
  - id: cam1
    source: rtsp://10.0.0.5/stream1
    zones:
      - id: wait
        name: Waiting
        type: waiting
        grid_cell: B
        capacity: 10
        polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(SiteError) as info:
        parse_site(text, "hall.yaml")
    return info.value.problems


def test_example_site_loads_with_its_zones_and_mask():
    site = load_site(EXAMPLE_SITE)
    cam = site.camera("cam1")
    assert [z.id for z in cam.zones] == ["entrance", "waiting-a", "waiting-b", "self-service"]
    assert cam.zones[1].type is ZoneType.WAITING
    assert cam.masks[0].id == "signpost"
    assert site.resolve_source(cam) == "sample://vtest.avi"


def test_good_site_parses():
    site = parse_site(GOOD)
    assert site.cameras[0].zones[0].capacity == 10
    assert site.cameras[0].detect_fps == 5.0


def test_point_outside_frame_names_line_and_field():
    (problem,) = problems_of(GOOD.replace("[0.9, 0.9], [0.1, 0.9]", "[1.4, 0.9], [0.1, 0.9]"))
    assert problem.startswith("hall.yaml:12: cameras[0].zones[0].polygon[2][0]:")
    assert "must be at most 1.0 (got 1.4)" in problem


def test_self_intersecting_polygon():
    bowtie = GOOD.replace("[[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]",
                          "[[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]")
    (problem,) = problems_of(bowtie)
    assert problem.startswith("hall.yaml:12: cameras[0].zones[0].polygon:")
    assert "Self-intersection" in problem


def test_duplicate_zone_ids_and_unknown_type_are_all_reported():
    text = GOOD + """\
      - id: wait
        name: Second
        type: lounge
        grid_cell: B
        capacity: 3
        polygon: [[0.0, 0.0], [0.1, 0.0], [0.1, 0.1]]
"""
    problems = problems_of(text)
    assert any(p.startswith("hall.yaml:15: cameras[0].zones[1].type:") and "waiting" in p for p in problems)
    # type errors come first; a site with a wrong type never reaches the duplicate check half-valid
    fixed = text.replace("type: lounge", "type: counter")
    (dup,) = problems_of(fixed)
    assert dup.startswith("hall.yaml:13: cameras[0].zones[1].id:") and "duplicate zone id 'wait'" in dup


def test_missing_camera_source():
    (problem,) = problems_of(GOOD.replace("    source: rtsp://10.0.0.5/stream1\n", ""))
    assert problem.startswith("hall.yaml:4: cameras[0].source: required field is missing")


def test_duplicate_camera_ids():
    text = GOOD + "  - id: cam1\n    source: usb://0\n"
    (problem,) = problems_of(text)
    assert problem.startswith("hall.yaml:13: cameras[1].id:") and "duplicate camera id" in problem


def test_yaml_syntax_error_has_a_line():
    (problem,) = problems_of(GOOD.replace("capacity: 10", "capacity: [10"))
    assert problem.startswith("hall.yaml:") and "YAML syntax" in problem


def test_misspelt_field_is_not_ignored():
    (problem,) = problems_of(GOOD.replace("capacity: 10", "capacity: 10\n        capcity: 3"))
    assert "cameras[0].zones[0].capcity: unknown field 'capcity'; did you mean 'capacity'?" in problem


def test_unreadable_file(tmp_path):
    with pytest.raises(SiteError, match="cannot read site file"):
        load_site(tmp_path / "nope.yaml")


def test_relative_source_is_relative_to_the_site_file(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(GOOD.replace("rtsp://10.0.0.5/stream1", "videos/cam1.mp4"))
    site = load_site(path)
    assert site.resolve_source(site.cameras[0]) == str(tmp_path / "videos" / "cam1.mp4")


def test_polygon_problem_is_the_one_check_of_zone_and_mask_shapes():
    from calibration.site import polygon_problem

    assert polygon_problem([(0.1, 0.1), (0.9, 0.1), (0.9, 0.9)]) is None
    assert polygon_problem([(0.1, 0.1), (0.9, 0.1)]) == "needs at least 3 points"
    assert "not a simple area" in polygon_problem([(0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)])
    assert polygon_problem([(0.1, 0.1), (0.1000001, 0.1), (0.1, 0.1000001)]) == "polygon has no area"
