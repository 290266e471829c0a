"""Ticket events: one model from three formats, duplicates ignored, any arrival order folds the same."""

from __future__ import annotations

import itertools

import pytest

from hub.tickets import TicketBook, TicketError, parse, read_csv

T = 1_800_000_000.0


def book() -> TicketBook:
    return TicketBook(["billing", "newline"], {"1": ["billing"], "2": ["billing", "newline"]}, prior_s=180.0)


def test_vendor_formats_map_to_one_model():
    q = parse({"event": "VISIT_CALL", "eventTime": "2027-01-15T08:00:00Z",
               "parameters": {"ticket": "A001", "serviceId": "billing", "servicePointId": "2"}}, T)
    assert (q.kind, q.ticket, q.counter) == ("called", "A001", "2")
    q = parse({"event": "SERVICE_POINT_OPEN", "parameters": {"servicePointId": "1", "serviceIds": ["billing"]}}, T)
    assert (q.kind, q.counter, q.services, q.ts) == ("counter_open", "1", ("billing",), T)
    m = parse({"type": "NEW", "data": {"id": 123, "line": "billing", "created": {"date": "2027-01-15T08:00:00Z"}}}, T)
    assert (m.kind, m.ticket, m.service) == ("issued", "123", "billing")
    m = parse({"type": "CALLED", "data": {"id": 123, "line": "billing", "desk": 2}}, T)
    assert (m.kind, m.counter) == ("called", "2")
    n = parse({"event": "transferred", "ticket": "A1", "to_service": "newline", "ts": T}, 0)
    assert n.to_service == "newline" and n.ts == T


@pytest.mark.parametrize("data,reason", [
    ("not a dict", "not a JSON object"),
    ({"event": "exploded", "ticket": "A1"}, "unknown event"),
    ({"event": "issued", "service": "billing"}, "'ticket' is missing"),
    ({"event": "issued", "ticket": "A1"}, "'service' is missing"),
    ({"event": "called", "ticket": "A1"}, "'counter' is missing"),
    ({"event": "transferred", "ticket": "A1"}, "'to_service' is missing"),
    ({"event": "issued", "ticket": "A1", "service": "billing", "ts": "yesterday"}, "not an ISO 8601"),
    ({"event": "issued", "ticket": ["A1"], "service": "billing"}, "must be a string"),
    ({"event": "counter_open", "counter": "1", "services": 5}, "list of service ids"),
    ({"event": "VISIT_NOPE"}, "unknown event"),
    ({"type": "NEW", "data": 3}, "'data' is not an object"),
])
def test_invalid_events_give_reasons(data, reason):
    with pytest.raises(TicketError, match=reason):
        parse(data, T)


def test_unknown_service_and_counter_are_rejected_by_the_book():
    b = book()
    with pytest.raises(TicketError, match="unknown service 'gold'"):
        b.apply(parse({"event": "issued", "ticket": "A1", "service": "gold"}, T), T)
    with pytest.raises(TicketError, match="unknown counter '9'"):
        b.apply(parse({"event": "called", "ticket": "A1", "counter": "9"}, T), T)


def test_duplicates_ignored_and_service_time_sampled_once():
    b = book()
    events = [parse(e, T) for e in ({"event": "issued", "ticket": "A1", "service": "billing", "ts": T},
                                    {"event": "called", "ticket": "A1", "counter": "1", "ts": T + 60},
                                    {"event": "served", "ticket": "A1", "ts": T + 360})]
    assert [b.apply(e, T) for e in events + events] == [True] * 3 + [False] * 3
    assert b.mean_service_time("billing") == pytest.approx(0.8 * 180 + 0.2 * 300)
    assert b.samples("billing") == 1


def test_any_arrival_order_gives_the_same_state():
    evs = [parse(e, T) for e in (
        {"event": "issued", "ticket": "A1", "service": "billing", "ts": T},
        {"event": "called", "ticket": "A1", "counter": "1", "ts": T + 30},
        {"event": "transferred", "ticket": "A1", "to_service": "newline", "ts": T + 90},
        {"event": "called", "ticket": "A1", "counter": "2", "ts": T + 200},
        {"event": "served", "ticket": "A1", "ts": T + 320},
        {"event": "issued", "ticket": "A2", "service": "billing", "ts": T + 10})]
    states = set()
    for order in itertools.permutations(evs[:5]):
        b = book()
        for e in (*order, evs[5]):
            b.apply(e, T)
        t = b.tickets["A1"]
        states.add((t.state, t.service, t.counter, round(b.mean_service_time("newline"), 6), len(b.waiting("billing"))))
    assert states == {("served", "newline", "2", round(0.8 * 180 + 0.2 * 120, 6), 1)}


