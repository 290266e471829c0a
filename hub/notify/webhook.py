"""The generic webhook: every alert change POSTed as the alert JSON (ticketing, paging, own bots)."""

from __future__ import annotations

from typing import Any

from hub.alerts import Alert
from hub.notify.channel import Channel


class Webhook(Channel):
    kind = "webhook"

    def request(self, alert: Alert) -> tuple[str, dict[str, Any]]:
        return self.url, alert.to_dict()
