"""Storage with SQLAlchemy Core: occupancy time series, ticket events and alert history.

A SQLite file by default (one hall, no server to run), PostgreSQL for a shared
database (several hubs, failover: ``hub.cluster``). What it keeps is what a
restarted hub needs to carry on without forgetting or repeating an alert (alerts,
ticket events) and what analysts review (occupancy, history of who acknowledged
when). The tables below are the models; the schema in a database is made and
upgraded only by the Alembic migrations in ``hub/storage/migrations`` (a test
checks that both agree), so an upgrade keeps a hall's history.
"""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import (JSON, Column, Float, Index, Integer, MetaData, String, Table, create_engine, event, func,
                        insert, select, update)
from sqlalchemy.pool import StaticPool

from hub.alerts import RESOLVED, Alert
from hub.tickets import TicketEvent
from edge.contract import parse_ts

meta = MetaData()

# Weeks of history are read by site and time (the board's last hour, restores, reviews): each table's
# composite index leads with the site and then the time, so a range read touches only its rows.
occupancy = Table("occupancy", meta,
                  Column("id", Integer, primary_key=True), Column("site", String(64)),
                  Column("camera", String(64)), Column("zone", String(64)), Column("ts", Float),
                  Column("count", Integer), Column("raw", Integer), Column("seq", Integer),
                  Index("ix_occupancy_site_ts", "site", "ts"), Index("ix_occupancy_site_zone_ts", "site", "zone", "ts"))
ticket_events = Table("ticket_events", meta,
                      Column("id", Integer, primary_key=True), Column("site", String(64)),
                      Column("kind", String(16)), Column("ticket", String(64)), Column("ts", Float),
                      Column("received_at", Float), Column("event", JSON), Column("service", String(64)),
                      # covers the history reads (time, kind, ticket, service: forecast, plan, review) on its own
                      Index("ix_ticket_events_site_ts_covering", "site", "ts", "kind", "ticket", "service"))
alerts = Table("alerts", meta,
               Column("id", String(160), primary_key=True), Column("site", String(64)),
               Column("key", String(160), index=True), Column("state", String(16), index=True),
               Column("raised_at", Float), Column("resolved_at", Float, nullable=True), Column("alert", JSON),
               Index("ix_alerts_site_raised_at", "site", "raised_at"))
alert_history = Table("alert_history", meta,
                      Column("id", Integer, primary_key=True), Column("alert_id", String(160), index=True),
                      Column("at", Float), Column("state", String(16)), Column("level", String(16)),
                      Column("who", String(128), nullable=True))


def ticket_row(site: str, e: TicketEvent, received_at: float) -> dict[str, Any]:
    """The ``ticket_events`` row of an event: the whole event as JSON, and apart what history reads filter and
    count by (the service in its own column, so those reads never decode the JSON)."""
    return dict(site=site, kind=e.kind, ticket=e.ticket, ts=e.ts, received_at=received_at, event=e.to_dict(),
                service=e.service or None)


def _epoch(stamp: str | None) -> float | None:
    return None if stamp is None else parse_ts(stamp)


class Storage:
    """One database. Callers serialise access (the hub holds its lock); occupancy is written in batches.

    The URL has no default: a library caller that forgot it would otherwise leave a SQLite file in whatever
    folder it ran from (``hallgrid hub --db`` has its own, documented default)."""

    def __init__(self, url: str):
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False}
            if url in ("sqlite://", "sqlite:///:memory:"):
                kwargs["poolclass"] = StaticPool
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _pragmas(conn, _record):   # WAL: readers (the API) do not block the writer
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()
        from hub.storage.migrate import upgrade

        upgrade(self.engine)     # the schema is the migrations' (an old hall database is adopted, then upgraded)

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        self.engine.dispose()

    # --- writes ------------------------------------------------------------------------------------
    def add_occupancy(self, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(occupancy), rows)

    def add_ticket_event(self, site: str, e: TicketEvent, received_at: float) -> None:
        self.add_ticket_events(site, [e], received_at)

    def add_ticket_events(self, site: str, events: list[TicketEvent], received_at: float) -> None:
        """Several events in one transaction: all stored or none."""
        if events:
            with self.engine.begin() as conn:
                conn.execute(insert(ticket_events), [ticket_row(site, e, received_at) for e in events])

    def save_alert(self, alert: Alert, who: str | None = None) -> None:
        """Upsert the alert and append its state change to the history."""
        row = dict(site=alert.site, key=alert.key, state=alert.state, raised_at=_epoch(alert.raised_at),
                   resolved_at=_epoch(alert.resolved_at), alert=alert.to_dict())
        with self.engine.begin() as conn:
            if conn.execute(update(alerts).where(alerts.c.id == alert.id).values(**row)).rowcount == 0:
                conn.execute(insert(alerts).values(id=alert.id, **row))
            conn.execute(insert(alert_history).values(alert_id=alert.id, at=_epoch(alert.updated_at),
                                                      state=alert.state, level=alert.level, who=who))

    # --- reads -------------------------------------------------------------------------------------
    def open_alerts(self, site: str) -> list[Alert]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(alerts.c.alert).where(alerts.c.site == site, alerts.c.state != RESOLVED))
            return [Alert.from_dict(r.alert) for r in rows]

    def has_alert(self, alert_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(alerts.c.id).where(alerts.c.id == alert_id)).first() is not None

    def last_resolved(self, site: str) -> dict[str, float]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(alerts.c.key, alerts.c.resolved_at)
                                .where(alerts.c.site == site, alerts.c.state == RESOLVED))
            out: dict[str, float] = {}
            for r in rows:
                out[r.key] = max(out.get(r.key, 0.0), r.resolved_at or 0.0)
            return out

    def alerts(self, site: str | None = None, state: str | None = None, limit: int = 200) -> list[Alert]:
        q = select(alerts.c.alert).order_by(alerts.c.raised_at.desc()).limit(limit)
        if site:
            q = q.where(alerts.c.site == site)
        if state:
            q = q.where(alerts.c.state == state)
        with self.engine.connect() as conn:
            return [Alert.from_dict(r.alert) for r in conn.execute(q)]

    def history(self, alert_id: str) -> list[dict[str, Any]]:
        q = select(alert_history).where(alert_history.c.alert_id == alert_id).order_by(alert_history.c.id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def ticket_events(self, site: str, since: float | None = None) -> list[dict[str, Any]]:
        q = select(ticket_events.c.event, ticket_events.c.received_at).where(ticket_events.c.site == site)
        if since is not None:
            q = q.where(ticket_events.c.ts >= since)
        with self.engine.connect() as conn:
            return [{"event": r.event, "received_at": r.received_at} for r in conn.execute(q.order_by(ticket_events.c.id))]

    def occupancy_count(self, site: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(occupancy).where(occupancy.c.site == site)).scalar_one()
