"""The site file: one YAML document that describes a hall's cameras and zones.

It is the contract between the installer and every other part, so it is a typed
pydantic model (documented, bounded, with defaults) and loading it either gives a
completely valid site or raises ``SiteError`` listing every problem with its
file, line and field. A half-valid site never starts: a zone silently dropped
means alerts silently missing.

Coordinates are relative to the frame (0..1), so a zone survives a change of
stream resolution.
"""

from __future__ import annotations

import difflib
import inspect
import io
import os
import re
import zoneinfo
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from shapely.geometry import Polygon
from shapely.validation import explain_validity

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
                          description="Letters, digits, '_' and '-': it becomes part of MQTT topics.")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Point = tuple[Unit, Unit]
# Bounds on every list and string: a site file (or an editor save) is checked for geometry pair by pair,
# so 3,000 zones would take minutes of CPU and gigabytes; no hall needs more than these.
MAX_ZONES = 64            # zones per camera, and masks per camera
MAX_POINTS = 100          # vertices of one polygon
MAX_NAME = 128            # characters of a display name
Name = Annotated[str, Field(max_length=MAX_NAME)]


class ZoneType(str, Enum):
    """What happens in a zone; the hub's rules are chosen by it."""

    ENTRANCE = "entrance"
    LOBBY_DESK = "lobby_desk"
    TICKET_KIOSK = "ticket_kiosk"
    WAITING = "waiting"
    COUNTER = "counter"
    SELF_SERVICE = "self_service"
    VIP = "vip"
    OTHER = "other"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mask(Strict):
    """An area of a camera's view where detections are ignored (a poster, a signpost, a mirror)."""

    id: Id
    polygon: list[Point] = Field(min_length=3, max_length=MAX_POINTS,
                                 description="Vertices, x and y relative to the frame (0..1).")


class Zone(Strict):
    """A floor area whose people are counted: a person is in it when their anchor point (the feet) is."""

    id: Id
    name: str = Field(min_length=1, max_length=MAX_NAME)
    type: ZoneType
    grid_cell: str = Field(min_length=1, max_length=64,
                           description="The hall grid cell (the owner's area) this zone belongs to.")
    capacity: int = Field(ge=0, description="People the zone holds comfortably (seats in a waiting area).")
    polygon: list[Point] = Field(min_length=3, max_length=MAX_POINTS,
                                 description="Vertices, x and y relative to the frame (0..1).")


class FloorPoints(Strict):
    """Matching points clicked on the camera image and on the floor plan, pair by pair (calibration/floorplan.py).

    Both lists are relative (0..1) to their picture, like zones, so they survive a change of resolution.
    """

    image: list[Point] = Field(min_length=4, max_length=MAX_POINTS, description="Points on the camera frame (0..1).")
    plan: list[Point] = Field(min_length=4, max_length=MAX_POINTS,
                              description="The same points on the floor-plan picture (0..1).")


class FloorPlan(Strict):
    """A picture of the hall's floor plan on which every camera's zones are projected (optional)."""

    image: str = Field(min_length=1, max_length=1024, description="Picture file, relative to the site file.")
    width_m: float | None = Field(None, gt=0, description="Real width of the picture in metres.")


