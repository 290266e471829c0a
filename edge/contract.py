"""The occupancy contract: what an edge box publishes over MQTT (version 2; version 1 is still read).

It lives with its producer; the hub imports it. Topics (prefix default ``hallgrid``):

- ``{prefix}/{site}/{camera}/{zone}/occupancy``, retained, QoS 1: ``OccupancyMessage``
- ``{prefix}/{site}/{camera}/status``, retained, QoS 1: ``StatusMessage``; the
  broker's last will sets ``offline`` when the box dies.

Timestamps are ISO 8601 UTC with milliseconds. ``seq`` is per camera, strictly
increasing and survives restarts, so a consumer can order, de-duplicate and see
gaps. ``epoch`` (version 2, as Sparkplug's bdSeq) names the sequence: the
millisecond time the box's outbox started numbering. A replaced box (its outbox
lost) starts again at seq 1 under a newer epoch, so a consumer orders by
``(epoch, seq)`` and takes the new box's counts instead of ignoring them for
ever. Version 1 messages have no epoch (read as 0).

Every field is bounded (ids as in the site file, ``seq`` and ``epoch`` below
2**53, so they survive JSON and a 64-bit database column, counts below
``MAX_COUNT``) and a consumer refuses a message beyond the bounds with a
``ContractError`` naming the field, so one bad message can neither freeze a
zone nor break a storage write.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

try:        # a hub extra: the edge box reads and writes the contract with the standard library alone
    from orjson import loads as _fast_loads
except ImportError:      # pragma: no cover - exercised on an edge box
    _fast_loads = json.loads

VERSION = 2
READABLE_VERSIONS = (1, 2)
DEFAULT_PREFIX = "hallgrid"
MAX_SEQ = 2**53             # exclusive bound of seq and epoch: exact in JSON (doubles) and in BIGINT
MAX_COUNT = 10_000          # people in one zone: beyond any hall
MAX_TS_LEN = 40
MAX_DETAIL = 300            # characters of a status detail (the edge shortens, a consumer refuses longer)
MAX_PAYLOAD = 65_536        # bytes of one MQTT message: the hub refuses larger before parsing, the broker too
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")   # the site file's id rule: ids are MQTT topic levels


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
    if data.get("v") not in READABLE_VERSIONS or isinstance(data.get("v"), bool):
        raise ContractError(f"unsupported version v={data.get('v')!r} (expected {VERSION})")
    return data


def _id(data: dict, name: str, required: bool = True) -> str:
    if not required and data.get(name, "") == "":
        return ""
    value = _require(data, name, str)
    if not ID.fullmatch(value):
        raise ContractError(f"field {name!r} is not an id (letters, digits, '_', '-', at most 64): {value[:70]!r}")
    return value


def _int(data: dict, name: str, upper: int, default: int | None = None) -> int:
    if name not in data and default is not None:
        return default
    value = _require(data, name, int)
    if not 0 <= value < upper:
        raise ContractError(f"field {name!r} = {value} is outside 0..{upper - 1}")
    return value


def _ts(data: dict) -> str:
    value = _require(data, "ts", str)
    if len(value) > MAX_TS_LEN:
        raise ContractError(f"field 'ts' is longer than {MAX_TS_LEN} characters")
    parse_ts(value)
    return value


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
    epoch: int = 0
    v: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, payload: bytes | str) -> "OccupancyMessage":
        return decode_occupancy(payload)[0]

    @classmethod
    def _checked(cls, payload: bytes | str) -> "OccupancyMessage":
        """Field by field, each refusal naming its field: the contract's reference reading."""
        data = _decode(payload)
        capacity = data.get("capacity")
        if capacity is not None and (not isinstance(capacity, int) or isinstance(capacity, bool)
                                     or not 0 <= capacity < 10 * MAX_COUNT):
            raise ContractError("capacity must be a non-negative integer or null")
        return cls(site=_id(data, "site"), camera=_id(data, "camera"), zone=_id(data, "zone"), ts=_ts(data),
                   count=_int(data, "count", MAX_COUNT), raw=_int(data, "raw", MAX_COUNT),
                   seq=_int(data, "seq", MAX_SEQ), capacity=capacity,
                   epoch=_int(data, "epoch", MAX_SEQ, default=0) if data["v"] >= 2 else 0, v=data["v"])


