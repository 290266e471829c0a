"""Feishu (飞书) custom bot: an interactive card POSTed to
``https://open.feishu.cn/open-apis/bot/v2/hook/TOKEN``; answer ``{"code": 0, "msg": "success"}``.

The card: a coloured header with the title, a ``lark_md`` text block with the lines, and a
button that opens the board on the alert. Signed bots (签名校验): the body also carries
``timestamp`` (seconds, as a string, within an hour of Feishu's clock) and ``sign`` =
base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")). Rate limit: code 11232, retried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from hub.notify.message import Message
from hub.notify.robot import RobotChannel

TEMPLATES = {"info": "blue", "warning": "orange", "critical": "red", "done": "grey"}


def feishu_sign(secret: str, timestamp_s: int) -> str:
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode("utf-8"), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class FeishuBot(RobotChannel):
    kind = "feishu"
    code_fields = ("code", "StatusCode")
    retry_codes = frozenset({11232})

    def payload(self, m: Message) -> dict[str, Any]:
        elements: list[dict[str, Any]] = [{"tag": "div", "text": {"tag": "lark_md", "content": "\n".join(m.lines)}}]
        if m.link:
            elements.append({"tag": "action", "actions": [
                {"tag": "button", "text": {"tag": "plain_text", "content": m.link_label}, "type": "primary",
                 "url": m.link}]})
        elements.append({"tag": "note", "elements": [{"tag": "plain_text", "content": m.footer}]})
        body: dict[str, Any] = {"msg_type": "interactive", "card": {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": m.title}, "template": TEMPLATES.get(m.tone, "orange")},
            "elements": elements}}
        if self.secret:
            ts = int(time.time())
            body = {"timestamp": str(ts), "sign": feishu_sign(self.secret, ts), **body}
        return body