class TileSettings(Strict):
    """Tiled detection of one camera's view (edge/tiling.py; README: "Packed waiting areas").

    In a packed crowd the detector, seeing the whole frame at once, finds few of the
    people however large the input: shoulder to shoulder they form one texture. Cut
    into overlapping square tiles, each enlarged, it sees a few people at a time, at
    the size it was trained on. Tile detections (and, with ``full_frame``, the whole
    frame's, which keep the large near people a tile would cut) are merged by
    suppressing overlaps, also across tile seams. Coordinates are relative, like zones.
    """

    region: tuple[Unit, Unit, Unit, Unit] | None = Field(None, description="x0, y0, x1, y1 (0..1) of the part "
                                                         "that is tiled: the zones' bounding box, or the far part "
                                                         "of the view where people are small; absent: the frame.")
    tile: float = Field(0.5, gt=0, le=1, description="Side of a square tile relative to the frame's short side.")
    overlap: float = Field(0.25, ge=0, le=0.5, description="Share of a tile that its neighbour overlaps.")
    scale: float = Field(1.5, ge=0.5, le=4, description="Enlargement of each tile before detection (its input "
                         "is scale x the tile's side in pixels).")
    full_frame: bool = Field(True, description="Also detect the whole frame (at the camera's input_size) and merge.")
    merge_ios: float = Field(0.6, gt=0, le=1, description="Two boxes are one person when the smaller lies this "
                             "much inside the larger (a person cut at a tile's edge), or by the NMS overlap.")

    @field_validator("region")
    @classmethod
    def _ordered(cls, v: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        if v is not None and not (v[0] < v[2] and v[1] < v[3]):
            raise ValueError("must be x0, y0, x1, y1 with x0 < x1 and y0 < y1")
        return v


class CameraDetector(Strict):
    """Detector settings for one camera's view, over the site's (README: "Packed waiting areas").

    A camera high above a packed waiting area sees heads 10-20 pixels tall; at the
    default input (320) YOLOX's finest grid (8 px) barely resolves them. A larger
    ``input_size`` enlarges the frame before detection (YOLOX is fully convolutional,
    so the frame is scaled, not cut) and a lower ``confidence`` keeps the half-hidden
    people a crowd is made of; the camera's ``count_correction`` then scales detections to people.
    """

    input_size: int | None = Field(None, ge=160, le=2048, description="Long side of the detector input in "
                                   "pixels (YOLOX models); choose it so that the smallest heads are at least "
                                   "16 px in the input: 1.5 x the frame height for 10-20 px heads.")
    confidence: float | None = Field(None, gt=0, lt=1, description="Score a detection needs (site default "
                                     "otherwise).")
    iou: float | None = Field(None, gt=0, lt=1, description="Overlap above which two boxes are one person (NMS).")
    tiles: TileSettings | None = Field(None, description="Detect in overlapping enlarged tiles (packed crowds); "
                                       "absent: the whole frame at once, as without it.")


class CountCorrection(Strict):
    """People in this camera's crowded view from its detections, fitted from an installer's hand counts.

    Two forms, both written by ``hallgrid fit-counts`` (README: "Packed waiting areas"):

    - ``people_per_detection`` alone (the first form, still read and applied as before):
      ``count = round(people_per_detection x detections)`` per zone.
    - ``score_bands`` with ``people_per_band`` and ``people_per_crowding``: each zone's
      count is ``round(sum_b people_per_band[b] x n_b + people_per_crowding x n x coverage)``,
      where ``n_b`` are the zone's detections scoring in band ``b`` (from its lower edge
      to the next one; the lowest edge may be below the camera's confidence, since a
      half-hidden person in a crowd scores low), ``n`` their sum and ``coverage`` the
      share of the zone's area their boxes cover (people hidden grow with density).
      Optionally ``candidate_score`` with ``people_per_candidate``: plus that weight x the
      boxes the detector proposed in the zone before NMS, scoring above ``candidate_score``
      (how much of the zone the crowd fills, the hidden people included).

    Every weight is at least 0 and there is no constant, so the count never falls when a
    detection is added, an empty zone stays 0, and each zone is corrected from its own
    detections. The fit's cross-validated errors are kept beside it.
    """

    people_per_detection: float | None = Field(None, gt=0, le=20, description="The one-factor form.")
    score_bands: list[Annotated[float, Field(gt=0, lt=1)]] | None = Field(
        None, min_length=1, max_length=8, description="Lower score edges of the detection bands, ascending.")
    people_per_band: list[Annotated[float, Field(ge=0, le=20)]] | None = Field(
        None, min_length=1, max_length=8, description="People per detection in each score band.")
    people_per_crowding: float = Field(0.0, ge=0, le=1000, description="People per unit of crowding "
                                       "(detections x the share of the zone their boxes cover).")
    candidate_score: float | None = Field(None, gt=0, lt=1, description="Lowest score of the boxes proposed "
                                          "before NMS that people_per_candidate counts.")
    people_per_candidate: float = Field(0.0, ge=0, le=20, description="People per box proposed before NMS "
                                        "above candidate_score.")
    images: int = Field(ge=1, description="Hand-counted images it was fitted on.")
    cv_mae: float | None = Field(None, ge=0, description="Cross-validated count error with the correction.")
    raw_cv_mae: float | None = Field(None, ge=0, description="The same images' error without it.")
    fitted: str | None = Field(None, description="When it was fitted (ISO date).")

    @model_validator(mode="after")
    def _one_form(self) -> "CountCorrection":
        banded = self.score_bands is not None or self.people_per_band is not None
        if (self.people_per_detection is None) == (not banded):
            raise ValueError("give either people_per_detection, or score_bands with people_per_band")
        if banded:
            if self.score_bands is None or self.people_per_band is None:
                raise ValueError("score_bands and people_per_band go together")
            if len(self.score_bands) != len(self.people_per_band):
                raise ValueError(f"{len(self.score_bands)} score_bands but {len(self.people_per_band)} "
                                 "people_per_band: one weight per band")
            if any(a >= b for a, b in zip(self.score_bands, self.score_bands[1:])):
                raise ValueError(f"score_bands must ascend: {self.score_bands}")
        elif self.people_per_crowding or self.candidate_score is not None or self.people_per_candidate:
            raise ValueError("people_per_crowding, candidate_score and people_per_candidate belong to the banded "
                             "form (score_bands, people_per_band)")
        if self.people_per_candidate and self.candidate_score is None:
            raise ValueError("people_per_candidate needs candidate_score (the lowest score of the boxes it counts)")
        return self

    @property
    def lowest_score(self) -> float | None:
        """The lowest detection score the correction looks at (None: the camera's counted detections)."""
        return self.score_bands[0] if self.score_bands else None


class Camera(Strict):
    """One camera: where its frames come from, how often to detect, and its zones."""

    id: Id
    name: Name = ""
    source: str = Field(min_length=1, max_length=2048, description="rtsp://, http(s)://, a file path (relative "
                        "to the site file), sample://NAME for the demo footage, or usb://INDEX.")
    detect_fps: float = Field(5.0, gt=0, le=60, description="Detections per second; frames between are skipped.")
    frame_size: tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]] | None = Field(
        None, description="Expected width and height; taken from the stream when absent.")
    loop: bool = Field(False, description="Restart a file source at its end (demo and soak tests).")
    zones: list[Zone] = Field(default_factory=list, max_length=MAX_ZONES)
    masks: list[Mask] = Field(default_factory=list, max_length=MAX_ZONES)
    floor_points: FloorPoints | None = Field(None, description="Camera/floor-plan point pairs (optional).")
    detector: CameraDetector | None = Field(None, description="This camera's detector settings (dense views).")
    count_correction: CountCorrection | None = Field(None, description="Occlusion correction from hand counts "
                                                     "(hallgrid fit-counts).")


