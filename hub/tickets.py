"""Queue-ticket events: one model, three doors (MQTT, HTTP, CSV) and adapters from vendor formats.

Every ticket system says the same few things (a ticket was issued for a service,
called to a counter, served, not shown, transferred; a counter opened or closed),
so the hub converts each vendor's wording into one ``TicketEvent`` at the door and
everything behind it knows only that. A bad event raises ``TicketError`` with the
reason; the door counts and logs it, or answers 4xx, and the hub keeps going.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo

from edge.contract import ContractError, iso_ts, parse_ts

KINDS = ("issued", "called", "served", "no_show", "transferred", "counter_open", "counter_close")
COUNTER_KINDS = KINDS[5:]
# Order of events with the same timestamp, so that a replay in any order folds the same way.
RANK = {"issued": 0, "called": 1, "transferred": 2, "no_show": 3, "served": 3, "counter_open": 0,
        "counter_close": 1}


class TicketError(ValueError):
    """An event the hub cannot use; the message is the reason given back to the sender."""


def tickets_topic(site: str, prefix: str = "hallgrid") -> str:
    return f"{prefix}/{site}/tickets"


@dataclass(frozen=True)
class TicketEvent:
    """One thing the ticket system reports. ``ts`` is epoch seconds; absent in input = time of receipt."""

    kind: str
    ts: float
    ticket: str = ""
    service: str = ""
    counter: str = ""
    to_service: str = ""
    services: tuple[str, ...] = ()
    site: str = ""

    @property
    def key(self) -> tuple:
        """Identity for de-duplication: the same ticket and event (counter events: also the time). The
        ticket book adds the service day, since ticket systems restart their numbers every morning."""
        if self.kind in COUNTER_KINDS:
            return (self.kind, self.counter, round(self.ts, 3))
        return (self.kind, self.ticket, self.to_service, self.counter)

    def to_dict(self) -> dict[str, Any]:
        # a shallow copy (asdict deep-copies: a third of a CSV import's time under the hub's lock)
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["services"] = list(self.services)
        data["ts"] = iso_ts(self.ts)
        return {k: v for k, v in data.items() if v not in ("", [], None)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


MAX_ID = 64                  # characters of a ticket, service, counter or site id (storage keeps 64)
MAX_SERVICES = 64            # services a counter_open may name
MAX_PAYLOAD = 16 * 1024      # bytes of one JSON event (MQTT; the HTTP route has the same body limit)
LATEST_TS = 253402300799.0   # 9999-12-31T23:59:59Z: the last instant an ISO time can name


def _show(value: Any, n: int = 40) -> str:
    """A value for an error message, cut short: the reason must not carry a megabyte id back."""
    text = repr(value)
    return text if len(text) <= n else text[:n] + "..."


def _id(value: Any, name: str) -> str:
    """Bounded printable text: no control characters, no lone surrogates (they break storage and JSON)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TicketError(f"field {name!r} must be a string")
    if isinstance(value, int):
        if not -10 ** MAX_ID < value < 10 ** MAX_ID:
            raise TicketError(f"field {name!r} is longer than {MAX_ID} characters")
        value = str(value)
    if len(value) > MAX_ID:
        raise TicketError(f"field {name!r} is {len(value)} characters long (at most {MAX_ID})")
    if not value.isprintable():
        raise TicketError(f"field {name!r} has control or unpaired surrogate characters: {_show(value)}")
    return value


def _text(data: dict, name: str, required: bool) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise TicketError(f"field {name!r} is missing")
        return ""
    return _id(value, name)


