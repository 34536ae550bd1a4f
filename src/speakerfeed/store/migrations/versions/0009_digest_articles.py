"""Which articles went into which digest, per list and cadence, recovered from the web archive.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

A list's next digest used to take the articles published after its last digest's time, read
back from public/digests/: an article added later but dated earlier was never sent, and deleting
the output folder started the list over. The table records each digest's articles instead
(store.inclusions). What earlier digests held is read once, here, from their digest.json files:
``store.engine.upgrade`` is given a function that reads them (``archived_digests`` in
``config.attributes``); without one (a database that never had digests) nothing is recovered.

Written by hand to match speakerfeed.store.schema.digest_articles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import sqlalchemy as sa
from alembic import context, op

from speakerfeed.store import inclusions

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "digest_articles",
        sa.Column("list_name", sa.String(40), nullable=False),
        sa.Column("cadence", sa.String(16), nullable=False),
        sa.Column("article_hash", sa.String(64), nullable=False),
        sa.Column("article_id", sa.Text(), nullable=False),
        sa.Column("digest_id", sa.String(120), nullable=False),
        sa.Column("included_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "list_name", "cadence", "article_hash", name=op.f("pk_digest_articles")
        ),
    )
    op.create_index(
        op.f("ix_digest_articles_digest_id"), "digest_articles", ["digest_id"], unique=False
    )
    archived: Callable[[], Iterable[inclusions.PastDigest]] | None = context.config.attributes.get(
        "archived_digests"
    )
    if archived is not None and table is not None:
        inclusions.recover(op.get_bind(), archived(), table)


def downgrade() -> None:
    op.drop_index(op.f("ix_digest_articles_digest_id"), table_name="digest_articles")
    op.drop_table("digest_articles")
