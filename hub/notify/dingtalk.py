"""DingTalk (钉钉) custom robot: ``{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}}``
POSTed to ``https://oapi.dingtalk.com/robot/send?access_token=TOKEN``; answer ``{"errcode": 0}``.

Signed robots (加签): the URL also carries ``timestamp`` (milliseconds, within an hour of
DingTalk's clock) and ``sign`` = urlencode(base64(HMAC-SHA256(key=secret,
msg=f"{timestamp}\\n{secret}"))). ``title`` is what the notification preview shows; ``text``
is the message (markdown, a blank line between paragraphs). A robot with keyword security
needs a keyword that every message has: "hallgrid" is in each footer. Rate limit: 20 a
minute (errcode 130101, retried).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

from hub.alerts import Alert
from hub.notify.message import Message
from hub.notify.robot import RobotChannel


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` query value (base64, before URL encoding)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class DingTalkRobot(RobotChannel):
    kind = "dingtalk"
    retry_codes = frozenset({130101})

    def payload(self, m: Message) -> dict[str, Any]:
        return {"msgtype": "markdown", "markdown": {"title": m.title, "text": m.markdown("\n\n")}}

    def request(self, alert: Alert) -> tuple[str, dict[str, Any]]:
        url, body = super().request(alert)
        if self.secret:
            ts = int(time.time() * 1000)
            url += ("&" if "?" in url else "?") + urlencode({"timestamp": ts, "sign": dingtalk_sign(self.secret, ts)})
        return url, body
