"""Optional webhook: every alert change POSTed as JSON to one URL (chat bots, ticketing, paging).

Sent from a background thread with retries and backoff, so a slow or down receiver
never delays the hub; when the queue is full the oldest change is dropped and counted.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import httpx

log = logging.getLogger("hallgrid.hub.webhook")


class Webhook:
    def __init__(self, url: str, retries: int = 5, backoff_s: float = 1.0, timeout_s: float = 5.0,
                 max_queue: int = 1000, transport: httpx.BaseTransport | None = None):
        self.url, self.retries, self.backoff_s = url, retries, backoff_s
        self.client = httpx.Client(timeout=timeout_s, transport=transport)
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=max_queue)
        self.sent = self.failed = self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="hub-webhook")
        self._thread.start()

    def send(self, payload: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(payload)
        except queue.Full:
            self.dropped += 1

    def _post(self, payload: dict[str, Any]) -> bool:
        for attempt in range(self.retries + 1):
            try:
                r = self.client.post(self.url, json=payload)
                if r.status_code < 500 and r.status_code != 429:
                    return r.is_success
            except httpx.HTTPError as exc:
                log.warning("webhook %s failed (attempt %d): %s", self.url, attempt + 1, exc)
            if self._stop.wait(self.backoff_s * 2 ** attempt):
                break
        return False

    def _run(self) -> None:
        while True:
            payload = self.queue.get()
            if payload is None:
                return
            if self._post(payload):
                self.sent += 1
            else:
                self.failed += 1

    def close(self, timeout: float = 5.0) -> None:
        """Stop within ``timeout``: ends a retry backoff at once; a full queue loses one change (counted)
        to make room for the stop sentinel rather than blocking."""
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
