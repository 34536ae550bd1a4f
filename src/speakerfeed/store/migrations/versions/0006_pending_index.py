"""The ledger's state index becomes an index of pending rows only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24

Claiming is the only hot reader: it wants a send's pending rows in subscriber order. With every
row in the index, each row of a send was moved in it twice (pending -> sending -> sent); with
only the pending ones, a claim deletes its entries and recording a result touches no index at
all: a third less work per recipient in SQLite, and on PostgreSQL the recording updates can be
HOT (no indexed column changes). The rare readers of other states (counts, a restart's look for
rows left in flight) read the send's rows by the primary key instead.

Written by hand to match speakerfeed.store.schema.deliveries.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_deliveries_send_state", table_name="deliveries")
    op.create_index(
        "ix_deliveries_pending",
        "deliveries",
        ["send_id", "subscriber_id"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_pending", table_name="deliveries")
    op.create_index("ix_deliveries_send_state", "deliveries", ["send_id", "state", "subscriber_id"])
