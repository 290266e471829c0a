"""What a chat robot tells the duty manager about one alert change, in the site's language.

One ``Message`` per change (raised, escalated, acknowledged, resolved): a title with the
level and kind, then where (zone and grid cell), what is wrong (with the wait in words and
its range for a queue), what to do, and a link that opens the board on this alert to
acknowledge it. Every word comes from the message catalogue; each channel only lays the
parts out in its vendor's format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from edge.contract import parse_ts

from hub.alerts import ACKNOWLEDGED, OPEN, RESOLVED, Alert
from hub.messages import label, render


@dataclass(frozen=True)
class Message:
    title: str
    lines: list[str]          # markdown lines: **label:** text
    link: str | None          # the board, opened on this alert
    link_label: str
    tone: str                 # info | warning | critical | done: the channel picks its colour
    footer: str               # "hallgrid · site · 08:02": also the keyword a robot's keyword security can require

    def markdown(self, sep: str = "\n") -> str:
        """Title, lines, link and footer as one markdown text (``sep`` between lines)."""
        parts = [f"### {self.title}", *self.lines]
        if self.link:
            parts.append(f"[{self.link_label}]({self.link})")
        parts.append(self.footer)
        return sep.join(parts)


def board_link(board_url: str | None, alert: Alert) -> str | None:
    if not board_url:
        return None
    return f"{board_url.rstrip('/')}/board?{urlencode({'site': alert.site, 'alert': alert.id})}"


def compose(alert: Alert, lang: str, board_url: str | None = None, site_name: str | None = None,
            tz: str = "UTC") -> Message:
    """The message for one alert change in ``lang`` (a version-1 alert without texts uses its suggestion)."""
    texts = alert.texts.get(lang) or {}
    kind, level = label("kind", alert.kind, lang), label("level", alert.level, lang)
    if alert.state == RESOLVED:
        title, tone = render("notify.title.resolved", lang, kind=kind), "done"
    elif alert.state == ACKNOWLEDGED:
        title, tone = render("notify.title.acknowledged", lang, kind=kind), alert.level
    elif alert.escalations:
        title, tone = render("notify.title.escalated", lang, kind=kind, level=level), alert.level
    else:
        title, tone = render("notify.title.open", lang, kind=kind, level=level), alert.level
    lines = []
    if {"where", "detail", "action"} <= texts.keys():
        lines.append(render("notify.where", lang, where=texts["where"], cell=alert.owner))
        if alert.state != RESOLVED:          # once resolved, the last reading is no longer "now"
            lines.append(render("notify.detail", lang, detail=texts["detail"]))
            lines.append(render("notify.action", lang, action=texts["action"]))
    else:
        lines.append(alert.suggestion)
    if alert.state == ACKNOWLEDGED:
        lines.append(render("notify.acknowledged_by", lang, who=alert.acknowledged_by or "-"))
    elif alert.state == RESOLVED:
        lines.append(render("notify.cleared", lang) if alert.resolved_by == "hub"
                     else render("notify.resolved_by", lang, who=alert.resolved_by or "-"))
    at = datetime.fromtimestamp(parse_ts(alert.updated_at), timezone.utc).astimezone(ZoneInfo(tz))
    footer = render("notify.footer", lang, site=site_name or alert.site, time=at.strftime("%H:%M"))
    link_label = render("notify.link.open" if alert.state == OPEN else "notify.link.board", lang)
    return Message(title, lines, board_link(board_url, alert), link_label, tone, footer)
