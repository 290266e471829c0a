"""A new site file for ``hallgrid init``: commented, valid as written, and a starting point to edit.

Why text and not a dumped model: the comments are the point. They tell the
installer what each part is for and which command fills it in (zones are drawn
with ``hallgrid calibrate``); values are written as JSON strings, which YAML
reads back unchanged whatever they contain (``rtsp://user:pa:ss@...``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from calibration.site import parse_site

WHOLE_FRAME = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]


@dataclass(frozen=True)
class NewCamera:
    id: str
    source: str


def render_site(site_id: str, name: str, timezone: str, cameras: list[NewCamera], filename: str = "site.yaml") -> str:
    """The site file's text; raises SiteError when the answers do not make a valid site."""
    q = json.dumps
    lines = [
        f"# Site file of {name}, written by `hallgrid init`. Check the file alone with",
        f"# `hallgrid check {filename} --offline`, the zones over a live snapshot with `hallgrid check {filename}`.",
        "# JSON Schema for editors: `hallgrid site-schema --out site.schema.json`.",
        f"id: {q(site_id)}              # letters, digits, '_' and '-': part of every MQTT topic",
        f"name: {q(name)}",
        f"timezone: {q(timezone)}       # IANA tz database name: the ticket day and reports follow it",
        "detector:",
        "  model: yolox_nano_320       # `hallgrid models list` shows the models found",
        "  threads: 0                  # onnxruntime threads, 0: all cores",
        "cameras:",
    ]
    for cam in cameras:
        lines += [
            f"  - id: {q(cam.id)}",
            f"    source: {q(cam.source)}   # rtsp://, http(s)://, usb://0, a file (relative to this file), sample://",
            "    detect_fps: 5",
            f"    zones:                    # redraw in the browser: hallgrid calibrate --site {filename}",
            f"      - id: {q(cam.id + '-floor')}",
            "        name: Whole view",
            "        type: waiting           # entrance, lobby_desk, ticket_kiosk, waiting, counter, self_service, vip, other",
            "        grid_cell: A            # the hall grid cell (owner's area) this zone belongs to",
            "        capacity: 10            # people it holds comfortably (seats in a waiting area)",
            f"        polygon: {WHOLE_FRAME}",
            "    masks: []                 # areas to ignore (posters, mirrors), drawn like zones",
        ]
    lines += [
        "# Ticket services and counters (hub): which waiting zones each service's customers sit in.",
        "services: []",
        "#  - {id: billing, name: Billing, waiting_zones: [cam1-floor]}",
        "counters: []",
        "#  - {id: c1, name: Counter 1, services: [billing]}",
        "# Board users (hub); password hashes from `hallgrid hash-password`:",
        "# access:",
        "#   users:",
        "#     - {name: duty, role: duty_manager, password_hash: 'scrypt$...'}",
        "",
    ]
    text = "\n".join(lines)
    parse_site(text, "<new site>")      # never write a file that does not pass the check
    return text

