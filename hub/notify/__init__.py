"""Alert delivery beyond the board: a generic JSON webhook and the chat-group robots halls use.

``Notify`` holds every channel of the hub: those of each site file's ``notify:`` list
(WeCom, DingTalk, Feishu or a webhook, in the site's language, linking to its board) and
the hub-wide ``--webhook``. The hub hands it each alert change under its lock; each
channel only queues it and posts from its own thread (``hub.notify.channel``).

Secrets: a site file may write ``url: ${WECOM_URL}`` / ``secret: ${DINGTALK_SECRET}``; the
hub reads the variable at start and refuses to start when it is unset. URLs and secrets
are pydantic ``SecretStr`` in the site model and never appear in a log line or a page.
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

from calibration.site import NotifyKind, Site

from hub.alerts import Alert
from hub.notify.channel import Channel
from hub.notify.dingtalk import DingTalkRobot
from hub.notify.feishu import FeishuBot
from hub.notify.webhook import Webhook
from hub.notify.wecom import WeComRobot

ROBOTS = {NotifyKind.WECOM: WeComRobot, NotifyKind.DINGTALK: DingTalkRobot, NotifyKind.FEISHU: FeishuBot}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class NotifyError(ValueError):
    """A site file's notify entry that cannot be used (an unset variable, a URL that is not http)."""


def expand(value: str, env: Mapping[str, str], where: str) -> str:
    """``${NAME}`` replaced by the environment's value; the error names the variable, never a value."""
    missing = [m for m in _VAR.findall(value) if m not in env]
    if missing:
        raise NotifyError(f"{where} names ${{{missing[0]}}}, which is not set in the hub's environment")
    return _VAR.sub(lambda m: env[m.group(1)], value)


def site_channels(site: Site, env: Mapping[str, str] | None = None, **kw: Any) -> list[Channel]:
    """The channels of one site's ``notify:`` list (``kw``: retries, backoff_s, transport... for tests)."""
    env = os.environ if env is None else env
    out: list[Channel] = []
    for i, target in enumerate(site.notify):
        where = f"site {site.id}: notify[{i}]"
        url = expand(target.url.get_secret_value(), env, f"{where}.url")
        if not re.match(r"^https?://[^/\s]+", url):
            raise NotifyError(f"{where}.url is not an http(s) URL")
        secret = expand(target.secret.get_secret_value(), env, f"{where}.secret") if target.secret else None
        if secret and target.kind not in (NotifyKind.DINGTALK, NotifyKind.FEISHU):
            raise NotifyError(f"{where}.secret: a {target.kind.value} channel is not signed (only dingtalk and feishu)")
        if target.kind == NotifyKind.WEBHOOK:
            out.append(Webhook(url, secret, min_level=target.min_level, **kw))
        else:
            out.append(ROBOTS[target.kind](url, secret, min_level=target.min_level, lang=site.language,
                                           board_url=site.board_url, site_name=site.name, tz=site.timezone, **kw))
    return out


class Notify:
    """Every channel of a hub: per site, and hub-wide ones that get every site's alerts."""

    def __init__(self, per_site: dict[str, list[Channel]] | None = None, everywhere: list[Channel] | None = None):
        self.per_site = per_site or {}
        self.everywhere = everywhere or []

    @classmethod
    def for_sites(cls, sites: list[Site], webhook_url: str | None = None,
                  env: Mapping[str, str] | None = None) -> "Notify":
        """From the site files' ``notify:`` lists and the hub's ``--webhook``; NotifyError names a bad entry."""
        per_site: dict[str, list[Channel]] = {}
        try:
            for s in sites:
                per_site[s.id] = site_channels(s, env)
        except NotifyError:
            cls(per_site).close(timeout=0.5)
            raise
        return cls(per_site, [Webhook(webhook_url)] if webhook_url else [])

    def channels(self) -> list[Channel]:
        return [c for chans in self.per_site.values() for c in chans] + self.everywhere

    def send(self, alert: Alert) -> None:
        """Queue one alert change on its site's channels and the hub-wide ones (never blocks)."""
        for c in self.per_site.get(alert.site, []) + self.everywhere:
            c.send(alert)

    def stats(self) -> list[dict[str, Any]]:
        return [c.stats() for c in self.channels()]

    def close(self, timeout: float = 5.0) -> None:
        for c in self.channels():
            c.close(timeout)
