"""What the review counts, from the hub's stored alerts and ticket events (SQLAlchemy Core: SQLite and PostgreSQL).

Per alert kind and owner (the grid cell that responds first): alerts raised, median and
90th percentile minutes to acknowledge and to resolve, resolved by a person vs by the
condition clearing (``resolved_by`` "hub"), escalations, and recurring conditions (an alert
whose key was raised before less than a day earlier: the fix did not hold). And the longest
waits of the period, ticket by ticket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.contract import parse_ts

RECUR_S = 86400.0
LONGEST = 10


@dataclass
class Group:
    kind: str
    owner: str
    raised: int = 0
    ack_s: list[float] = field(default_factory=list)
    resolve_s: list[float] = field(default_factory=list)
    by_person: int = 0
    by_condition: int = 0
    escalations: int = 0
    recurring: int = 0
    still_open: int = 0

    def row(self) -> dict[str, Any]:
        def q(v: list[float], p: float) -> float | None:
            return round(float(np.percentile(v, p)) / 60, 1) if v else None

        return {"kind": self.kind, "owner": self.owner, "raised": self.raised,
                "ack_median_min": q(self.ack_s, 50), "ack_p90_min": q(self.ack_s, 90),
                "resolve_median_min": q(self.resolve_s, 50), "resolve_p90_min": q(self.resolve_s, 90),
                "resolved_by_person": self.by_person, "resolved_by_condition": self.by_condition,
                "still_open": self.still_open, "escalations": self.escalations, "recurring": self.recurring}


COLUMNS = ("kind", "owner", "raised", "ack_median_min", "ack_p90_min", "resolve_median_min", "resolve_p90_min",
           "resolved_by_person", "resolved_by_condition", "still_open", "escalations", "recurring")


@dataclass
class Review:
    site: str
    since: float
    until: float
    groups: list[dict[str, Any]]
    people: list[dict[str, Any]]
    longest: list[dict[str, Any]]
    alerts: list[dict[str, Any]]          # raised_at, kind, minutes to acknowledge/resolve (the charts)


def summarise(alerts: list[dict[str, Any]], earlier_raises: dict[str, float]) -> tuple[list[dict], list[dict], list[dict]]:
    """Groups per (kind, owner), per person who acknowledged, and the per-alert timings.

    ``earlier_raises``: key -> last raise before the period (a recurrence across its start counts)."""
    groups: dict[tuple[str, str], Group] = {}
    people: dict[str, list[float]] = {}
    last = dict(earlier_raises)
    timings = []
    for a in sorted(alerts, key=lambda a: a["raised_at"]):
        g = groups.setdefault((a["kind"], a["owner"]), Group(a["kind"], a["owner"]))
        raised = parse_ts(a["raised_at"])
        g.raised += 1
        g.escalations += int(a.get("escalations") or 0)
        prev = last.get(a["key"])
        if prev is not None and raised - prev < RECUR_S:
            g.recurring += 1
        last[a["key"]] = raised
        ack = parse_ts(a["acknowledged_at"]) - raised if a.get("acknowledged_at") else None
        res = parse_ts(a["resolved_at"]) - raised if a.get("resolved_at") else None
        if ack is not None:
            g.ack_s.append(ack)
            people.setdefault(a.get("acknowledged_by") or "?", []).append(ack)
        if res is not None:
            g.resolve_s.append(res)
            if a.get("resolved_by") == "hub":
                g.by_condition += 1
            else:
                g.by_person += 1
        else:
            g.still_open += 1
        timings.append({"raised_at": raised, "kind": a["kind"], "ack_min": None if ack is None else ack / 60,
                        "resolve_min": None if res is None else res / 60})
    rows = [g.row() for _, g in sorted(groups.items())]
    who = [{"who": k, "acknowledged": len(v), "ack_median_min": round(float(np.median(v)) / 60, 1)}
           for k, v in sorted(people.items())]
    return rows, who, timings


def longest_waits(rows: list[tuple[float, str, str, str]], n: int = LONGEST) -> list[dict[str, Any]]:
    """The ``n`` longest waits (issued -> called, or -> left for a no-show) from (ts, kind, ticket, service)
    rows in time order; a ticket number is one visit per day, so the pairing never crosses 18 hours."""
    from edge.contract import iso_ts

    issued: dict[str, tuple[float, str]] = {}
    out = []
    for ts, kind, ticket, service in rows:
        if kind == "issued":
            issued[ticket] = (ts, service)
        elif kind in ("called", "no_show") and ticket in issued:
            t0, svc = issued.pop(ticket)
            if ts - t0 < 18 * 3600:
                out.append((ts - t0, ticket, svc, t0, kind == "no_show"))
    out.sort(reverse=True)
    return [{"ticket": t, "service": s, "issued_at": iso_ts(t0), "wait_min": round(w / 60, 1), "left": left}
            for w, t, s, t0, left in out[:n]]


def review(storage, site: str, since: float, until: float) -> Review:
    """The review of ``site`` for alerts raised and tickets issued from ``since`` to ``until`` (both included)."""
    from sqlalchemy import func, select

    from hub.storage import alerts as at
    from hub.storage import ticket_events as te

    with storage.engine.connect() as conn:
        rows = [r.alert for r in conn.execute(select(at.c.alert).where(
            at.c.site == site, at.c.raised_at >= since, at.c.raised_at <= until))]
        earlier = dict(conn.execute(select(at.c.key, func.max(at.c.raised_at)).where(
            at.c.site == site, at.c.raised_at >= since - RECUR_S, at.c.raised_at < since).group_by(at.c.key)).all())
        tickets = [(ts, kind, ticket, service or "") for ts, kind, ticket, service in conn.execute(
            select(te.c.ts, te.c.kind, te.c.ticket, te.c.service).where(
                te.c.site == site, te.c.ts >= since, te.c.ts <= until,
                te.c.kind.in_(("issued", "called", "no_show"))).order_by(te.c.ts))]
    groups, people, timings = summarise(rows, earlier)
    return Review(site, since, until, groups, people, longest_waits(tickets), timings)
