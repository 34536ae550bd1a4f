"""The welcome emails confirmed subscriptions are owed, until sent (store.welcomes).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

Written by hand to match speakerfeed.store.schema.welcomes; types spelt out, not imported.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_STATES = "state IN ('owed', 'sending', 'sent', 'failed', 'dropped')"


def upgrade() -> None:
    op.create_table(
        "welcomes",
        sa.Column("subscriber_id", sa.String(32), nullable=False),
        sa.Column("list_name", sa.String(40), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_STATES, name=op.f("ck_welcomes_state")),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_welcomes_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscriber_id", "list_name", name=op.f("pk_welcomes")),
    )
    op.create_index("ix_welcomes_state", "welcomes", ["state", "next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_welcomes_state", table_name="welcomes")
    op.drop_table("welcomes")
