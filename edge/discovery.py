"""Home Assistant MQTT discovery: each zone appears as a sensor without any YAML on the Home Assistant side."""

from __future__ import annotations

import json

from calibration.site import Camera, Site
from edge.contract import occupancy_topic, status_topic


def discovery_messages(site: Site, camera: Camera, prefix: str, ha_prefix: str = "homeassistant"
                       ) -> list[tuple[str, str]]:
    """Retained (topic, config) pairs announcing one sensor per zone, available while the camera is online."""
    out = []
    for zone in camera.zones:
        uid = f"hallgrid_{site.id}_{camera.id}_{zone.id}".replace("-", "_")
        config = {
            "name": f"{zone.name} occupancy",
            "unique_id": uid,
            "object_id": uid,
            "state_topic": occupancy_topic(site.id, camera.id, zone.id, prefix),
            "value_template": "{{ value_json.count }}",
            "json_attributes_topic": occupancy_topic(site.id, camera.id, zone.id, prefix),
            "unit_of_measurement": "people",
            "state_class": "measurement",
            "icon": "mdi:account-group",
            "availability_topic": status_topic(site.id, camera.id, prefix),
            "availability_template": "{{ 'online' if value_json.state == 'online' else 'offline' }}",
            "device": {"identifiers": [f"hallgrid_{site.id}_{camera.id}"],
                       "name": f"{site.name} / {camera.name or camera.id}", "manufacturer": "hallgrid"},
        }
        out.append((f"{ha_prefix}/sensor/{uid}/config", json.dumps(config, separators=(",", ":"))))
    return out
