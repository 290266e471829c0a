"""What the chat-group robots (WeCom, DingTalk, Feishu) have in common: a message in the site's
language, and an answer that is HTTP 200 with an error code inside."""

from __future__ import annotations

from typing import Any

import httpx

from hub.alerts import Alert
from hub.notify.channel import FAIL, OK, RETRY, Channel, http_verdict
from hub.notify.message import Message, compose


class RobotChannel(Channel):
    """A group robot: ``payload(message)`` in the vendor's format; ``code_fields`` name where its answer
    carries the error code (0 = delivered); ``retry_codes`` are its rate limits, worth another try."""

    min_interval_s = 3.0              # about 20 messages a minute: what these robots accept
    code_fields: tuple[str, ...] = ("errcode",)
    retry_codes: frozenset[int] = frozenset()

    def __init__(self, url: str, secret: str | None = None, *, lang: str = "en", board_url: str | None = None,
                 site_name: str | None = None, tz: str = "UTC", **kw: Any):
        self.lang, self.board_url, self.site_name, self.tz = lang, board_url, site_name, tz
        super().__init__(url, secret, **kw)

    def message(self, alert: Alert) -> Message:
        return compose(alert, self.lang, self.board_url, self.site_name, self.tz)

    def payload(self, message: Message) -> dict[str, Any]:
        raise NotImplementedError

    def request(self, alert: Alert) -> tuple[str, dict[str, Any]]:
        return self.url, self.payload(self.message(alert))

    def verdict(self, r: httpx.Response) -> tuple[str, str]:
        v = http_verdict(r)
        if v != OK:
            return v, f"HTTP {r.status_code}"
        try:
            answer = r.json()
        except ValueError:
            return FAIL, "answer is not JSON"
        code = next((answer[f] for f in self.code_fields if isinstance(answer, dict) and f in answer), None)
        if code == 0:
            return OK, "ok"
        reason = f"code {code}: {str(answer.get('errmsg') or answer.get('msg') or '')[:200]}"
        return (RETRY if code in self.retry_codes else FAIL), reason
