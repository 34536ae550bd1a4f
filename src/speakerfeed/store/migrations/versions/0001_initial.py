"""The subscriber store: subscribers, subscriptions, consent records, suppressions.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Written by hand to match speakerfeed.store.schema; tests/test_store.py checks that autogenerate
finds no difference. Types are spelt out here, not imported, so later schema edits cannot
change what this revision creates. (UTCDateTime is DateTime(timezone=True) underneath.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("timezone", sa.String(64), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
        sa.UniqueConstraint("email", name=op.f("uq_subscribers_email")),
    )
    op.create_table(
        "subscriptions",
        sa.Column("subscriber_id", sa.String(32), nullable=False),
        sa.Column("list_name", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cadence", sa.String(16), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'unsubscribed')",
            name=op.f("ck_subscriptions_status"),
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriptions_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscriber_id", "list_name", name=op.f("pk_subscriptions")),
    )
    op.create_index(
        op.f("ix_subscriptions_list_status"),
        "subscriptions",
        ["list_name", "status", "subscriber_id"],
    )
    op.create_table(
        "consent_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscriber_id", sa.String(32), nullable=False),
        sa.Column("list_name", sa.String(40), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(45), server_default="", nullable=False),
        sa.Column("user_agent", sa.Text(), server_default="", nullable=False),
        sa.Column("form", sa.String(200), server_default="", nullable=False),
        sa.Column("confirmation_message_id", sa.String(200), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_consent_records_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_records")),
    )
    op.create_index(op.f("ix_consent_records_subscriber_id"), "consent_records", ["subscriber_id"])
    op.create_table(
        "suppressions",
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reason IN ('unsubscribed', 'bounced', 'complained', 'erased', 'manual')",
            name=op.f("ck_suppressions_reason"),
        ),
        sa.PrimaryKeyConstraint("address_hash", name=op.f("pk_suppressions")),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_index(op.f("ix_consent_records_subscriber_id"), table_name="consent_records")
    op.drop_table("consent_records")
    op.drop_index(op.f("ix_subscriptions_list_status"), table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_table("subscribers")