def _time(value: Any, default: float) -> float:
    """Epoch seconds or ISO 8601; finite and between 1970 and 9999 (NaN, Infinity, 1e20: refused)."""
    if value is None or value == "":
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            ts = float(value)
        except OverflowError:                  # an integer of hundreds of digits
            ts = math.inf
    elif isinstance(value, str):
        try:
            ts = parse_ts(value)
        except ContractError as exc:
            raise TicketError(str(exc)) from None
    else:
        raise TicketError(f"field 'ts' must be epoch seconds or an ISO 8601 time, not {_show(value)}")
    if not (math.isfinite(ts) and 0 <= ts <= LATEST_TS):
        raise TicketError(f"field 'ts' {_show(value)} is not a time between 1970 and 9999")
    return ts


def check_window(event: TicketEvent, received_at: float, max_age_s: float, max_ahead_s: float) -> None:
    """Refuse an event dated too far before or after its receipt (site rules ``ticket_max_age_s`` and
    ``ticket_max_ahead_s``): one counter_open dated two days ahead would otherwise empty a queue and be
    replayed after every restart."""
    if event.ts > received_at + max_ahead_s:
        raise TicketError(f"ts {iso_ts(event.ts)} is {event.ts - received_at:.0f} s after its receipt "
                          f"(at most {max_ahead_s:g} s ahead: rules.ticket_max_ahead_s)")
    if event.ts < received_at - max_age_s:
        raise TicketError(f"ts {iso_ts(event.ts)} is {received_at - event.ts:.0f} s before its receipt "
                          f"(at most {max_age_s:g} s old: rules.ticket_max_age_s)")


def from_dict(data: Any, now: float) -> TicketEvent:
    """The hub's own JSON: {"event": "issued", "ticket": "A001", "service": "billing", "ts": "...Z"}."""
    if not isinstance(data, dict):
        raise TicketError("event is not a JSON object")
    kind = data.get("event", data.get("kind"))
    if kind not in KINDS:
        raise TicketError(f"unknown event {_show(kind)} (expected one of {', '.join(KINDS)})")
    ts = _time(data.get("ts"), now)
    site = _text(data, "site", False)
    if kind in COUNTER_KINDS:
        services = data.get("services") or []
        if isinstance(services, str):
            services = [s for s in services.replace("|", ",").split(",") if s]
        if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
            raise TicketError("field 'services' must be a list of service ids")
        if len(services) > MAX_SERVICES:
            raise TicketError(f"field 'services' names {len(services)} services (at most {MAX_SERVICES})")
        return TicketEvent(kind, ts, counter=_text(data, "counter", True),
                           services=tuple(_id(s, "services") for s in services), site=site)
    return TicketEvent(kind, ts, ticket=_text(data, "ticket", True),
                       service=_text(data, "service", kind == "issued"),
                       counter=_text(data, "counter", kind == "called"),
                       to_service=_text(data, "to_service", kind == "transferred"), site=site)


QMATIC = {"VISIT_CREATE": "issued", "VISIT_CALL": "called", "VISIT_RECALL": "called", "VISIT_NOSHOW": "no_show",
          "VISIT_END": "served", "VISIT_TRANSFER_TO_QUEUE": "transferred",
          "SERVICE_POINT_OPEN": "counter_open", "SERVICE_POINT_CLOSE": "counter_close"}


def from_qmatic(data: Any, now: float) -> TicketEvent:
    """Qmatic Orchestra-style: {"event": "VISIT_CALL", "eventTime": ..., "parameters": {"ticket": ...,
    "serviceId": ..., "servicePointId": ..., "queueId": ..., "serviceIds": [...]}}."""
    if not isinstance(data, dict):
        raise TicketError("event is not a JSON object")
    name = data.get("event", data.get("eventName"))
    if name not in QMATIC:
        raise TicketError(f"unknown Qmatic event {_show(name)}")
    p = data.get("parameters", {})
    if not isinstance(p, dict):
        raise TicketError("Qmatic 'parameters' is not an object")
    kind = QMATIC[name]
    native = {"event": kind, "ts": data.get("eventTime", data.get("ts")), "site": data.get("site"),
              "ticket": p.get("ticket", p.get("ticketId")), "service": p.get("serviceId"),
              "counter": p.get("servicePointId"), "services": p.get("serviceIds")}
    if kind == "transferred":       # every visit event names its queue; only a transfer moves it
        native["to_service"] = p.get("queueId", p.get("serviceId"))
    return from_dict({k: v for k, v in native.items() if v is not None}, now)


