"""The schema of the releases before migrations (made by ``create_all``): adopted as it is.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table("occupancy",
                    sa.Column("id", sa.Integer(), primary_key=True), sa.Column("site", sa.String(64)),
                    sa.Column("camera", sa.String(64)), sa.Column("zone", sa.String(64)), sa.Column("ts", sa.Float()),
                    sa.Column("count", sa.Integer()), sa.Column("raw", sa.Integer()), sa.Column("seq", sa.Integer()))
    op.create_index("ix_occupancy_site", "occupancy", ["site"])
    op.create_index("ix_occupancy_ts", "occupancy", ["ts"])
    op.create_table("ticket_events",
                    sa.Column("id", sa.Integer(), primary_key=True), sa.Column("site", sa.String(64)),
                    sa.Column("kind", sa.String(16)), sa.Column("ticket", sa.String(64)), sa.Column("ts", sa.Float()),
                    sa.Column("received_at", sa.Float()), sa.Column("event", sa.JSON()))
    op.create_index("ix_ticket_events_site", "ticket_events", ["site"])
    op.create_table("alerts",
                    sa.Column("id", sa.String(160), primary_key=True), sa.Column("site", sa.String(64)),
                    sa.Column("key", sa.String(160)), sa.Column("state", sa.String(16)),
                    sa.Column("raised_at", sa.Float()), sa.Column("resolved_at", sa.Float(), nullable=True),
                    sa.Column("alert", sa.JSON()))
    op.create_index("ix_alerts_site", "alerts", ["site"])
    op.create_index("ix_alerts_key", "alerts", ["key"])
    op.create_index("ix_alerts_state", "alerts", ["state"])
    op.create_table("alert_history",
                    sa.Column("id", sa.Integer(), primary_key=True), sa.Column("alert_id", sa.String(160)),
                    sa.Column("at", sa.Float()), sa.Column("state", sa.String(16)), sa.Column("level", sa.String(16)),
                    sa.Column("who", sa.String(128), nullable=True))
    op.create_index("ix_alert_history_alert_id", "alert_history", ["alert_id"])


def downgrade() -> None:
    for table in ("alert_history", "alerts", "ticket_events", "occupancy"):
        op.drop_table(table)
