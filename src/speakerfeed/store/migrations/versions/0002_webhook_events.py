"""The event ids of processed SendGrid webhook events, so a redelivery is applied once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Written by hand to match speakerfeed.store.schema.webhook_events; types spelt out, not imported.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_webhook_events")),
    )


def downgrade() -> None:
    op.drop_table("webhook_events")
