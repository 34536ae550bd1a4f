"""store.suppressions on SQLite and PostgreSQL: why an address is suppressed, and lifting it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine

from speakerfeed.store import subscribers as repo
from speakerfeed.store import suppressions
from speakerfeed.store.engine import upgrade

SECRET = b"test-secret"


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    upgrade(engine)
    with engine.begin() as connection:
        yield connection


def test_reason_of_a_suppressed_address(conn: Connection) -> None:
    ann = repo.address_hash(SECRET, "ann@example.org")
    bob = repo.address_hash(SECRET, "bob@example.org")
    assert suppressions.reason_of(conn, ann) is None
    repo.suppress(conn, ann, "bounced")
    assert suppressions.reason_of(conn, ann) == "bounced"
    assert suppressions.reason_of(conn, bob) is None


def test_lift_removes_only_a_suppression_for_that_reason(conn: Connection) -> None:
    ann = repo.address_hash(SECRET, "ann@example.org")
    bob = repo.address_hash(SECRET, "bob@example.org")
    repo.suppress(conn, ann, "unsubscribed")
    repo.suppress(conn, bob, "complained")
    assert not suppressions.lift(conn, bob, "unsubscribed")
    assert suppressions.reason_of(conn, bob) == "complained"
    assert suppressions.lift(conn, ann, "unsubscribed")
    assert suppressions.reason_of(conn, ann) is None
    assert not repo.is_suppressed(conn, ann)
    assert not suppressions.lift(conn, ann, "unsubscribed")  # already gone
