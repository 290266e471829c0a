"""Outputs beyond the API: the webhook (retried) and carrying on alerts from retained topics.
(The chat robots, against a real local HTTP server: tests/test_notify.py.)"""

from __future__ import annotations

import json
import threading
import time

import httpx

from edge.clock import ManualClock
from hub.service import Hub
from hub.storage import Storage
from hub.tickets import parse
from hub.alerts import Alert
from hub.notify import Notify
from hub.notify.webhook import Webhook

from test_hub_scenario import T0, wait_until
from test_hub_site import hall_site


def alert(n: int = 1, **kw) -> Alert:
    """A sample alert change (``kw`` overrides any field)."""
    base = dict(id=f"a{n}", site="hall-1", key=f"k:{n}", kind="long_wait", level="warning", state="open", owner="B",
                suggestion="s", figures={}, raised_at="2026-11-23T08:00:00.000Z", updated_at="2026-11-23T08:00:00.000Z")
    return Alert(**{**base, **kw})


def test_webhook_retries_until_delivered():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503 if len(calls) < 3 else 200)

    hook = Webhook("http://receiver/alerts", retries=5, backoff_s=0.01, transport=httpx.MockTransport(handler))
    hook.send(alert(1))
    wait_until(lambda: hook.sent == 1, what="delivery")
    hook.close()
    assert len(calls) == 3 and json.loads(calls[-1].read()) == alert(1).to_dict()


def test_webhook_gives_up_after_retries():
    hook = Webhook("http://receiver/alerts", retries=2, backoff_s=0.01,
                   transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    hook.send(alert(1))
    wait_until(lambda: hook.failed == 1, what="giving up")
    hook.close()


def test_hub_posts_alert_changes_and_a_new_hub_adopts_retained_alerts(db_url, tmp_path):
    posted = []
    hook = Webhook("http://receiver/alerts", transport=httpx.MockTransport(
        lambda r: posted.append(r.read()) or httpx.Response(204)))
    clock = ManualClock(T0)
    a = Hub([hall_site(min_duration_s=0)], Storage(db_url), clock=clock,
            notify=Notify(everywhere=[hook]),
            evaluate_on_message=False)
    a.ingest_ticket("hall-1", parse({"event": "issued", "ticket": "A1", "service": "billing"}, T0))
    raised = [x for x in a.tick() if x.key == "long_wait:billing"]
    assert len(raised) == 1
    wait_until(lambda: len(posted) >= 1, what="webhook post")
    hook.close()
    # another machine takes over with an empty database: the retained alert is adopted, not raised again
    b = Hub([hall_site(min_duration_s=0)], Storage(f"sqlite:///{tmp_path / 'b.db'}"), clock=clock,
            evaluate_on_message=False)
    b.handle(f"hallgrid/hall-1/alerts/{raised[0].id}", raised[0].to_json().encode())
    b.ingest_ticket("hall-1", parse({"event": "issued", "ticket": "A1", "service": "billing"}, T0))
    assert [x for x in b.tick() if x.key == "long_wait:billing"] == []
    assert b.active_keys()["long_wait:billing"] == raised[0].id and b.stats["alerts_adopted"] == 1
    b.handle(f"hallgrid/hall-1/alerts/{raised[0].id}", raised[0].to_json().encode())   # echo: known, ignored
    assert b.stats["alerts_adopted"] == 1


def test_webhook_close_does_not_hang_on_a_full_queue_while_backing_off():
    hook = Webhook("http://receiver/alerts", retries=5, backoff_s=30.0, max_queue=2,
                   transport=httpx.MockTransport(lambda r: httpx.Response(503)))
    for i in range(5):
        hook.send(alert(i))
    started = time.monotonic()
    hook.close(timeout=5.0)
    assert time.monotonic() - started < 2.0 and not hook._thread.is_alive()


def test_a_slow_receiver_never_holds_the_hub(tmp_path):
    release = threading.Event()
    hook = Webhook("http://receiver/alerts", transport=httpx.MockTransport(
        lambda r: release.wait(10) and httpx.Response(204)))
    hub = Hub([hall_site(min_duration_s=0)], Storage(f"sqlite:///{tmp_path / 'a.db'}"), clock=ManualClock(T0),
              notify=Notify(everywhere=[hook]), evaluate_on_message=False)
    hub.ingest_ticket("hall-1", parse({"event": "issued", "ticket": "A1", "service": "billing"}, T0))
    started = time.monotonic()
    assert [a.key for a in hub.tick() if a.key == "long_wait:billing"]       # raised and handed to the channel
    hub.ingest_ticket("hall-1", parse({"event": "issued", "ticket": "A2", "service": "billing"}, T0))
    assert time.monotonic() - started < 2.0 and hook.sent == 0       # the receiver still hangs, the hub went on
    release.set()
    wait_until(lambda: hook.sent >= 1, what="delivery once the receiver answers")
    hook.close()
