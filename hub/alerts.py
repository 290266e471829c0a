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
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from edge.contract import iso_ts, parse_ts

LEVELS = ("info", "warning", "critical")
OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"


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
    v: int = 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

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


class AlertManager:
    """Turns conditions into alert state changes. Not thread-safe: the hub calls it under its lock.

    ``evaluate`` returns the alerts that changed (new, escalated, updated figures are not
    changes; resolved are), so the hub publishes each state change exactly once.
    """

    def __init__(self, escalate_after_s: float = 300.0):
        self.escalate_after_s = escalate_after_s
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
            if alert is not None:
                if c.value <= c.clear_at:
                    changed.append(self._resolve(alert, now, "hub"))
                    track.pending_since = None
                else:
                    self._refresh(alert, c)
                continue
            if c.value < c.raise_at:
                track.pending_since = None
                continue
            if track.pending_since is None:
                track.pending_since = now
            if now - track.pending_since < c.min_duration_s:
                continue
            if track.resolved_at is not None and now - track.resolved_at < c.cooldown_s:
                continue
            changed.append(self._raise(c, now))
        if partial:
            return changed
        for key, alert in list(self.active.items()):       # a subject that disappeared has cleared
            if key not in seen:
                changed.append(self._resolve(alert, now, "hub"))
        changed.extend(self._escalate(now))
        return changed

    def _raise(self, c: Condition, now: float) -> Alert:
        stamp = iso_ts(now)
        # the site in the id: halls sharing one database (and one hub's API) each raise their own long waits;
        # the time always kept whole (the id column holds 160)
        name = _slug(f"{c.site}-{c.kind}-{c.key.split(':', 1)[-1]}")[:140]
        alert = Alert(id=f"{name}-{int(now)}", site=c.site, key=c.key,
                      kind=c.kind, level=c.level, state=OPEN, owner=c.owner, suggestion=c.suggestion,
                      figures=dict(c.figures), raised_at=stamp, updated_at=stamp, texts=c.texts,
                      lang=c.lang)
        self.active[c.key] = alert
        self.by_id[alert.id] = alert
        self._level_since[alert.id] = now
        self.tracks[c.key].pending_since = None
        return alert

    def _refresh(self, alert: Alert, c: Condition) -> Alert:
        """Keep the suggestion and figures current without counting it as a state change."""
        new = replace(alert, suggestion=c.suggestion, figures=dict(c.figures), texts=c.texts, lang=c.lang,
                      v=Alert.v)
        self.active[c.key] = self.by_id[alert.id] = new
        return new

    def _resolve(self, alert: Alert, now: float, who: str) -> Alert:
        stamp = iso_ts(now)
        new = replace(alert, state=RESOLVED, resolved_at=stamp, resolved_by=who, updated_at=stamp)
        self.active.pop(alert.key, None)
        self.by_id[alert.id] = new
        self.tracks.setdefault(alert.key, _Track()).resolved_at = now
        self._level_since.pop(alert.id, None)
        return new

    def _escalate(self, now: float) -> list[Alert]:
        out = []
        for key, alert in list(self.active.items()):
            if alert.state != OPEN:
                continue
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
