"""Indexes for reading weeks of history by site and time; the single-column ones they cover go.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("ix_occupancy_site_ts", "occupancy", ["site", "ts"])
    op.create_index("ix_occupancy_site_zone_ts", "occupancy", ["site", "zone", "ts"])
    op.drop_index("ix_occupancy_site", "occupancy")
    op.drop_index("ix_occupancy_ts", "occupancy")
    op.create_index("ix_ticket_events_site_ts", "ticket_events", ["site", "ts"])
    op.drop_index("ix_ticket_events_site", "ticket_events")
    op.create_index("ix_alerts_site_raised_at", "alerts", ["site", "raised_at"])
    op.drop_index("ix_alerts_site", "alerts")


def downgrade() -> None:
    op.create_index("ix_alerts_site", "alerts", ["site"])
    op.drop_index("ix_alerts_site_raised_at", "alerts")
    op.create_index("ix_ticket_events_site", "ticket_events", ["site"])
    op.drop_index("ix_ticket_events_site_ts", "ticket_events")
    op.create_index("ix_occupancy_ts", "occupancy", ["ts"])
    op.create_index("ix_occupancy_site", "occupancy", ["site"])
    op.drop_index("ix_occupancy_site_zone_ts", "occupancy")
    op.drop_index("ix_occupancy_site_ts", "occupancy")