def test_counter_open_close_out_of_order():
    b = book()
    b.apply(parse({"event": "counter_close", "counter": "1", "ts": T + 100}, T), T)
    b.apply(parse({"event": "counter_open", "counter": "1", "ts": T}, T), T)       # late, older: no effect
    assert b.counters_for("billing") == []
    b.apply(parse({"event": "counter_open", "counter": "2", "ts": T + 200}, T), T)  # services from the site file
    assert b.counters_for("newline") == ["2"]


def test_csv_import_reports_bad_lines():
    text = ("ts,event,ticket,service,counter,to_service,services\n"
            "2027-01-15T08:00:00Z,issued,A1,billing,,,\n"
            "2027-01-15T08:01:00Z,called,A1,,1,,\n"
            "2027-01-15T08:02:00Z,bogus,A1,,,,\n"
            "2027-01-15T08:00:00Z,counter_open,,,2,,billing|newline\n")
    events, errors = read_csv(text, T)
    assert [e.kind for e in events] == ["issued", "called", "counter_open"]
    assert events[2].services == ("billing", "newline")
    assert errors == ["line 4: unknown event 'bogus' (expected one of issued, called, served, no_show, transferred, "
                      "counter_open, counter_close)"]
    assert read_csv("a,b\n1,2\n", T)[1][0].startswith("line 1: header")


def test_qmatic_visit_events_with_a_queue_id_are_accepted():
    b = book()
    create = parse({"event": "VISIT_CREATE", "eventTime": "2027-01-15T08:00:00Z",
                    "parameters": {"ticket": "A001", "serviceId": "billing", "queueId": "q-17"}}, T)
    assert (create.kind, create.service, create.to_service) == ("issued", "billing", "")
    assert b.apply(create, T)
    moved = parse({"event": "VISIT_TRANSFER_TO_QUEUE", "parameters": {"ticket": "A001", "queueId": "newline"}}, T)
    assert (moved.kind, moved.to_service) == ("transferred", "newline")
    assert b.apply(moved, T) and b.tickets["A001"].service == "newline"


def test_ticket_numbers_restart_every_day():
    b = TicketBook(["billing", "newline"], {"1": ["billing"]}, timezone="Europe/Berlin")
    day = 86400.0

    def day_events(start):
        return [parse(e, start) for e in ({"event": "issued", "ticket": "A001", "service": "billing", "ts": start},
                                          {"event": "issued", "ticket": "A002", "service": "billing", "ts": start + 30},
                                          {"event": "called", "ticket": "A001", "counter": "1", "ts": start + 60},
                                          {"event": "served", "ticket": "A001", "ts": start + 360})]

    first = day_events(T)
    assert [b.apply(e, T) for e in first + first] == [True] * 4 + [False] * 4    # duplicates within a day
    assert b.tickets["A002"].state == "waiting"
    second = day_events(T + day)
    assert [b.apply(e, T + day) for e in second] == [True] * 4                    # the same numbers next morning
    assert b.apply(second[1], T + day) is False                                   # still a duplicate that day
    assert b.tickets["A001"].state == "served" and b.tickets["A001"].day == b.day_of(T + day)
    assert [t.ticket for t in b.waiting("billing")] == ["A002"]
    assert b.tickets["A002"].waiting_since == T + day + 30
    assert b.samples("billing") == 2
    assert b.arrival_rate("billing", T + day + 60) == pytest.approx(2 / 300)
    # a week later, yesterday's and older state is gone (bounded memory), today's queues normally
    later = day_events(T + 8 * day)
    assert all(b.apply(e, T + 8 * day) for e in later)
    assert len(b.seen) == 4 and b.samples("billing") == 1
    assert sum(len(v) for v in b.issued.values()) == 2
    assert [t.ticket for t in b.waiting("billing")] == ["A002"]
