"""store.welcomes on SQLite and PostgreSQL: an owed welcome is claimed by one caller only, sent
once, retried when due, and a claim a dead process left is closed as sent."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine

from speakerfeed.store import people, welcomes
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import upgrade

NOW = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)


@pytest.fixture
def migrated(engine: Engine) -> Engine:
    upgrade(engine)
    return engine


def _person(conn: Connection, email: str = "ann@example.org") -> str:
    subscriber_id = repo.add_subscriber(conn, email, name="Ann")
    repo.subscribe(conn, subscriber_id, "daily", status="confirmed", consent={"action": "test"})
    return subscriber_id


def test_an_owed_welcome_is_claimed_once_then_done(migrated: Engine) -> None:
    with migrated.begin() as conn:
        ann = _person(conn)
        assert welcomes.state_of(conn, ann, "daily") is None
        welcomes.owe(conn, ann, "daily", now=NOW)
        assert welcomes.due(conn, now=NOW, limit=10) == [welcomes.OwedWelcome(ann, "daily", 0)]
        assert welcomes.claim(conn, ann, "daily", now=NOW) == 0
        assert welcomes.claim(conn, ann, "daily", now=NOW) is None  # taken
        assert welcomes.due(conn, now=NOW, limit=10) == []
        welcomes.finish(conn, ann, "daily", "sent", now=NOW)
        assert welcomes.state_of(conn, ann, "daily") == "sent"
        assert welcomes.claim(conn, ann, "daily", now=NOW + timedelta(days=1)) is None
        # A new subscription after leaving (confirmed again) is owed a new welcome.
        welcomes.owe(conn, ann, "daily", now=NOW + timedelta(days=30))
        assert welcomes.state_of(conn, ann, "daily") == "owed"


def test_a_failed_try_waits_for_its_time_and_counts(migrated: Engine) -> None:
    with migrated.begin() as conn:
        ann = _person(conn)
        welcomes.owe(conn, ann, "daily", now=NOW)
        assert welcomes.claim(conn, ann, "daily", now=NOW) == 0
        welcomes.retry_later(conn, ann, "daily", at=NOW + timedelta(minutes=1), now=NOW)
        assert welcomes.due(conn, now=NOW + timedelta(seconds=59), limit=10) == []
        assert welcomes.claim(conn, ann, "daily", now=NOW + timedelta(seconds=59)) is None
        later = NOW + timedelta(minutes=1)
        assert welcomes.due(conn, now=later, limit=10) == [welcomes.OwedWelcome(ann, "daily", 1)]
        assert welcomes.claim(conn, ann, "daily", now=later) == 1


def test_two_callers_at_once_never_both_claim(migrated: Engine) -> None:
    with migrated.begin() as conn:
        ann = _person(conn)
        welcomes.owe(conn, ann, "daily", now=NOW)

    def claim() -> int | None:
        with migrated.begin() as conn:
            return welcomes.claim(conn, ann, "daily", now=NOW)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: claim(), range(4)))
    assert sorted(results, key=lambda r: r is None) == [0, None, None, None]


def test_a_claim_left_by_a_dead_process_is_closed_as_sent(migrated: Engine) -> None:
    with migrated.begin() as conn:
        ann, bob = _person(conn), _person(conn, "bob@example.org")
        for who in (ann, bob):
            welcomes.owe(conn, who, "daily", now=NOW)
        welcomes.claim(conn, ann, "daily", now=NOW)
        welcomes.claim(conn, bob, "daily", now=NOW + timedelta(minutes=20))
        closed = welcomes.close_stale_claims(
            conn, claimed_before=NOW + timedelta(minutes=15), now=NOW + timedelta(minutes=30)
        )
        assert closed == 1
        assert welcomes.state_of(conn, ann, "daily") == "sent"
        assert welcomes.state_of(conn, bob, "daily") == "sending"  # still in its process's hands


def test_an_erased_subscriber_takes_their_welcome_along(migrated: Engine) -> None:
    with migrated.begin() as conn:
        ann = _person(conn)
        welcomes.owe(conn, ann, "daily", now=NOW)
        assert people.erase(conn, "ann@example.org", b"store-test-secret-0123456789abcd")
        assert welcomes.due(conn, now=NOW, limit=10) == []