QMINDER = {"NEW": "issued", "CALLED": "called", "RECALLED": "called", "SERVED": "served", "NOSHOW": "no_show",
           "CANCELLED": "no_show"}


def from_qminder(data: Any, now: float) -> TicketEvent:
    """Qminder webhook-style: {"type": "CALLED", "data": {"id": ..., "line": ..., "desk": ..., "created":
    {"date": ...}, "called": {"date": ...}, "served": {"date": ...}}}."""
    if not isinstance(data, dict):
        raise TicketError("event is not a JSON object")
    kind = QMINDER.get(data.get("type"))
    if kind is None:
        raise TicketError(f"unknown Qminder event type {_show(data.get('type'))}")
    d = data.get("data")
    if not isinstance(d, dict):
        raise TicketError("Qminder 'data' is not an object")
    stamp_of = {"issued": "created", "called": "called", "served": "served", "no_show": "served"}
    stamp = d.get(stamp_of[kind]) or {}
    native = {"event": kind, "ticket": d.get("id"), "service": d.get("line"), "site": data.get("site"),
              "ts": stamp.get("date") if isinstance(stamp, dict) else None,
              "counter": d.get("desk", (d.get("called") or {}).get("desk") if isinstance(d.get("called"), dict)
                               else None)}
    return from_dict({k: v for k, v in native.items() if v is not None}, now)


FORMATS: dict[str, Callable[[Any, float], TicketEvent]] = {"hallgrid": from_dict, "qmatic": from_qmatic,
                                                           "qminder": from_qminder}


def parse(data: Any, now: float, fmt: str = "auto") -> TicketEvent:
    """Any supported format; ``auto`` recognises Qmatic by its event names and Qminder by 'type'."""
    if fmt == "auto":
        if isinstance(data, dict) and data.get("event", data.get("eventName")) in QMATIC:
            fmt = "qmatic"
        elif isinstance(data, dict) and "type" in data and "data" in data:
            fmt = "qminder"
        else:
            fmt = "hallgrid"
    if fmt not in FORMATS:
        raise TicketError(f"unknown format {_show(fmt)} (expected auto, {', '.join(FORMATS)})")
    return FORMATS[fmt](data, now)


def parse_payload(payload: bytes | str, now: float, fmt: str = "auto") -> TicketEvent:
    """An MQTT payload: one JSON event of at most ``MAX_PAYLOAD`` bytes."""
    if len(payload) > MAX_PAYLOAD:
        raise TicketError(f"payload is {len(payload)} bytes (at most {MAX_PAYLOAD})")
    try:
        data = json.loads(payload)
    except ValueError as exc:        # not JSON, not UTF-8, or an integer too long to convert
        raise TicketError(f"payload is not JSON: {exc}") from None
    return parse(data, now, fmt)


CSV_COLUMNS = ("ts", "event", "ticket", "service", "counter", "to_service", "services")


def read_csv(text: str, now: float) -> tuple[list[TicketEvent], list[str]]:
    """A ticket log export (columns ts,event,ticket,service,counter,to_service,services; services
    separated by '|'). Returns the good events and one 'line N: reason' per bad row."""
    events, errors = [], []
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "event" not in reader.fieldnames:
        return [], ["line 1: header must name at least 'event' (columns: " + ",".join(CSV_COLUMNS) + ")"]
    for row in reader:
        try:
            row = {k: (v or "").strip() for k, v in row.items() if k}
            events.append(from_dict({k: v for k, v in row.items() if v}, now))
        except TicketError as exc:
            errors.append(f"line {reader.line_num}: {exc}")
    return events, errors


