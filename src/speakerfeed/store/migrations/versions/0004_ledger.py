"""The delivery ledger: one row per send, one per (send, subscriber).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Written by hand to match speakerfeed.store.schema.sends and deliveries.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SEND_STATES = "state IN ('sending', 'paused', 'done', 'cancelled')"
_DELIVERY_STATES = "state IN ('pending', 'sending', 'sent', 'failed', 'unknown', 'skipped')"


def upgrade() -> None:
    op.create_table(
        "sends",
        sa.Column("id", sa.String(120), nullable=False),
        sa.Column("list_name", sa.String(40), nullable=False),
        sa.Column("cadence", sa.String(16), server_default="", nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("view_url", sa.Text(), server_default="", nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("errors", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.CheckConstraint(_SEND_STATES, name=op.f("ck_sends_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sends")),
    )
    op.create_table(
        "deliveries",
        sa.Column("send_id", sa.String(120), nullable=False),
        sa.Column("subscriber_id", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(64), server_default="", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider_id", sa.String(200), server_default="", nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.CheckConstraint(_DELIVERY_STATES, name=op.f("ck_deliveries_state")),
        sa.ForeignKeyConstraint(
            ["send_id"],
            ["sends.id"],
            name=op.f("fk_deliveries_send_id_sends"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("send_id", "subscriber_id", name=op.f("pk_deliveries")),
    )
    op.create_index("ix_deliveries_send_state", "deliveries", ["send_id", "state", "subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_send_state", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("sends")
