"""Alerts and their lifecycle: open -> acknowledged -> resolved, with hysteresis, escalation and cooldown.

The rules only say, at each tick, how bad each condition is (``Condition``); this
module decides when that becomes an alert, so thresholds with hysteresis, minimum
duration, cooldown and "one open alert per condition" live in one place and every
rule gets them the same way. ``Alert`` is the published contract (retained on
``hallgrid/{site}/alerts/{id}``, served by the API, posted to the webhook).

Texts: ``suggestion`` is the whole sentence in the site's language (``lang``), as in
version 1; ``texts`` (version 2) has it in every catalogue language, with its parts
(``where``, ``detail``, ``action``), so the board follows its own language switch and a
chat robot lays the parts out as lines. A version-1 reader ignores ``texts``; a version-1
alert read here has ``texts`` empty and its consumers fall back to ``suggestion``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from edge.contract import ID, ContractError, iso_ts, parse_ts

LEVELS = ("info", "warning", "critical")
OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
STATES = (OPEN, ACKNOWLEDGED, RESOLVED)
ALERT_ID = re.compile(r"^[A-Za-z0-9_-]{1,160}$")     # a topic level: no '#', '+', '/' (they break publishing)
KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_ALERT_JSON = 16_384
FUTURE_S = 300.0     # an alert stamped later than this after the hub's clock is not believed


def alerts_topic(site: str, alert_id: str, prefix: str = "hallgrid") -> str:
    return f"{prefix}/{site}/alerts/{alert_id}"


@dataclass(frozen=True)
class Condition:
    """One rule's reading of one subject at one tick: raised above ``raise_at``, cleared at or below ``clear_at``."""

    key: str                    # "long_wait:billing": the identity of the condition
    kind: str
    site: str
    owner: str                  # grid cell that responds first
    value: float
    raise_at: float
    clear_at: float
    level: str = "warning"
    suggestion: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    min_duration_s: float = 60.0
    cooldown_s: float = 300.0
    texts: dict[str, dict[str, str]] = field(default_factory=dict)   # lang -> where/detail/action/suggestion
    lang: str = "en"                                                 # the language of ``suggestion``
    # an open alert resolves only once the value has stayed at or below clear_at this long (0: at once)
    clear_after_s: float = 0.0
    # what the value says has already happened, not only been foreseen (a customer past the limit): the
    # cooldown after the hub's own resolve (a forecast that calmed) does not hold it back; after a person's does
    breached: bool = False
    # when the value will reach raise_at, or the rule's verdict otherwise change, if nothing else happens (a
    # wait that grows with the clock), so a replay that ticks coarsely can evaluate then, as a live hub
    # ticking every second would (None: unknown)
    due_at: float | None = None