class DetectorSettings(Strict):
    """Detector choices for the whole site; the command line may override them."""

    model: str | None = Field(None, max_length=256)
    confidence: float | None = Field(None, gt=0, lt=1)
    threads: int = Field(0, ge=0)


class SmoothingSettings(Strict):
    """How the published count follows the raw count: slow to believe a blip, quick to follow a change."""

    enter_s: float = Field(0.3, ge=0, le=10, description="A higher count must hold this long to be published.")
    exit_s: float = Field(0.6, ge=0, le=30, description="A lower count must hold this long (bridges occlusion).")


class Service(Strict):
    """A ticket service category (billing, new line, VIP...) and the waiting zones its customers sit in.

    The hub needs the mapping to tell how many people wait for which service.
    """

    id: Id
    name: Name = ""
    waiting_zones: list[Id] = Field(default_factory=list, max_length=MAX_ZONES,
                                    description="Zone ids where its ticket holders wait.")
    vip: bool = Field(False, description="Priority customers: a short wait already raises an alert.")


class Counter(Strict):
    """A staffed service point: which services it can serve and the zone where its clerk stands."""

    id: Id
    name: Name = ""
    services: list[Id] = Field(default_factory=list, max_length=64, description="Service ids this counter can serve.")
    zone: Id | None = Field(None, description="Counter zone id; empty while tickets are called = staff missing.")


