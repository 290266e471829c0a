"""Storage schema on SQLite and a real PostgreSQL: Alembic migrations equal the models, an old hall
database (made by ``create_all`` before migrations) is adopted with its history, and the history
queries read through the composite indexes."""

from __future__ import annotations

import threading
from zoneinfo import ZoneInfo

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (JSON, Column, Float, Integer, MetaData, String, Table, create_engine, event, inspect, insert,
                        select)

from edge.contract import iso_ts
from hub.alerts import Alert
from hub.board import zone_series
from hub.planning.history import read_site_history
from hub.review.summary import review
from hub.storage import Storage, meta, ticket_row
from hub.storage.migrate import INITIAL, config, current, head, upgrade
from hub.tickets import parse

T0 = 1_800_000_000.0

# The schema as the releases before migrations made it (hub/storage.py's tables then, frozen here):
# what an existing hall's database holds.
legacy = MetaData()
Table("occupancy", legacy,
      Column("id", Integer, primary_key=True), Column("site", String(64), index=True),
      Column("camera", String(64)), Column("zone", String(64)), Column("ts", Float, index=True),
      Column("count", Integer), Column("raw", Integer), Column("seq", Integer))
Table("ticket_events", legacy,
      Column("id", Integer, primary_key=True), Column("site", String(64), index=True),
      Column("kind", String(16)), Column("ticket", String(64)), Column("ts", Float),
      Column("received_at", Float), Column("event", JSON))
Table("alerts", legacy,
      Column("id", String(160), primary_key=True), Column("site", String(64), index=True),
      Column("key", String(160), index=True), Column("state", String(16), index=True),
      Column("raised_at", Float), Column("resolved_at", Float, nullable=True), Column("alert", JSON))
Table("alert_history", legacy,
      Column("id", Integer, primary_key=True), Column("alert_id", String(160), index=True),
      Column("at", Float), Column("state", String(16)), Column("level", String(16)),
      Column("who", String(128), nullable=True))


def schema_diff(engine, metadata) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata)


def an_alert(n: int, state: str = "open") -> Alert:
    return Alert(id=f"hall-1-long-wait-billing-{n}", site="hall-1", key="long_wait:billing", kind="long_wait",
                 level="warning", state=state, owner="duty_manager", suggestion="open counter 4", figures={},
                 raised_at=iso_ts(T0 + n), updated_at=iso_ts(T0 + n),
                 resolved_at=iso_ts(T0 + 60) if state == "resolved" else None)


def test_migrations_give_exactly_the_models(db_url):
    storage = Storage(db_url)
    try:
        assert current(storage.engine) == head()
        assert schema_diff(storage.engine, meta) == []        # autogenerate would write nothing
        assert sorted(inspect(storage.engine).get_table_names()) == sorted([*meta.tables, "alembic_version"])
    finally:
        storage.close()


def test_downgrade_to_initial_is_the_old_schema_and_upgrades_again(db_url):
    storage = Storage(db_url)
    try:
        with storage.engine.begin() as conn:
            command.downgrade(config(conn), INITIAL)
        assert current(storage.engine) == INITIAL
        assert schema_diff(storage.engine, legacy) == []     # the initial revision is today's schema exactly
        upgrade(storage.engine)
        assert current(storage.engine) == head() and schema_diff(storage.engine, meta) == []
    finally:
        storage.close()