@dataclass(frozen=True)
class Alert:
    """The alert contract (JSON on MQTT, HTTP and webhook). Times are ISO 8601 UTC; version ``v``.

    ``texts``: language -> {"where", "detail", "action", "suggestion"} (v2); ``suggestion`` is
    ``texts[lang]["suggestion"]``.
    """

    id: str
    site: str
    key: str
    kind: str
    level: str
    state: str
    owner: str
    suggestion: str
    figures: dict[str, Any]
    raised_at: str
    updated_at: str
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None
    resolved_at: str | None = None
    resolved_by: str | None = None
    escalations: int = 0
    texts: dict[str, dict[str, str]] = field(default_factory=dict)
    lang: str = "en"
    hub: str = ""                   # the hub that raised it: a hub adopts only alerts of its configured peers
    v: int = 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_contract(cls, payload: bytes | str, now: float) -> "Alert":
        """A retained alert from the broker, checked field by field; ContractError names what is wrong.

        Adopting puts an alert on the duty manager's board and keeps its condition from raising again, so
        only a well-formed one is believed: bounded ids and texts, a known level and state, a key of its
        kind, ISO times in order and not in the future, an alert id that is a plain topic level.
        """
        if len(payload) > MAX_ALERT_JSON:
            raise ContractError(f"alert of {len(payload)} bytes exceeds {MAX_ALERT_JSON}")
        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ContractError(f"alert is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("v") not in (1, 2):
            raise ContractError("alert is not a version 1 or 2 alert object")

        def text(name: str, limit: int, optional: bool = False) -> str | None:
            value = data.get(name)
            if value is None and optional:
                return None
            if not isinstance(value, str) or len(value) > limit:
                raise ContractError(f"alert field {name!r} must be text of at most {limit} characters")
            return value

        def stamp(name: str, optional: bool = False) -> float | None:
            value = text(name, 40, optional)
            if value is None:
                return None
            t = parse_ts(value)
            if t > now + FUTURE_S:
                raise ContractError(f"alert field {name!r} is in the future ({value})")
            return t

        alert_id, kind, key = text("id", 160), text("kind", 40), text("key", 160)
        if not ALERT_ID.fullmatch(alert_id):
            raise ContractError(f"alert id {alert_id[:40]!r} is not letters, digits, '_' and '-'")
        if not KIND.fullmatch(kind) or not key.startswith(f"{kind}:"):
            raise ContractError(f"alert kind {kind[:40]!r} / key {key[:40]!r} do not match")
        for name in ("site", "hub"):
            if not ID.fullmatch(text(name, 64) or ""):
                raise ContractError(f"alert field {name!r} is not an id")
        if data.get("level") not in LEVELS or data.get("state") not in STATES:
            raise ContractError(f"alert level {str(data.get('level'))[:20]!r} / state "
                                f"{str(data.get('state'))[:20]!r} unknown")
        for name, limit, optional in (("owner", 64, False), ("suggestion", 2000, False),
                                      ("acknowledged_by", 128, True), ("resolved_by", 128, True)):
            text(name, limit, optional)
        raised, updated = stamp("raised_at"), stamp("updated_at")
        for name in ("acknowledged_at", "resolved_at"):
            stamp(name, optional=True)
        if updated < raised:
            raise ContractError("alert updated_at is before raised_at")
        escalations = data.get("escalations", 0)
        if not isinstance(escalations, int) or isinstance(escalations, bool) or not 0 <= escalations <= 100:
            raise ContractError("alert field 'escalations' must be an integer 0..100")
        texts = data.get("texts", {})
        if not isinstance(texts, dict) or not all(
                isinstance(lang, str) and len(lang) <= 16 and isinstance(parts, dict)
                and all(isinstance(k, str) and isinstance(v, str) and len(v) <= 2000 for k, v in parts.items())
                for lang, parts in texts.items()):
            raise ContractError("alert field 'texts' must map languages to texts")
        text("lang", 16, optional=True)
        figures = data.get("figures")
        if not isinstance(figures, dict) or not all(
                isinstance(v, (str, int, list, dict, type(None))) or (isinstance(v, float) and math.isfinite(v))
                for v in figures.values()):
            raise ContractError("alert field 'figures' must be an object of finite values")
        return cls.from_dict(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Alert":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


@dataclass
class _Track:
    """Per-condition memory between ticks: when it first crossed raise_at, when it was last resolved."""

    pending_since: float | None = None
    resolved_at: float | None = None
    resolved_by_hub: bool = False        # the last resolve was the condition clearing, not a person
    calm_since: float | None = None      # an open alert's value at or below clear_at since then
    due_at: float | None = None          # the next instant it may raise without new input (``next_due``)


class AlertManager:
    """Turns conditions into alert state changes. Not thread-safe: the hub calls it under its lock.

    ``evaluate`` returns the alerts that changed (new, escalated, updated figures are not
    changes; resolved are), so the hub publishes each state change exactly once.
    """

    def __init__(self, escalate_after_s: float = 300.0, hub: str = ""):
        self.escalate_after_s = escalate_after_s
        self.hub = hub
        self.active: dict[str, Alert] = {}          # key -> the one open/acknowledged alert
        self.by_id: dict[str, Alert] = {}
        self.tracks: dict[str, _Track] = {}
        self._level_since: dict[str, float] = {}   # alert id -> when its level last changed

    # --- restore -----------------------------------------------------------------------------------
    def restore(self, alerts: list[Alert], last_resolved: dict[str, float], now: float) -> None:
        """Open alerts and last resolve times from storage, so a restarted hub neither forgets nor repeats."""
        for a in alerts:
            self.by_id[a.id] = a
            if a.state != RESOLVED:
                self.active[a.key] = a
                # an open alert's updated_at is its raise or last escalation: the escalation clock goes on
                self._level_since[a.id] = parse_ts(a.updated_at) if a.state == OPEN else now
        for key, t in last_resolved.items():
            self.tracks.setdefault(key, _Track()).resolved_at = t

    def adopt(self, alert: Alert, now: float) -> bool:
        """An alert learnt from a retained topic (another hub raised it); True if it was new here."""
        if alert.state == RESOLVED or alert.id in self.by_id or alert.key in self.active:
            return False
        self.by_id[alert.id] = alert
        self.active[alert.key] = alert
        self._level_since[alert.id] = now
        return True

    # --- the tick ----------------------------------------------------------------------------------
    def evaluate(self, conditions: list[Condition], now: float, partial: bool = False) -> list[Alert]:
        """One site's conditions (a manager holds one site's alerts). ``partial``: only some subjects were evaluated (one zone's message), so a missing key is not
        a cleared condition and escalation waits for the full tick."""
        changed: list[Alert] = []
        seen = set()
        for c in conditions:
            seen.add(c.key)
            track = self.tracks.setdefault(c.key, _Track())
            alert = self.active.get(c.key)
            track.due_at = None
            if alert is not None:
                if c.value > c.clear_at:
                    track.calm_since = None
                elif track.calm_since is None:
                    track.calm_since = now
                if c.value <= c.clear_at and now - track.calm_since >= c.clear_after_s:
                    changed.append(self._resolve(alert, now, "hub", by_hub=True))
                    track.pending_since = track.calm_since = None
                else:
                    self._refresh(alert, c)
                continue
            if c.value < c.raise_at:
                track.pending_since = None
                track.due_at = c.due_at if c.due_at is not None and c.due_at > now else None
                continue
            if track.pending_since is None:
                track.pending_since = now
            if now - track.pending_since < c.min_duration_s:
                track.due_at = track.pending_since + c.min_duration_s
                continue
            if track.resolved_at is not None and now - track.resolved_at < c.cooldown_s \
                    and not (c.breached and track.resolved_by_hub):
                # wake when the cooldown ends, or earlier when the rule says its verdict changes (due_at)
                track.due_at = min(track.resolved_at + c.cooldown_s,
                                   c.due_at if c.due_at is not None and c.due_at > now else math.inf)
                continue
            changed.append(self._raise(c, now))
        if partial:
            return changed
        for key, alert in list(self.active.items()):       # a subject that disappeared has cleared
            if key not in seen:
                changed.append(self._resolve(alert, now, "hub", by_hub=True))
        changed.extend(self._escalate(now))
        return changed

    def next_due(self, now: float) -> float | None:
        """The earliest instant after ``now`` at which a condition may raise without any new input: a
        forecast crossing (``Condition.due_at``), a pending condition's minimum duration or a cooldown
        running out. A replay ticks then (``hub.replay.timeline.play(wake=True)``), so it raises when a
        live hub ticking every second would, without ticking every second."""
        later = [t.due_at for key, t in self.tracks.items()
                 if key not in self.active and t.due_at is not None and t.due_at > now]
        return min(later) if later else None

    def _raise(self, c: Condition, now: float) -> Alert:
        stamp = iso_ts(now)
        # the site in the id: halls sharing one database (and one hub's API) each raise their own long waits;
        # the time always kept whole (the id column holds 160)
        name = _slug(f"{c.site}-{c.kind}-{c.key.split(':', 1)[-1]}")[:140]
        alert = Alert(id=f"{name}-{int(now)}", site=c.site, key=c.key,
                      kind=c.kind, level=c.level, state=OPEN, owner=c.owner, suggestion=c.suggestion,
                      figures=dict(c.figures), raised_at=stamp, updated_at=stamp, texts=c.texts,
                      lang=c.lang, hub=self.hub)
        self.active[c.key] = alert
        self.by_id[alert.id] = alert
        self._level_since[alert.id] = now
        self.tracks[c.key].pending_since = self.tracks[c.key].calm_since = None
        return alert

    def _refresh(self, alert: Alert, c: Condition) -> Alert:
        """Keep the suggestion and figures current without counting it as a state change."""
        new = replace(alert, suggestion=c.suggestion, figures=dict(c.figures), texts=c.texts, lang=c.lang,
                      v=Alert.v)
        self.active[c.key] = self.by_id[alert.id] = new
        return new

    def _resolve(self, alert: Alert, now: float, who: str, by_hub: bool = False) -> Alert:
        stamp = iso_ts(now)
        new = replace(alert, state=RESOLVED, resolved_at=stamp, resolved_by=who, updated_at=stamp)
        self.active.pop(alert.key, None)
        self.by_id[alert.id] = new
        track = self.tracks.setdefault(alert.key, _Track())
        track.resolved_at, track.resolved_by_hub = now, by_hub
        self._level_since.pop(alert.id, None)
        return new

    def _escalate(self, now: float) -> list[Alert]:
        out = []
        for key, alert in list(self.active.items()):
            track = self.tracks.get(key)
            if alert.state != OPEN or (track is not None and track.calm_since is not None):
                continue           # acknowledged, or held open after its condition cleared (clear_after_s)
            since = self._level_since.get(alert.id, now)
            if now - since >= self.escalate_after_s and alert.level != LEVELS[-1]:
                new = replace(alert, level=LEVELS[LEVELS.index(alert.level) + 1], escalations=alert.escalations + 1,
                              updated_at=iso_ts(now))
                self.active[key] = self.by_id[alert.id] = new
                self._level_since[alert.id] = now
                out.append(new)
        return out

    # --- people ------------------------------------------------------------------------------------
    def acknowledge(self, alert_id: str, who: str, now: float) -> Alert:
        alert = self.by_id[alert_id]
        if alert.state != OPEN:
            raise ValueError(f"alert {alert_id} is {alert.state}; only an open alert can be acknowledged")
        stamp = iso_ts(now)
        new = replace(alert, state=ACKNOWLEDGED, acknowledged_at=stamp, acknowledged_by=who, updated_at=stamp)
        self.active[alert.key] = self.by_id[alert_id] = new
        return new

    def resolve(self, alert_id: str, who: str, now: float) -> Alert:
        alert = self.by_id[alert_id]
        if alert.state == RESOLVED:
            raise ValueError(f"alert {alert_id} is already resolved")
        return self._resolve(alert, now, who)