class RuleSettings(Strict):
    """The hub's alert thresholds for this hall; defaults follow the halls' service standards (5 min wait)."""

    max_wait_s: float = Field(300.0, gt=0, description="The longest wait a customer should have: the long-wait "
                              "alert warns when a customer is likely to wait longer.")
    wait_clear_ratio: float = Field(0.8, gt=0, le=1, description="Clear when below this share of the limit "
                                    "(long_wait: of long_wait_risk).")
    long_wait_risk: float = Field(0.8, gt=0, lt=1, description="The long-wait alert raises once a customer "
                                  "now waiting, or one who takes a ticket now, is at least this likely to wait "
                                  "longer than max_wait_s (from the hall's own past waits).")
    long_wait_hold_s: float = Field(120.0, ge=0, description="A long-wait alert whose risk fell back is held "
                                    "open this long before it resolves (a queue that just missed the limit "
                                    "is still one to watch); it does not escalate meanwhile.")
    service_time_prior_s: float = Field(180.0, gt=0, description="Service time assumed before any is measured.")
    arrival_window_s: float = Field(1800.0, gt=0, description="Window over which the arrival rate is counted.")
    capacity_clear_ratio: float = Field(0.85, gt=0, le=1, description="Over-capacity clears below this share.")
    entrance_dwell_s: float = Field(60.0, ge=0, description="Time a ticket-taking customer spends at the "
                                    "entrance/kiosk; arrivals x dwell is the crowd the ticket flow explains.")
    entrance_excess: int = Field(5, ge=1, description="People beyond the explained crowd that raise an alert.")
    called_grace_s: float = Field(60.0, ge=0, description="A called ticket with nobody at its counter this "
                                  "long = staff missing.")
    vip_max_wait_s: float = Field(120.0, gt=0)
    camera_stale_s: float = Field(120.0, gt=0, description="No occupancy from a camera this long = stale.")
    ticket_stale_s: float = Field(1800.0, gt=0, description="No ticket event this long while counters are "
                                  "open = ticket feed silent.")
    min_duration_s: float = Field(60.0, ge=0, description="A condition must hold this long before it raises.")
    cooldown_s: float = Field(300.0, ge=0, description="After a resolve, the same condition waits this long.")
    escalate_after_s: float = Field(300.0, gt=0, description="Unacknowledged this long: one level up.")
    forecast_lead_s: float = Field(1800.0, ge=0, le=6 * 3600, description="Warn this long before a 15-minute "
                                   "slot whose forecast needs more counters than are open or scheduled.")
    ticket_max_age_s: float = Field(2 * 86400.0, gt=0, description="A ticket event dated more than this "
                                    "before its receipt is refused (a late CSV import of older days too).")
    ticket_max_ahead_s: float = Field(300.0, ge=0, description="A ticket event dated more than this after "
                                      "its receipt is refused (the ticket system's clock may run a little fast).")


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-4]):[0-5][0-9]$", description="Local time HH:MM.")]


class Shift(Strict):
    """A counter staffed on some weekdays from ``start`` to ``end`` (site-local time): the roster."""

    counter: Id
    days: list[Weekday] = Field(min_length=1, max_length=7, description="Weekdays of the shift (mon..sun).")
    start: ClockTime
    end: ClockTime


class PlanningSettings(Strict):
    """What the staffing plan needs beyond the tickets: working days and the roster (hub/planning)."""

    working_days: list[Weekday] | None = Field(None, max_length=7, description="Days the hall is fully open; absent: "
                                               "learned from the ticket history (days with at least half the "
                                               "busiest weekday's arrivals).")
    roster: list[Shift] = Field(default_factory=list, max_length=5000,
                                description="Counters scheduled per weekday and time.")