@dataclass
class Ticket:
    """A ticket's state, folded from its events in time order (so arrival order does not matter)."""

    ticket: str
    day: int = 0                      # service day (site-local date ordinal): numbers restart every morning
    events: list[TicketEvent] = field(default_factory=list)
    state: str = "unknown"
    service: str = ""
    waiting_since: float | None = None
    called_ts: float | None = None
    counter: str = ""
    service_time: float | None = None
    served_ts: float | None = None

    @property
    def last_ts(self) -> float:
        return max(e.ts for e in self.events) if self.events else float("-inf")

    def fold(self) -> None:
        self.events.sort(key=lambda e: (e.ts, RANK[e.kind]))
        self.state, self.service, self.waiting_since, self.called_ts, self.counter = "unknown", "", None, None, ""
        self.service_time = self.served_ts = None
        for e in self.events:
            if e.kind == "issued":
                self.service = e.service
                if self.state == "unknown":
                    self.state, self.waiting_since = "waiting", e.ts
            elif e.kind == "called":
                self.state, self.counter, self.called_ts = "called", e.counter, e.ts
            elif e.kind == "transferred":
                self.service, self.state, self.waiting_since = e.to_service, "waiting", e.ts
                self.counter, self.called_ts = "", None
            elif e.kind == "no_show":
                self.state = "no_show"
            elif e.kind == "served":
                if self.called_ts is not None:
                    self.service_time = e.ts - self.called_ts
                self.state, self.served_ts = "served", e.ts


