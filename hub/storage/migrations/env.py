"""Alembic environment: always run on the connection ``hub.storage.migrate`` hands over (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from hub.storage import meta

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through hub.storage.migrate.upgrade (it passes the database connection)")
# render_as_batch: SQLite alters a table by copying it, which Alembic does only in batch mode
context.configure(connection=connection, target_metadata=meta, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