_valid_ids: dict[str, None] = {}     # ids that passed ``ID``: a hall has a few hundred, so a bounded cache
_VALID_IDS_MAX = 4096


def _known_id(value: Any) -> bool:
    if type(value) is not str:
        return False
    if value in _valid_ids:
        return True
    if not ID.fullmatch(value):
        return False
    if len(_valid_ids) < _VALID_IDS_MAX:
        _valid_ids[value] = None
    return True


def _bounded(value: Any, upper: int) -> bool:
    return type(value) is int and 0 <= value < upper


def decode_occupancy(payload: bytes | str) -> tuple[OccupancyMessage, float]:
    """An occupancy message and its frame time in epoch seconds, read as ``OccupancyMessage._checked`` reads it.

    Why two readings: a hub takes thousands of messages a second, and the reference reading (a call per field,
    the standard ``json``) costs more than the rest of ingest. This one checks the same bounds inline on
    ``orjson``'s result; anything it does not accept at once (any refusal, an unusual encoding) goes to the
    reference reading, which accepts it or refuses it with its own message, so what is accepted and every
    error text stay the contract's.
    """
    try:
        data = _fast_loads(payload)
    except (ValueError, TypeError):
        data = None
    if type(data) is dict:
        v, ts, capacity = data.get("v"), data.get("ts"), data.get("capacity")
        epoch = data.get("epoch", 0) if v == 2 else 0
        if (type(v) is int and v in READABLE_VERSIONS and _known_id(data.get("site"))
                and _known_id(data.get("camera")) and _known_id(data.get("zone"))
                and type(ts) is str and len(ts) <= MAX_TS_LEN and _bounded(data.get("count"), MAX_COUNT)
                and _bounded(data.get("raw"), MAX_COUNT) and _bounded(data.get("seq"), MAX_SEQ)
                and (capacity is None or _bounded(capacity, 10 * MAX_COUNT)) and _bounded(epoch, MAX_SEQ)):
            try:
                frame_ts = parse_ts(ts)
            except ContractError:
                pass
            else:
                return OccupancyMessage(data["site"], data["camera"], data["zone"], ts, data["count"], data["raw"],
                                        data["seq"], capacity, epoch, v), frame_ts
    msg = OccupancyMessage._checked(payload)
    return msg, parse_ts(msg.ts)


class CameraState(str, Enum):
    ONLINE = "online"
    DEGRADED = "degraded"      # frames come but counts cannot be kept (the outbox cannot be written)
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
    outbox_failed: int = 0       # counts that could not be written to the outbox (disk full): lost, not silent
    epoch: int = 0
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
            raise ContractError(f"unknown state {str(data.get('state'))[:40]!r}") from None
        fps = data.get("fps", 0.0)
        if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not math.isfinite(fps) or not 0 <= fps < 1000:
            raise ContractError("field 'fps' must be a number in 0..1000")
        detail = data.get("detail", "")
        if not isinstance(detail, str) or len(detail) > MAX_DETAIL:
            raise ContractError(f"field 'detail' must be text of at most {MAX_DETAIL} characters")
        return cls(state=state, ts=_ts(data), fps=float(fps), detail=detail, site=_id(data, "site", False),
                   camera=_id(data, "camera", False), outbox_depth=_int(data, "outbox_depth", MAX_SEQ, 0),
                   outbox_dropped=_int(data, "outbox_dropped", MAX_SEQ, 0),
                   outbox_failed=_int(data, "outbox_failed", MAX_SEQ, 0),
                   epoch=_int(data, "epoch", MAX_SEQ, 0), v=data["v"])