class TicketBook:
    """Per-site ticket state: the queue per service, open counters, online service time and arrival rate.

    Service time is an EWMA of called->served durations starting from a prior, so the
    first minutes of the day give a sensible prediction instead of none.
    """

    def __init__(self, known_services: Iterable[str] = (), counter_services: dict[str, list[str]] | None = None,
                 prior_s: float = 180.0, alpha: float = 0.2, window_s: float = 1800.0, timezone: str = "UTC",
                 keep_s: float = 86400.0):
        self.known_services = set(known_services)
        self.counter_services = dict(counter_services or {})
        self.prior_s, self.alpha, self.window_s = prior_s, alpha, window_s
        self.tz = ZoneInfo(timezone)
        self.keep_s = max(keep_s, window_s)       # state older than this (behind the newest event) is pruned
        self.tickets: dict[str, Ticket] = {}      # ticket number -> its latest visit
        self.seen: dict[tuple, float] = {}        # (service day, *event key) -> event ts
        self.open_counters: dict[str, tuple[str, ...]] = {}
        self.counter_last: dict[str, float] = {}
        # (service day, ticket) -> (service, served ts, seconds)
        self.durations: dict[tuple[int, str], tuple[str, float, float]] = {}
        self.issued: dict[str, list[float]] = {}   # service -> issued times, sorted
        self.latest_ts: float | None = None
        self._pruned_at = float("-inf")
        self._st_cache: dict[str, float] = {}
        self._st_last: dict[str, float] = {}      # served ts of the last sample in each cached EWMA
        self._index: tuple[dict, dict] | None = None      # waiting by service, called by counter
        self.last_event_at: float | None = None
        self.first_event_ts: float | None = None
        self.first_of_day: dict[int, float] = {}    # service day -> its first event's ts
        self._day_span: tuple[float, float, int] = (0.0, 0.0, 0)    # [start, end) of the last day_of's day
        # called after every applied event with the ticket it changed (None for a counter event): the wait
        # predictor's history (hub.waits) follows the book without a second fold of every event
        self.observers: list[Callable[[Ticket | None, TicketEvent], None]] = []

    def validate(self, e: TicketEvent) -> None:
        """Checks against the site file; raise TicketError naming the unknown id."""
        for sid in ([e.service] if e.service else []) + ([e.to_service] if e.to_service else []) + list(e.services):
            if self.known_services and sid not in self.known_services:
                raise TicketError(f"unknown service {sid!r} (site services: {', '.join(sorted(self.known_services))})")
        if e.counter and self.counter_services and e.counter not in self.counter_services:
            raise TicketError(f"unknown counter {e.counter!r}")

    def day_of(self, ts: float) -> int:
        """The service day an instant belongs to: its site-local date (ticket numbers restart daily).
        Asked for nearly every event and figure, so the bounds of the last day found are kept."""
        lo, hi, day = self._day_span
        if lo <= ts < hi:
            return day
        d = datetime.fromtimestamp(ts, self.tz).date()
        lo = datetime.combine(d, dtime(), self.tz).timestamp()
        hi = datetime.combine(d + timedelta(days=1), dtime(), self.tz).timestamp()
        if lo <= ts < hi:            # a local midnight that a DST change skips or repeats is not kept
            self._day_span = (lo, hi, d.toordinal())
        return d.toordinal()

    def apply(self, e: TicketEvent, received_at: float) -> bool:
        """Apply one event; False for a duplicate (ignored). Raises TicketError for an invalid one.

        A ticket's identity is its number and service day, so A001 tomorrow is a new visit, not a
        duplicate of today's."""
        self.validate(e)
        day = self.day_of(e.ts)
        key = (day, *e.key)
        if key in self.seen:
            return False
        self.seen[key] = e.ts
        self.latest_ts = e.ts if self.latest_ts is None else max(self.latest_ts, e.ts)
        self.last_event_at = received_at if self.last_event_at is None else max(self.last_event_at, received_at)
        self.first_event_ts = e.ts if self.first_event_ts is None else min(self.first_event_ts, e.ts)
        self.first_of_day[day] = min(self.first_of_day.get(day, e.ts), e.ts)
        if e.kind in COUNTER_KINDS:
            if e.ts >= self.counter_last.get(e.counter, float("-inf")):   # an older event arriving late changes nothing
                self.counter_last[e.counter] = e.ts
                if e.kind == "counter_open":
                    self.open_counters[e.counter] = e.services or tuple(self.counter_services.get(e.counter, ()))
                else:
                    self.open_counters.pop(e.counter, None)
            self._notify(None, e)
            self._maybe_prune()
            return True
        if e.kind == "issued":
            bisect.insort(self.issued.setdefault(e.service, []), e.ts)
        t = self.tickets.get(e.ticket)
        if t is None or t.day < day:          # a number's first event of the day: a new visit
            if t is not None:
                self._unindex(t)
            t = self.tickets[e.ticket] = Ticket(e.ticket, day)
        elif t.day > day:                     # a late event of an earlier day's visit: that visit is over
            self._maybe_prune()
            return True
        self._unindex(t)
        t.events.append(e)
        t.fold()
        self._reindex(t)
        # a late event can change a ticket's duration (a transfer arriving after its end): keep one per
        # ticket and recompute the EWMA in served order, so the estimate does not depend on arrival order
        sample = (t.service, t.served_ts, t.service_time) if t.service_time is not None and t.service_time >= 0 else None
        visit = (t.day, t.ticket)
        if self.durations.get(visit) != sample:
            old = self.durations.pop(visit, None)
            if sample is not None:
                self.durations[visit] = sample
            value = self._st_cache.get(t.service)
            if old is None and sample is not None and value is not None and sample[1] > self._st_last[t.service]:
                # the next sample in served order (the usual case): one EWMA step, not a recomputation
                self._st_cache[t.service] = (1 - self.alpha) * value + self.alpha * sample[2]
                self._st_last[t.service] = sample[1]
            else:
                self._st_cache.pop(t.service, None)
                if old is not None:
                    self._st_cache.pop(old[0], None)
        self._notify(t, e)
        self._maybe_prune()
        return True

    def _unindex(self, t: Ticket) -> None:
        """Take one ticket out of the waiting/called index before it changes (kept up to date per event
        rather than rebuilt from every ticket of the day)."""
        if self._index is None:
            return
        rows = self._index[0].get(t.service) if t.state == "waiting" else \
            self._index[1].get(t.counter) if t.state == "called" else None
        for i, x in enumerate(rows or ()):
            if x is t:
                del rows[i]
                break

    def _reindex(self, t: Ticket) -> None:
        if self._index is None:
            return
        if t.state == "waiting":
            self._index[0].setdefault(t.service, []).append(t)
        elif t.state == "called":
            self._index[1].setdefault(t.counter, []).append(t)

    def _notify(self, t: Ticket | None, e: TicketEvent) -> None:
        for fn in self.observers:
            fn(t, e)

    def _maybe_prune(self) -> None:
        """At most hourly (in event time): forget what is older than ``keep_s`` behind the newest event, so
        a hub that runs for weeks holds a day of state, not all of it."""
        if self.latest_ts is not None and self.latest_ts - self._pruned_at >= 3600:
            self._pruned_at = self.latest_ts
            self.prune(self.latest_ts - self.keep_s)

    def prune(self, before: float) -> None:
        """Drop tickets whose last event, event keys, issued times and service-time samples are before
        ``before`` (the hub restores only a day of events after a restart, so this matches it)."""
        old = [n for n, t in self.tickets.items() if t.last_ts < before]
        for n in old:
            del self.tickets[n]
        if old:
            self._index = None
        self.seen = {k: ts for k, ts in self.seen.items() if ts >= before}
        self.first_of_day = {d: ts for d, ts in self.first_of_day.items() if ts >= before or d >= self.day_of(before)}
        for service, times in self.issued.items():
            del times[:bisect.bisect_left(times, before)]
        stale = [k for k, s in self.durations.items() if s[1] < before]
        for k in stale:
            self._st_cache.pop(self.durations.pop(k)[0], None)

    # --- the figures the rules need -------------------------------------------------------------
    def _indexed(self) -> tuple[dict, dict]:
        if self._index is None:
            waiting: dict[str, list[Ticket]] = {}
            called: dict[str, list[Ticket]] = {}
            for t in self.tickets.values():
                if t.state == "waiting":
                    waiting.setdefault(t.service, []).append(t)
                elif t.state == "called":
                    called.setdefault(t.counter, []).append(t)
            self._index = (waiting, called)
        return self._index

    def waiting(self, service: str) -> list[Ticket]:
        return self._indexed()[0].get(service, [])

    def called_at(self, counter: str) -> list[Ticket]:
        return self._indexed()[1].get(counter, [])

    def busy_counters(self) -> set[str]:
        """Open counters serving a called ticket right now."""
        return {c for c, rows in self._indexed()[1].items() if rows and c in self.open_counters}

    def samples(self, service: str) -> int:
        return sum(1 for s in self.durations.values() if s[0] == service)

    def counters_for(self, service: str) -> list[str]:
        return sorted(c for c, svcs in self.open_counters.items() if service in svcs)

    def mean_service_time(self, service: str) -> float:
        """EWMA of called->served durations in the order they ended, starting from the prior."""
        if service not in self._st_cache:
            value, last = self.prior_s, float("-inf")
            for _, last, d in sorted(s for s in self.durations.values() if s[0] == service):
                value = (1 - self.alpha) * value + self.alpha * d
            self._st_cache[service], self._st_last[service] = value, last
        return self._st_cache[service]

    def arrival_rate(self, service: str, now: float) -> float:
        """Issued tickets per second over the last window (shorter early in the service day, at least 5 min)."""
        if self.first_event_ts is None:
            return 0.0
        first = self.first_of_day.get(self.day_of(now), self.first_event_ts)
        window = min(self.window_s, max(300.0, now - first))
        times = self.issued.get(service, [])
        return (bisect.bisect_right(times, now) - bisect.bisect_right(times, now - window)) / window

    def total_arrival_rate(self, now: float) -> float:
        return sum(self.arrival_rate(s, now) for s in self.issued)
