"""One delivery channel: alert changes POSTed from a background thread, with retries and backoff.

Every channel (generic webhook, WeCom, DingTalk, Feishu) shares this loop and differs only
in what it POSTs (``request``) and how it reads the receiver's answer (``verdict``). The hub
only puts the alert on a bounded queue, under its lock and in microseconds, so a slow or
down receiver never delays ingest or the rules; when the queue is full the oldest change is
dropped and counted.

The URL of a chat robot holds its access token and the secret signs its requests, so
neither is ever logged: log lines name the channel by kind and host only, and exception
texts are scrubbed of both.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from hub.alerts import LEVELS, Alert

log = logging.getLogger("hallgrid.hub.notify")
# httpx logs every request with its full URL at INFO (and httpcore traces at DEBUG): a robot's URL holds
# its token, so those loggers only speak from WARNING up, whatever level the hub logs at
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

OK, RETRY, FAIL = "ok", "retry", "fail"


def http_verdict(r: httpx.Response) -> str:
    """The plain HTTP reading: 2xx delivered, 429 and 5xx worth another try, anything else refused."""
    if r.is_success:
        return OK
    return RETRY if r.status_code == 429 or r.status_code >= 500 else FAIL


class Channel:
    """Base of every channel. Subclasses set ``kind`` and implement ``request`` (and ``verdict`` when
    the receiver answers 200 with an error code, as the chat robots do)."""

    kind = "channel"
    min_interval_s = 0.0     # gap between two posts (the chat robots allow about 20 messages a minute)

    def __init__(self, url: str, secret: str | None = None, min_level: str = "info", retries: int = 5,
                 backoff_s: float = 1.0, timeout_s: float = 5.0, max_queue: int = 1000,
                 transport: httpx.BaseTransport | None = None):
        self.url, self.secret, self.min_level = url, secret, min_level
        self.retries, self.backoff_s = retries, backoff_s
        self.name = f"{self.kind} {urlsplit(url).hostname or '?'}"      # what logs may say about it
        self.client = httpx.Client(timeout=timeout_s, transport=transport)
        self.queue: queue.Queue[Alert | None] = queue.Queue(maxsize=max_queue)
        self.sent = self.failed = self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"hub-notify-{self.kind}")
        self._thread.start()

    # --- what a channel says -----------------------------------------------------------------------
    def wants(self, alert: Alert) -> bool:
        return LEVELS.index(alert.level) >= LEVELS.index(self.min_level)

    def request(self, alert: Alert) -> tuple[str, dict[str, Any]]:
        """The URL and JSON body for one attempt (built per attempt: signatures carry a timestamp)."""
        raise NotImplementedError

    def verdict(self, r: httpx.Response) -> tuple[str, str]:
        """(OK | RETRY | FAIL, reason) for the receiver's answer."""
        v = http_verdict(r)
        return v, f"HTTP {r.status_code}"

    # --- the loop ----------------------------------------------------------------------------------
    def send(self, alert: Alert) -> None:
        """Queue one alert change (never blocks); ignored when below the channel's level."""
        if not self.wants(alert):
            return
        try:
            self.queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1

    def _scrub(self, text: str) -> str:
        for s in (self.url, urlsplit(self.url).path, urlsplit(self.url).query, self.secret):
            if s and len(s) > 1:
                text = text.replace(s, "***")
        return text

    def _post(self, alert: Alert) -> bool:
        for attempt in range(self.retries + 1):
            try:
                url, body = self.request(alert)
                v, reason = self.verdict(self.client.post(url, json=body))
            except httpx.HTTPError as exc:
                v, reason = RETRY, f"{type(exc).__name__}: {exc}"
            except Exception as exc:      # a bug in building the message must not end the channel's thread
                v, reason = FAIL, f"{type(exc).__name__}: {exc}"
            if v == OK:
                return True
            log.warning("%s: alert %s not delivered (attempt %d): %s", self.name, alert.id, attempt + 1,
                        self._scrub(reason))
            if v == FAIL or self._stop.wait(self.backoff_s * 2 ** attempt):
                break
        return False

    def _run(self) -> None:
        while True:
            alert = self.queue.get()
            if alert is None:
                return
            started = time.monotonic()
            if self._post(alert):
                self.sent += 1
            else:
                self.failed += 1
            self._stop.wait(max(0.0, self.min_interval_s - (time.monotonic() - started)))   # no gap once stopping

    def stats(self) -> dict[str, Any]:
        return {"channel": self.name, "sent": self.sent, "failed": self.failed, "dropped": self.dropped,
                "queued": self.queue.qsize()}

    def close(self, timeout: float = 5.0) -> None:
        """Stop within ``timeout``: what is queued gets one attempt each, a retry backoff ends at once; a
        full queue loses one change (counted) to make room for the stop sentinel rather than blocking."""
        self._stop.set()
        while True:
            try:
                self.queue.put_nowait(None)
                break
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass
        self._thread.join(timeout)
        self.client.close()
