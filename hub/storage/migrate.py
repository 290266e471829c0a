"""Schema migrations (Alembic) run by the hub at start, and the adoption of a database made before them.

The migrations ship inside the package (``hub/storage/migrations``), so an installed
wheel upgrades a hall's database without an ``alembic.ini`` or a source checkout.
A database created by the first releases (``create_all``, no ``alembic_version``
table) holds exactly the initial revision's schema: it is stamped with that
revision, then upgraded like any other, keeping its rows.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

INITIAL = "0001"                 # the schema of the releases before migrations
MIGRATION_LOCK = 0x68616C6C      # PostgreSQL advisory lock: hubs starting together migrate one at a time


def config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "hub.storage:migrations")
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(config()).get_current_head()


def current(engine: Engine) -> str | None:
    """The database's revision (None: empty, or made before migrations)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision``: adopt a pre-migration database, then apply what is missing.

    One transaction on PostgreSQL (its DDL is transactional), under an advisory lock so
    that several hubs starting on one empty database do not create the tables twice."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        cfg = config(conn)
        tables = set(inspect(conn).get_table_names())
        if "alembic_version" not in tables and "alerts" in tables:
            command.stamp(cfg, INITIAL)
        command.upgrade(cfg, revision)