class Role(str, Enum):
    """What a user may do: watch (viewer); also send ticket events and acknowledge/resolve alerts
    (duty_manager); only send ticket events (ticket_feed: the ticket system's token, nothing to read)."""

    VIEWER = "viewer"
    DUTY_MANAGER = "duty_manager"
    TICKET_FEED = "ticket_feed"


class User(Strict):
    """One person or device allowed on the hub's board and API; give a password hash, a token, or both.

    Only hashes are stored in the file (scrypt): make one with ``hallgrid hash-password``
    (README, "Login and roles").
    """

    name: str = Field(pattern=r"^[^\s:,]{1,64}$", description="Login name (no spaces, ':' or ',').")
    role: Role = Role.VIEWER
    password_hash: str | None = Field(None, max_length=256, description="'scrypt$N$r$p$salt$hash' from "
                                 "`hallgrid hash-password` (README: Login and roles).")
    token: str | None = Field(None, min_length=16, max_length=256,
                              description="Bearer token for scripts and wall displays.")


class AccessSettings(Strict):
    """Who may use the hub's board and API (hub part). Absent: users come from HALLGRID_USERS/HALLGRID_TOKEN."""

    users: list[User] = Field(default_factory=list, max_length=1000)
    session_hours: float = Field(12.0, gt=0, le=24 * 31, description="How long a board login lasts.")


# Names people write that the tz database does not have (it names one city per zone: China is Asia/Shanghai)
TZ_HINTS = {city: "Asia/Shanghai" for city in ("beijing", "peking", "guangzhou", "shenzhen", "hangzhou", "nanjing",
                                               "wuhan", "chengdu", "tianjin", "xian", "xi'an", "suzhou", "china")}


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_problem(name: str) -> str | None:
    """Why ``name`` is not a time zone of the tz database (with the likely one), or None.

    >>> timezone_problem("Asia/Beijing")
    "'Asia/Beijing' is not in the tz database; did you mean 'Asia/Shanghai'?"
    """
    if name in _zones():
        return None
    city = name.rsplit("/", 1)[-1].strip().lower().replace(" ", "_")
    guess = TZ_HINTS.get(city) or next(iter(difflib.get_close_matches(name, _zones(), n=1, cutoff=0.8)), None)
    hint = f"did you mean {guess!r}?" if guess else "write an IANA name such as 'Asia/Shanghai' or 'Europe/Berlin'"
    return f"{name!r} is not in the tz database; {hint}"


class NotifyKind(str, Enum):
    """Where alerts go: a generic JSON webhook, or the group robot of a chat app the hall's staff use."""

    WEBHOOK = "webhook"      # every alert change as the alert JSON (ticketing, paging, own bots)
    WECOM = "wecom"          # 企业微信 group robot, markdown message
    DINGTALK = "dingtalk"    # 钉钉 custom robot, markdown message, optional signing (加签)
    FEISHU = "feishu"        # 飞书 custom bot, interactive card, optional signature (签名校验)


class NotifyTarget(Strict):
    """One delivery of the site's alerts (hub part). The URL of a chat robot holds its token, so both
    ``url`` and ``secret`` are secrets: write ``${ENV_VAR}`` to keep them out of the file; they are
    never logged or shown."""

    kind: NotifyKind
    url: SecretStr = Field(description="Webhook URL, or ${ENV_VAR} naming the environment variable that holds it.")
    secret: SecretStr | None = Field(None, description="Signing secret (DingTalk 加签 'SEC...', Feishu 签名校验), "
                                     "or ${ENV_VAR}; absent: unsigned.")
    min_level: Literal["info", "warning", "critical"] = Field(
        "warning", description="Alerts below this level are not sent (escalation may lift them later).")

    @field_validator("url")
    @classmethod
    def _http_or_variable(cls, v: SecretStr) -> SecretStr:
        text = v.get_secret_value()
        if not (text.startswith(("http://", "https://")) or text.startswith("${")):
            raise ValueError("must be an http(s):// URL or ${ENV_VAR}")       # the value itself is not repeated
        return v


