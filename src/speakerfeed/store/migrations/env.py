"""Alembic's environment: run only through speakerfeed.store.engine.upgrade, which passes the
connection in ``config.attributes["connection"]``; there is no alembic.ini and no offline mode."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from speakerfeed.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection) or context.is_offline_mode():
    raise RuntimeError("run migrations with `speakerfeed db upgrade` (store.engine.upgrade)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    compare_type=True,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
