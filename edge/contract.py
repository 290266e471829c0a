"""The occupancy contract: what an edge box publishes over MQTT (version 1).

It lives with its producer; the hub imports it. Topics (prefix default ``hallgrid``):

- ``{prefix}/{site}/{camera}/{zone}/occupancy``, retained, QoS 1: ``OccupancyMessage``
- ``{prefix}/{site}/{camera}/status``, retained, QoS 1: ``StatusMessage``; the
  broker's last will sets ``offline`` when the box dies.

Timestamps are ISO 8601 UTC with milliseconds. ``seq`` is per camera, strictly
increasing and survives restarts, so a consumer can order, de-duplicate and see
gaps.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

VERSION = 1
DEFAULT_PREFIX = "hallgrid"


class ContractError(ValueError):
    """A message that does not follow the contract; the message says which field."""


def iso_ts(epoch: float) -> str:
    """Epoch seconds -> '2026-11-23T08:00:00.123Z'."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ts(text: str) -> float:
    """ISO 8601 (with Z or an offset) -> epoch seconds."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError, AttributeError):
        raise ContractError(f"ts {text!r} is not an ISO 8601 time") from None
    if dt.tzinfo is None:
        raise ContractError(f"ts {text!r} has no time zone; use UTC with a Z")
    return dt.timestamp()


def occupancy_topic(site: str, camera: str, zone: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/{camera}/{zone}/occupancy"


def status_topic(site: str, camera: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/{camera}/status"


def _require(data: dict, name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in data:
        raise ContractError(f"field {name!r} is missing")
    value = data[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple)
                                                                               else (kind,))):
        raise ContractError(f"field {name!r} has the wrong type ({type(value).__name__})")
    return value


def _decode(payload: bytes | str) -> dict:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"payload is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ContractError("payload is not a JSON object")
    if data.get("v") != VERSION:
        raise ContractError(f"unsupported version v={data.get('v')!r} (expected {VERSION})")
    return data


@dataclass(frozen=True)
class OccupancyMessage:
    """People in one zone now: the smoothed count (what alerts use) and this frame's raw count (detections).

    With a camera's occlusion correction (site ``count_correction``) ``count`` is the corrected count,
    smoothed, and ``raw`` stays the detections, so a consumer can see how much the correction adds.
    """

    site: str
    camera: str
    zone: str
    ts: str
    count: int
    raw: int
    seq: int
    capacity: int | None = None
    v: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, payload: bytes | str) -> "OccupancyMessage":
        data = _decode(payload)
        msg = cls(site=_require(data, "site", str), camera=_require(data, "camera", str),
                  zone=_require(data, "zone", str), ts=_require(data, "ts", str),
                  count=_require(data, "count", int), raw=_require(data, "raw", int),
                  seq=_require(data, "seq", int), capacity=data.get("capacity"))
        parse_ts(msg.ts)
        if msg.count < 0 or msg.raw < 0 or msg.seq < 0:
            raise ContractError("count, raw and seq must not be negative")
        if msg.capacity is not None and (not isinstance(msg.capacity, int) or msg.capacity < 0):
            raise ContractError("capacity must be a non-negative integer or null")
        return msg


class CameraState(str, Enum):
    ONLINE = "online"
    CAMERA_LOST = "camera_lost"
    OFFLINE = "offline"


@dataclass(frozen=True)
class StatusMessage:
    """A camera's availability and health, retained; ``offline`` is also the broker's last will."""

    state: CameraState
    ts: str
    fps: float = 0.0
    detail: str = ""
    site: str = ""
    camera: str = ""
    outbox_depth: int = 0
    outbox_dropped: int = 0
    v: int = VERSION

    def to_json(self) -> str:
        data = asdict(self)
        data["state"] = self.state.value
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, payload: bytes | str) -> "StatusMessage":
        data = _decode(payload)
        try:
            state = CameraState(_require(data, "state", str))
        except ValueError:
            raise ContractError(f"unknown state {data.get('state')!r}") from None
        return cls(state=state, ts=_require(data, "ts", str), fps=float(data.get("fps", 0.0)),
                   detail=str(data.get("detail", "")), site=str(data.get("site", "")),
                   camera=str(data.get("camera", "")), outbox_depth=int(data.get("outbox_depth", 0)),
                   outbox_dropped=int(data.get("outbox_dropped", 0)))