class Site(Strict):
    """A hall: its cameras with their zones, and settings shared by the edge box."""

    id: Id
    name: str = Field(min_length=1, max_length=MAX_NAME)
    timezone: str = Field("UTC", max_length=64, description="IANA time zone of the hall (tz database), e.g. "
                          "Asia/Shanghai: opening hours, the ticket day and reports follow it.")
    language: Literal["zh", "en"] = Field("en", description="Language of the hub's texts for this hall (alert "
                                          "suggestions, chat-robot messages); the board switches on its own.")
    detector: DetectorSettings = DetectorSettings()
    smoothing: SmoothingSettings = SmoothingSettings()
    cameras: list[Camera] = Field(min_length=1, max_length=64)
    services: list[Service] = Field(default_factory=list, max_length=256, description="Ticket services (hub).")
    counters: list[Counter] = Field(default_factory=list, max_length=256, description="Service points (hub).")
    rules: RuleSettings = RuleSettings()
    access: AccessSettings | None = Field(None, description="Board and API users (hub).")
    floor_plan: FloorPlan | None = Field(None, description="Floor-plan picture for the cameras' floor_points.")
    planning: PlanningSettings = PlanningSettings()
    board_url: str | None = Field(None, pattern=r"^https?://", max_length=2048,
                                  description="The board's address as staff reach it "
                                  "(https://hub.example/): chat-robot messages link there to acknowledge (hub).")
    notify: list[NotifyTarget] = Field(default_factory=list, max_length=64,
                                       description="Where alerts are sent (hub).")
    source_file: SkipJsonSchema[Path | None] = Field(None, exclude=True)   # set by load_site

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if problem := timezone_problem(value):
            raise ValueError(problem)
        return value

    def camera(self, camera_id: str) -> Camera:
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise KeyError(f"site {self.id} has no camera {camera_id!r} (cameras: "
                       f"{', '.join(c.id for c in self.cameras)})")

    def resolve_source(self, camera: Camera) -> str:
        """A camera source with a relative file path made relative to the site file's folder."""
        src = camera.source
        if "://" in src or Path(src).is_absolute() or self.source_file is None:
            return src
        return str((self.source_file.parent / src).resolve())


