"""A send records whether its ledger holds its whole audience yet.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25

The senders now add a send's rows a batch at a time as they go (store.ledger.claim_audience),
instead of all of them before the first message: for a list of 1,000,000 that was two seconds
of one core with the other idle. Existing sends hold their whole audience already, hence the
default.

Written by hand to match speakerfeed.store.schema.sends.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "sends",
        sa.Column("audience_complete", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    with op.batch_alter_table("sends") as batch:
        batch.drop_column("audience_complete")