def test_a_database_from_before_migrations_is_adopted_with_its_history(db_url):
    engine = create_engine(db_url)
    legacy.create_all(engine)                # what today's hall database looks like
    old_open, old_done = an_alert(1), an_alert(2, state="resolved")
    with engine.begin() as conn:
        for a in (old_open, old_done):
            conn.execute(insert(legacy.tables["alerts"]).values(
                id=a.id, site=a.site, key=a.key, state=a.state, raised_at=T0, alert=a.to_dict(),
                resolved_at=T0 + 60 if a.state == "resolved" else None))
            conn.execute(insert(legacy.tables["alert_history"]).values(alert_id=a.id, at=T0, state=a.state,
                                                                       level=a.level, who="li.duty"))
        conn.execute(insert(legacy.tables["ticket_events"]).values(
            site="hall-1", kind="issued", ticket="A1", ts=T0, received_at=T0,
            event={"event": "issued", "ticket": "A1", "service": "billing", "ts": iso_ts(T0)}))
        conn.execute(insert(legacy.tables["occupancy"]), [
            {"site": "hall-1", "camera": "cam1", "zone": "waiting-a", "ts": T0 + i, "count": i, "raw": i, "seq": i}
            for i in range(5)])
    assert current(engine) is None
    engine.dispose()

    storage = Storage(db_url)               # the upgraded hub starts on it
    try:
        assert current(storage.engine) == head()
        assert schema_diff(storage.engine, meta) == []
        assert [a.id for a in storage.open_alerts("hall-1")] == [old_open.id]
        assert storage.last_resolved("hall-1") == {"long_wait:billing": T0 + 60}
        assert [h["who"] for h in storage.history(old_open.id)] == ["li.duty"]
        assert [r["event"]["ticket"] for r in storage.ticket_events("hall-1", since=T0 - 1)] == ["A1"]
        with storage.engine.connect() as conn:     # migration 0003 copied the service out of the stored JSON
            assert conn.execute(select(meta.tables["ticket_events"].c.service)).scalars().all() == ["billing"]
        assert storage.occupancy_count("hall-1") == 5
        storage.add_ticket_event("hall-1", parse({"event": "issued", "ticket": "A2", "service": "billing"}, T0 + 9),
                                 T0 + 9)                        # and it carries on writing
        assert len(storage.ticket_events("hall-1")) == 2
    finally:
        storage.close()
    again = Storage(db_url)                 # the next start: already at head, nothing to do
    assert current(again.engine) == head() and again.occupancy_count("hall-1") == 5
    again.close()


def test_hubs_starting_together_on_an_empty_postgresql_migrate_once(postgres_url):
    errors, stores = [], []

    def start():
        try:
            stores.append(Storage(postgres_url))
        except Exception as exc:      # noqa: BLE001 - the test reports any failure of a concurrent start
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == [] and len(stores) == 4
        assert current(stores[0].engine) == head() and schema_diff(stores[0].engine, meta) == []
    finally:
        for s in stores:
            s.close()


def captured_sql(storage: Storage, fn):
    """Run ``fn`` and return the statements (with parameters) it sent, so EXPLAIN sees the code's own queries."""
    seen = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(storage.engine, "before_cursor_execute", grab)
    try:
        fn()
    finally:
        event.remove(storage.engine, "before_cursor_execute", grab)
    assert seen, "the call ran no query"
    return seen


def plan(storage: Storage, statement: str, parameters, settings: tuple[str, ...] = ()) -> str:
    prefix = "EXPLAIN QUERY PLAN " if storage.engine.dialect.name == "sqlite" else "EXPLAIN "
    with storage.engine.connect() as conn:
        for setting in settings:
            conn.exec_driver_sql(setting)
        return "\n".join(" ".join(map(str, r)) for r in conn.exec_driver_sql(prefix + statement, parameters))


