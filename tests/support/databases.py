"""The ``engine`` fixture: each storage test runs on SQLite and on PostgreSQL.

Load it as a pytest plugin (``"tests.support.databases"`` in tests/conftest.py's pytest_plugins).

- ``engine`` is parametrised ``sqlite`` (a file in the test's tmp_path) and ``postgresql`` (a
  database created for this test session on 127.0.0.1:5432 as user postgres, dropped at the end).
  It is empty, not migrated; the PostgreSQL database is emptied again after each test.
- When PostgreSQL cannot be reached, the ``postgresql`` cases skip, saying why (a failure under
  CI=true, see conftest.py). ``SPEAKERFEED_TEST_PG`` overrides the server's URL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from speakerfeed.store.engine import engine_for_url

PG_SERVER = os.environ.get(
    "SPEAKERFEED_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for this session, dropped afterwards."""
    import psycopg

    server = make_url(PG_SERVER)
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"speakerfeed_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(conninfo, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL is not reachable at {server.host}:{server.port}: {exc}".strip()
        print(reason)
        pytest.skip(reason)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = engine_for_url(f"sqlite:///{tmp_path / 'store.sqlite3'}")
        try:
            yield made
        finally:
            made.dispose()
        return
    made = engine_for_url(request.getfixturevalue("postgresql_url"))
    try:
        yield made
    finally:
        # Empty the session's database for the next test: cheaper than a database per test.
        with made.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        made.dispose()
