"""The site file's hub part (services, counters, rules) and a test hall shared by the hub tests."""

from __future__ import annotations

import pytest

from calibration.site import SiteError, parse_site

from conftest import EXAMPLE_SITE

SQUARE = "[[0.0, 0.0], [0.1, 0.0], [0.1, 0.1], [0.0, 0.1]]"

HALL_YAML = f"""
id: hall-1
name: Test hall
cameras:
  - id: cam1
    source: rtsp://cam1
    zones:
      - {{id: entrance, name: Entrance, type: entrance, grid_cell: A, capacity: 6, polygon: {SQUARE}}}
      - {{id: kiosk, name: Ticket kiosk, type: ticket_kiosk, grid_cell: A, capacity: 4, polygon: {SQUARE}}}
      - {{id: waiting-a, name: Waiting area A, type: waiting, grid_cell: B, capacity: 20, polygon: {SQUARE}}}
      - {{id: waiting-b, name: Waiting area B, type: waiting, grid_cell: B, capacity: 10, polygon: {SQUARE}}}
      - {{id: self-service, name: Self-service, type: self_service, grid_cell: C, capacity: 3, polygon: {SQUARE}}}
      - {{id: vip-room, name: VIP room, type: vip, grid_cell: D, capacity: 4, polygon: {SQUARE}}}
  - id: cam2
    source: rtsp://cam2
    zones:
      - {{id: counter-1, name: Counter 1, type: counter, grid_cell: E, capacity: 2, polygon: {SQUARE}}}
      - {{id: counter-2, name: Counter 2, type: counter, grid_cell: E, capacity: 2, polygon: {SQUARE}}}
services:
  - {{id: billing, name: Billing, waiting_zones: [waiting-a]}}
  - {{id: newline, name: New line, waiting_zones: [waiting-b]}}
  - {{id: vip, name: VIP, waiting_zones: [vip-room], vip: true}}
counters:
  - {{id: "1", services: [billing, newline], zone: counter-1}}
  - {{id: "2", services: [billing], zone: counter-2}}
  - {{id: "3", services: [newline]}}
  - {{id: "4", services: [billing, newline]}}
  - {{id: "5", services: [vip]}}
rules:
  min_duration_s: 60
  cooldown_s: 300
  escalate_after_s: 300
"""


def hall_site(site_id: str = "hall-1", **rules):
    text = HALL_YAML.replace("id: hall-1", f"id: {site_id}", 1)
    site = parse_site(text, "hall.yaml")
    if rules:
        site = site.model_copy(update={"rules": site.rules.model_copy(update=rules)})
    return site


def test_hub_fields_parse_with_defaults():
    site = hall_site()
    assert [s.id for s in site.services] == ["billing", "newline", "vip"]
    assert site.counters[0].zone == "counter-1" and site.rules.max_wait_s == 300


def test_existing_site_files_stay_valid():
    site = parse_site(EXAMPLE_SITE.read_text(), str(EXAMPLE_SITE))
    assert site.services == [] and site.counters == [] and site.rules.service_time_prior_s == 180


def test_unknown_references_are_reported_with_lines():
    bad = HALL_YAML.replace("waiting_zones: [waiting-b]", "waiting_zones: [nowhere]").replace(
        'services: [vip]}', 'services: [gold]}')
    with pytest.raises(SiteError) as err:
        parse_site(bad, "hall.yaml")
    text = str(err.value)
    assert "no zone 'nowhere'" in text and "no service 'gold'" in text and "hall.yaml:" in text
