"""WeCom (企业微信) group robot: ``{"msgtype": "markdown", "markdown": {"content": ...}}`` POSTed to
``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY``; the answer is ``{"errcode": 0, ...}``.

Its markdown knows headings, bold, links and three font colours (info green, comment grey,
warning orange-red); content is at most 4096 bytes of UTF-8. Rate limit: 20 messages a
minute per robot (errcode 45009, retried).
"""

from __future__ import annotations

from typing import Any

from hub.notify.message import Message
from hub.notify.robot import RobotChannel

MAX_BYTES = 4096
COLOURS = {"info": "info", "warning": "warning", "critical": "warning", "done": "comment"}


def fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` bytes of UTF-8 without splitting a character."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit - 3].decode("utf-8", errors="ignore") + "..."


class WeComRobot(RobotChannel):
    kind = "wecom"
    retry_codes = frozenset({45009})

    def payload(self, m: Message) -> dict[str, Any]:
        colour = COLOURS.get(m.tone, "warning")
        title = f'### <font color="{colour}">{m.title}</font>'
        body = "\n".join([title, *m.lines, *([f"[{m.link_label}]({m.link})"] if m.link else []),
                          f'<font color="comment">{m.footer}</font>'])
        return {"msgtype": "markdown", "markdown": {"content": fit(body, MAX_BYTES)}}