def test_history_queries_read_through_the_composite_indexes(db_url):
    storage = Storage(db_url)
    try:
        # four weeks of a minute-by-minute series for three halls and three zones, tickets and alerts
        sites, zones = ["hall-1", "hall-2", "hall-3"], ["waiting-a", "waiting-b", "entrance"]
        rows = [{"site": s, "camera": "cam1", "zone": z, "ts": T0 + 60 * m, "count": m % 9, "raw": m % 9, "seq": m}
                for s in sites for z in zones for m in range(0, 28 * 24 * 60, 12)]
        storage.add_occupancy(rows)
        with storage.engine.begin() as conn:
            conn.execute(insert(meta.tables["ticket_events"]), [
                ticket_row(s, parse({"event": ("issued", "called", "served")[m % 3], "ticket": f"A{m // 3}", "counter": "1",
                                     "service": "billing"}, T0 + 60 * m), T0 + 60 * m)
                for s in sites for m in range(0, 28 * 24 * 60, 7)])
            conn.execute(insert(meta.tables["alerts"]), [
                {"id": f"{s}-{m}", "site": s, "key": f"k{m % 5}", "state": "resolved", "raised_at": T0 + 60 * m,
                 "resolved_at": T0 + 60 * m + 30, "alert": {**an_alert(m).to_dict(), "id": f"{s}-{m}", "site": s}} for s in sites for m in range(0, 28 * 24 * 60, 20)])
        if storage.is_postgresql:      # what autovacuum keeps: statistics, and the visibility map index-only scans use
            with storage.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        day = T0 + 27 * 86400
        tz = ZoneInfo("Asia/Shanghai")
        checks = {
            "ix_occupancy_site_ts": lambda: zone_series(storage, "hall-2", day - 3600, day, 60),
            "ix_ticket_events_site_ts_covering": lambda: storage.ticket_events("hall-2", since=day - 86400),
            "ix_alerts_site_raised_at": lambda: storage.alerts("hall-2", limit=50),
        }
        for index, fn in checks.items():
            for statement, parameters in captured_sql(storage, fn):
                assert index in plan(storage, statement, parameters), (index, statement)
        # the forecast's and the review's reads of weeks of tickets can be answered by the index alone, without the
        # table's rows (nor their JSON). PostgreSQL prefers a bitmap scan on a table this small, so it is asked
        # for an index scan: if the index covers the query, that is an index-only one.
        covered = {
            "history": lambda: read_site_history(storage, "hall-2", tz, day - 21 * 86400, day - 14 * 86400, day, 300.0),
            "review": lambda: review(storage, "hall-2", day - 14 * 86400, day),
        }
        only, settings = (("Index Only Scan using ix_ticket_events_site_ts_covering",
                           ("SET enable_bitmapscan = off", "SET enable_seqscan = off")) if storage.is_postgresql else
                          ("COVERING INDEX ix_ticket_events_site_ts_covering", ()))
        for name, fn in covered.items():
            reads = [(st, p) for st, p in captured_sql(storage, fn) if "ticket_events" in st]
            assert len(reads) == (2 if name == "history" else 1), name
            for statement, parameters in reads:
                assert only in plan(storage, statement, parameters, settings), (name, statement)
        # one zone's weeks (the per-zone history an analyst reads)
        occ = meta.tables["occupancy"]
        week = select(occ.c.ts, occ.c.count).where(occ.c.site == "hall-2", occ.c.zone == "waiting-a",
                                                   occ.c.ts >= day - 7 * 86400, occ.c.ts < day)

        def read_week():
            with storage.engine.connect() as conn:
                return conn.execute(week).all()

        for statement, parameters in captured_sql(storage, read_week):
            assert "ix_occupancy_site_zone_ts" in plan(storage, statement, parameters)
    finally:
        storage.close()


def test_two_halls_on_one_database_keep_their_own_alerts(db_url):
    """The same condition in two halls in the same second: two alerts, each stored and restored for its hall."""
    from hub.service import Hub
    from test_hub_site import hall_site

    from edge.clock import ManualClock

    sites = [hall_site("hall-1", min_duration_s=0), hall_site("hall-2", min_duration_s=0)]
    hub = Hub(sites, Storage(db_url), clock=ManualClock(T0), evaluate_on_message=False)
    for sid in ("hall-1", "hall-2"):
        hub.ingest_ticket(sid, parse({"event": "issued", "ticket": "A1", "service": "billing"}, T0))
    raised = {a.site: a.id for a in hub.tick() if a.key == "long_wait:billing"}
    assert len(set(raised.values())) == 2
    hub.storage.close()
    again = Hub(sites, Storage(db_url), clock=ManualClock(T0 + 5), evaluate_on_message=False)
    assert {sid: again.managers[sid].active["long_wait:billing"].id for sid in raised} == raised
    again.storage.close()
