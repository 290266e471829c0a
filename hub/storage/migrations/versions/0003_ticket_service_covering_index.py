"""The ticket's service as a column, and an index that covers the history reads.

The forecast, the plan and the review read weeks of ticket events by site and time but need only
the time, kind, ticket number and, on issued tickets, the service. The service used to live only in
the event's JSON, so every such read went from the (site, ts) index to the table row and decoded the
document: the hub's first forecast of the day for 100 sites spent most of its time there. With the
service in its own column, one index on (site, ts, kind, ticket, service) answers those reads alone
(an index-only scan on both databases); it begins with (site, ts), so it also serves every read the
index it replaces served. Existing rows are filled from their JSON once, in the upgrade.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COVERING = ["site", "ts", "kind", "ticket", "service"]


def upgrade() -> None:
    op.add_column("ticket_events", sa.Column("service", sa.String(64), nullable=True))
    events = sa.table("ticket_events", sa.column("service", sa.String(64)), sa.column("event", sa.JSON()))
    op.execute(events.update().values(service=events.c.event["service"].as_string()))   # JSON operator per database
    op.create_index("ix_ticket_events_site_ts_covering", "ticket_events", COVERING)
    op.drop_index("ix_ticket_events_site_ts", "ticket_events")


def downgrade() -> None:
    op.create_index("ix_ticket_events_site_ts", "ticket_events", ["site", "ts"])
    op.drop_index("ix_ticket_events_site_ts_covering", "ticket_events")
    with op.batch_alter_table("ticket_events") as batch:
        batch.drop_column("service")
