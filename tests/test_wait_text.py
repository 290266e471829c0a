"""The wait in words: a range in minutes, overload described, "no counter open", plurals, zh and en;
and the rules' suggestions rendered from the catalogue in the site's language."""

from __future__ import annotations

import pytest

from edge.clock import ManualClock
from hub import rules
from hub.messages import Localized, render, render_all
from hub.messages.waits import wait_reason, wait_text, wait_texts
from hub.service import Hub
from hub.storage import Storage
from hub.tickets import parse

from test_hub_scenario import T0
from test_hub_site import hall_site


def figs(**kw) -> dict:
    base = {"waiting_tickets": 3, "waiting_people": 4, "open_counters": ["1"], "predicted_wait_s": 240.0,
            "wait_low_s": 130.0, "wait_high_s": 410.0, "wait_reason": "ok", "frees_every_s": 180.0}
    return {**base, **kw}


def test_a_finite_wait_reads_as_minutes_with_its_range():
    assert wait_text(figs(), "en") == "about 4 min (2-7)"
    assert wait_text(figs(), "zh") == "约4分钟（2-7分钟）"
    # the range always contains the figure, even when rounding would put it outside
    assert wait_text(figs(predicted_wait_s=100.0, wait_low_s=95.0, wait_high_s=119.0), "en") == "about 2 min (1-2)"
    assert wait_text(figs(predicted_wait_s=240.0, wait_low_s=240.0, wait_high_s=240.0), "en") == "about 4 min"


def test_a_short_wait_is_under_a_minute():
    assert wait_text(figs(predicted_wait_s=20.0, wait_low_s=0.0, wait_high_s=50.0), "en") == "under 1 min"
    assert wait_text(figs(predicted_wait_s=20.0, wait_low_s=0.0, wait_high_s=150.0), "en") == "under 1 min (0-3)"
    assert wait_text(figs(predicted_wait_s=20.0, wait_low_s=0.0, wait_high_s=150.0), "zh") == "不到1分钟（0-3分钟）"


def test_overload_is_described_never_infinite():
    f = figs(waiting_tickets=9, open_counters=["1", "2"], predicted_wait_s=2400.0, wait_reason="overloaded")
    assert wait_text(f, "en") == "overloaded: 9 tickets, 2 counters, one frees every 3 min"
    assert wait_text(f, "zh") == "超负荷：9张票，2个窗口，平均每3分钟空出一个窗口"
    one = figs(waiting_tickets=1, open_counters=["1"], wait_reason="overloaded", frees_every_s=45.0)
    assert wait_text(one, "en") == "overloaded: 1 ticket, 1 counter, one frees every 45 s"      # singular
    assert wait_text(figs(wait_reason="overloaded", frees_every_s=None), "en") == "overloaded: 3 tickets, 1 counter"


def test_no_counter_open():
    f = figs(open_counters=[], predicted_wait_s=None, wait_low_s=None, wait_high_s=None, wait_reason="no_counter")
    assert wait_texts(f) == {"zh": "无窗口开放", "en": "no counter open"}


@pytest.mark.parametrize("figures, reason, text", [
    # figures from a hub without wait_reason / range (before the per-ticket predictor)
    ({"waiting_tickets": 2, "open_counters": ["1", "2"], "predicted_wait_s": None}, "overloaded",
     "overloaded: 2 tickets, 2 counters"),
    ({"waiting_tickets": 2, "open_counters": [], "predicted_wait_s": None}, "no_counter", "no counter open"),
    ({"waiting_tickets": 0, "open_counters": [], "predicted_wait_s": 0.0}, "no_counter", "no counter open"),
    ({"waiting_tickets": 2, "open_counters": ["1"], "predicted_wait_s": 330.0}, "ok", "about 6 min"),
])
def test_figures_without_the_new_keys_still_read_honestly(figures, reason, text):
    assert wait_reason(figures) == reason and wait_text(figures, "en") == text


def test_localized_parameters_nest_per_language():
    tickets = render_all("unit.tickets", n=2)
    assert isinstance(tickets, Localized)
    assert render("wait.overloaded", "zh", tickets=tickets, counters=render_all("unit.counters", n=1)) == "超负荷：2张票，1个窗口"
    assert render("wait.overloaded", "en", tickets=tickets, counters=render_all("unit.counters", n=1)) == \
        "overloaded: 2 tickets, 1 counter"


def test_suggestions_follow_the_site_language(tmp_path):
    site = hall_site(min_duration_s=0).model_copy(update={"language": "zh"})
    hub = Hub([site], Storage(f"sqlite:///{tmp_path / 'hub.db'}"), clock=ManualClock(T0), evaluate_on_message=False)
    hub.ingest_ticket("hall-1", parse({"event": "issued", "ticket": "A1", "service": "billing"}, T0))
    raised = {a.key: a for a in hub.tick()}
    a = raised["long_wait:billing"]
    assert a.lang == "zh" and a.suggestion == a.texts["zh"]["suggestion"]
    assert a.suggestion == "Waiting area A：0人、1张票等候Billing，无窗口开放，开启1号窗口"
    assert a.texts["en"]["suggestion"] == "Waiting area A: 0 people, 1 ticket for Billing, no counter open: open counter 1"
    assert all(set(t) == {"where", "detail", "action", "suggestion"} for t in a.texts.values())
    # every rule speaks both languages and the site's language picks the suggestion; texts are rendered
    # only for a condition above its clear threshold (one that may raise or keep an alert)
    st = hub.sites["hall-1"]
    for zone, n in {"entrance": 12, "waiting-a": 25, "self-service": 6, "vip-room": 1, "counter-1": 0}.items():
        st.zones[zone].count, st.zones[zone].received_at = n, T0
    hub.ingest_ticket("hall-1", parse({"event": "issued", "ticket": "V1", "service": "vip"}, T0))
    hub.ingest_ticket("hall-1", parse({"event": "counter_open", "counter": "1"}, T0))
    hub.ingest_ticket("hall-1", parse({"event": "called", "ticket": "A1", "counter": "1"}, T0))
    conditions = rules.evaluate(st, T0 + 7200)
    above = [c for c in conditions if c.value > c.clear_at]
    assert {c.kind for c in above} == {"long_wait", "over_capacity", "entrance_crowd", "staff_missing",
                                       "self_service_queue", "vip_waiting", "stale_camera", "stale_tickets"}
    for c in above:
        assert c.lang == "zh" and c.suggestion == c.texts["zh"]["suggestion"] != c.texts["en"]["suggestion"]
    assert all(c.texts == {} and c.suggestion == "" for c in conditions if c.value <= c.clear_at)
    camera = next(c for c in above if c.kind == "stale_camera")
    assert camera.suggestion.startswith("摄像头") and "120分钟" in camera.suggestion
