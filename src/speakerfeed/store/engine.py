"""Connecting to the store (SQLite or PostgreSQL) and migrating it with Alembic."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url

from speakerfeed.config import Settings
from speakerfeed.store.inclusions import PastDigest
from speakerfeed.store.write_turns import WriteTurns

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Long enough to ride out another process's write transaction, short enough to report a stuck one.
SQLITE_BUSY_TIMEOUT_MS = 5000


def database_url(settings: Settings) -> URL:
    """[store] url with a relative SQLite path made relative to the configuration file's folder."""
    url = make_url(settings.store.url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not Path(database).is_absolute():
            url = url.set(database=str(settings.path(database)))
    return url


def create_engine_for(settings: Settings) -> Engine:
    return engine_for_url(database_url(settings))


def engine_for_url(url: str | URL) -> Engine:
    """An engine for a sqlite:// or postgresql:// URL; PostgreSQL always through psycopg 3."""
    url = make_url(url)
    if url.get_backend_name() == "postgresql":
        return create_engine(url.set(drivername="postgresql+psycopg"), pool_pre_ping=True)
    if url.get_backend_name() != "sqlite":
        raise ValueError(f"expected a sqlite or postgresql URL, got {url.drivername}")
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    event.listen(engine, "connect", _sqlite_pragmas)
    WriteTurns(SQLITE_BUSY_TIMEOUT_MS / 1000).install(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Per connection, because SQLite keeps these per connection (WAL sticks to the file, but
    # setting it again is harmless). WAL lets readers run during a write; foreign keys are off
    # in SQLite unless asked for.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def alembic_config() -> Config:
    """Alembic's configuration without an alembic.ini: the migrations ship inside the package."""
    config = Config()
    # ConfigParser interpolates %, so a % in the install path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def upgrade(
    engine: Engine,
    revision: str = "head",
    *,
    archived_digests: Callable[[], Iterable[PastDigest]] | None = None,
) -> str:
    """Apply every pending migration in one transaction; return the revision now in force.
    ``archived_digests`` reads what earlier digests held, for migration 0009 to record (it is
    called only when that migration runs)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["archived_digests"] = archived_digests
        command.upgrade(config, revision)
    return current_revision(engine) or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_connection(engine: Engine) -> None:
    """Raises when the database cannot answer a trivial query (the health check)."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