class SiteError(ValueError):
    """Every problem found in a site file, each as 'file:line: field: message'."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid site file:\n  " + "\n  ".join(problems))


def _line_of(doc: Any, loc: tuple) -> int:
    """The 1-based line of the deepest node of ``loc`` that exists in the parsed YAML."""
    node, line = doc, 1
    for key in loc:
        lc = getattr(node, "lc", None)
        try:
            if lc is not None:
                line = (lc.key(key) if isinstance(key, str) else lc.item(key))[0] + 1
            node = node[key]
        except (KeyError, IndexError, TypeError, AttributeError):
            break
    return line


INTERNAL_FIELDS = {"source_file"}   # set by the loader, never written in a file
SECRET_FIELDS = {"url", "secret", "token", "password_hash"}


def _model_in(annotation) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``list[Zone]``, ``FloorPlan | None``), if any."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, get_args(annotation)) if m is not None), None)


def _fields_at(loc: tuple) -> list[str]:
    """The field names a site file may write at ``loc`` (the mapping that holds it)."""
    model: type[BaseModel] | None = Site
    for key in loc:
        if isinstance(key, int):
            continue
        info = model.model_fields.get(key) if model else None
        model = _model_in(info.annotation) if info else None
        if model is None:
            return []
    return [f for f in model.model_fields if f not in INTERNAL_FIELDS]


def _plain(err: dict) -> str:
    """pydantic's message in the installer's words, with the value given and, where it helps, the fix."""
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    secret = any(k in SECRET_FIELDS for k in err["loc"])      # a token or a robot's URL is never echoed
    shown = f" (got {got!r})" if isinstance(got, (str, int, float, bool)) and not secret else ""
    if kind == "extra_forbidden":
        key, allowed = err["loc"][-1], _fields_at(err["loc"][:-1])
        guess = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        return (f"unknown field {key!r}" + (f"; did you mean {guess[0]!r}?" if guess else "")
                + (f" (fields here: {', '.join(allowed)})" if allowed else ""))
    if kind == "missing":
        return "required field is missing"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"]))
    if kind == "enum":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        guess = difflib.get_close_matches(str(got), choices, n=1, cutoff=0.6)
        return (f"{got!r} is not one of {', '.join(choices)}" + (f"; did you mean {guess[0]!r}?" if guess else ""))
    bounds = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
              "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}{shown}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s), has {ctx.get('actual_length')}"
    if kind == "too_long":
        return f"takes at most {ctx.get('max_length')} item(s), has {ctx.get('actual_length')}"
    if kind == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters (has {len(str(got))})"
    if kind == "string_pattern_mismatch":
        return (f"{got!r} may use only letters, digits, '_' and '-' (up to 64, starting with a letter or digit): "
                "it becomes part of MQTT topics")
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return f"must be a whole number{shown}"
    if kind in ("float_parsing", "float_type"):
        return f"must be a number{shown}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping of fields (key: value lines){shown}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list (lines starting with '- ', or [a, b]){shown}"
    return err["msg"].replace("Input should be", "must be").replace("String should", "must") + shown


def _problems(exc: ValidationError) -> list[tuple[tuple, str]]:
    """Each error located and in plain words; a 'missing' field that an unknown one nearby was probably
    meant to be ("capacty" for "capacity") is left to the did-you-mean line."""
    errors = exc.errors()
    meant = {(e["loc"][:-1], g) for e in errors if e["type"] == "extra_forbidden"
             for g in difflib.get_close_matches(str(e["loc"][-1]), _fields_at(e["loc"][:-1]), n=1, cutoff=0.6)}
    return [(e["loc"], _plain(e)) for e in errors
            if not (e["type"] == "missing" and (e["loc"][:-1], e["loc"][-1]) in meant)]


def _field(loc: tuple) -> str:
    out = ""
    for key in loc:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or "(top level)"


MIN_POLYGON_AREA = 1e-6  # in relative units (a share of the frame)


def polygon_problem(points) -> str | None:
    """Why a zone or mask polygon (relative points) is not a usable area, or None when it is.

    >>> polygon_problem([(0, 0), (1, 1), (1, 0), (0, 1)])[:27]
    'polygon is not a simple are'
    >>> polygon_problem([(0, 0), (1, 0), (1, 1)]) is None
    True
    """
    if len(points) < 3:
        return "needs at least 3 points"
    poly = Polygon(points)
    if not poly.is_valid:
        return (f"polygon is not a simple area ({explain_validity(poly)}); "
                "order the points around its edge so that no two edges cross")
    if poly.area < MIN_POLYGON_AREA:
        return "polygon has no area"
    return None


def _geometry_problems(site: Site) -> list[tuple[tuple, str]]:
    """Checks that need the whole site: unique ids and polygons that make sense as areas."""
    problems: list[tuple[tuple, str]] = []

    def unique(items: list, where: tuple, what: str) -> None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.id in seen:
                problems.append((where + (i, "id"), f"duplicate {what} id {item.id!r}"))
            seen.add(item.id)

    unique(site.cameras, ("cameras",), "camera")
    unique(site.services, ("services",), "service")
    unique(site.counters, ("counters",), "counter")
    zone_ids = {z.id for cam in site.cameras for z in cam.zones}
    service_ids = {s.id for s in site.services}
    for i, svc in enumerate(site.services):
        for j, zid in enumerate(svc.waiting_zones):
            if zid not in zone_ids:
                problems.append((("services", i, "waiting_zones", j), f"no zone {zid!r} in any camera"))
    for i, ctr in enumerate(site.counters):
        for j, sid in enumerate(ctr.services):
            if sid not in service_ids:
                problems.append((("counters", i, "services", j), f"no service {sid!r}"))
        if ctr.zone is not None and ctr.zone not in zone_ids:
            problems.append((("counters", i, "zone"), f"no zone {ctr.zone!r} in any camera"))
    counter_ids = {c.id for c in site.counters}
    for i, shift in enumerate(site.planning.roster):
        if shift.counter not in counter_ids:
            problems.append((("planning", "roster", i, "counter"), f"no counter {shift.counter!r}"))
        if shift.end <= shift.start:
            problems.append((("planning", "roster", i, "end"), f"shift ends ({shift.end}) before it starts "
                             f"({shift.start})"))
    for c, cam in enumerate(site.cameras):
        unique(cam.zones, ("cameras", c, "zones"), "zone")
        unique(cam.masks, ("cameras", c, "masks"), "mask")
        fp = cam.floor_points
        if fp is not None and len(fp.image) != len(fp.plan):
            problems.append((("cameras", c, "floor_points"), f"{len(fp.image)} image points but {len(fp.plan)} "
                             "plan points: click each point on both pictures, in the same order"))
        for kind, shapes in (("zones", cam.zones), ("masks", cam.masks)):
            for i, shape in enumerate(shapes):
                if problem := polygon_problem(shape.polygon):
                    problems.append((("cameras", c, kind, i, "polygon"), problem))
    return problems


_ENV_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _substitute_env(node: Any, loc: tuple, env: Any, problems: list) -> Any:
    """``${NAME}`` in every text value replaced by the environment variable (``$${`` for a literal ``${``).

    Why: a camera's RTSP password need not live in the site file (which the editor saves, backs up and
    shows): ``source: rtsp://admin:${CAM1_PASSWORD}@10.0.0.7/ch1``. Values are substituted after YAML
    parsing, so a password with ``#`` or ``: `` cannot change the document's structure.
    """
    if isinstance(node, dict):
        for key in list(node):
            node[key] = _substitute_env(node[key], (*loc, key), env, problems)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            node[i] = _substitute_env(item, (*loc, i), env, problems)
    elif isinstance(node, str) and "${" in node:
        def value(m: re.Match) -> str:
            if m.group(1) is None:
                return "${"
            if m.group(1) not in env:
                problems.append((loc, f"${{{m.group(1)}}} is not set in the environment (export it before "
                                      "starting, or write $${ for a literal ${)"))
                return m.group(0)
            return env[m.group(1)]
        return _ENV_REF.sub(value, node)
    return node


def parse_site(text: str, filename: str = "<site>", env: Any = None) -> Site:
    """Validate site YAML text (``${ENV_VAR}`` substituted from ``env``, default the process environment);
    raise SiteError with every problem located."""
    try:
        doc = YAML(typ="rt").load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise SiteError([f"{filename}:{line}: YAML syntax: {exc.problem or exc}"]) from None
    if not isinstance(doc, dict):
        raise SiteError([f"{filename}:1: (top level): expected a mapping with id, name and cameras"])
    missing: list = []
    _substitute_env(doc, (), os.environ if env is None else env, missing)
    if missing:
        raise SiteError([f"{filename}:{_line_of(doc, loc)}: {_field(loc)}: {msg}" for loc, msg in missing])
    try:
        site = Site.model_validate(doc)
    except ValidationError as exc:
        raise SiteError([f"{filename}:{_line_of(doc, loc)}: {_field(loc)}: {msg}"
                         for loc, msg in _problems(exc)]) from None
    problems = _geometry_problems(site)
    if problems:
        raise SiteError([f"{filename}:{_line_of(doc, loc)}: {_field(loc)}: {msg}" for loc, msg in problems])
    return site


def load_site(path: str | Path) -> Site:
    """Load and validate a site file; raise SiteError (never a half-valid site)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteError([f"{path}: cannot read site file: {exc.strerror}"]) from None
    return parse_site(text, str(path)).model_copy(update={"source_file": path.resolve()})
