"""The record of each suppression an editor lifts (`speakerfeed suppressions lift`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

Written by hand to match speakerfeed.store.schema.suppression_lifts; types spelt out, not
imported.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppression_lifts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("suppressed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_by", sa.String(200), nullable=False),
        sa.Column("consent_note", sa.Text(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppression_lifts")),
    )
    op.create_index(
        op.f("ix_suppression_lifts_address_hash"), "suppression_lifts", ["address_hash"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_suppression_lifts_address_hash"), table_name="suppression_lifts")
    op.drop_table("suppression_lifts")
