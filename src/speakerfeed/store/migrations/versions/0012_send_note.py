"""A send keeps the editor's note it was opened with.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

The note (notes/<list>.md) is rendered into the send's HTML and text, which are kept already;
its Markdown is kept too, so that once the send is done the note is filed away only if the
editor has not changed it meanwhile (digest.note). Existing sends had no note, hence "".

Written by hand to match speakerfeed.store.schema.sends.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sends", sa.Column("editor_note", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("sends") as batch:
        batch.drop_column("editor_note")
