"""Scheduling: the scheduler's lease (SQLite) and the lists whose schedule is paused.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

Written by hand to match speakerfeed.store.schema.leases and schedule_pauses. APScheduler's own
job table (apscheduler_jobs) is made by APScheduler's job store when the scheduler first starts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("holder", sa.String(80), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "schedule_pauses",
        sa.Column("list_name", sa.String(40), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("list_name", name=op.f("pk_schedule_pauses")),
    )


def downgrade() -> None:
    op.drop_table("schedule_pauses")
    op.drop_table("leases")
