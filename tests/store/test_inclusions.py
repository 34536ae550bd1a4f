"""The record of which articles went into which digest, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, Engine, exc, select

from speakerfeed.store import inclusions, ledger
from speakerfeed.store.engine import upgrade
from speakerfeed.store.inclusions import PastDigest
from speakerfeed.store.schema import digest_articles

NOW = datetime(2023, 11, 30, 7, tzinfo=UTC)
# Upstream ids are whatever a feed says: a URL with a long query, non-ASCII, or very long.
ODD_IDS = [
    "tag:www.speakernews.co.uk,2023-11-29:articles/000_d49d9c5f78f68bb1",
    "https://wire.example/story?" + "utm_source=x&" * 400,
    "urn:uuid:ÄÖÜ-“quoted”-\u2028-end",
    "x" * 10_000,
]


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    upgrade(engine)
    with engine.begin() as connection:
        yield connection


def test_a_list_without_digests_has_no_history_then_its_articles_are_known(
    conn: Connection,
) -> None:
    assert inclusions.included(conn, "daily", "", ODD_IDS) is None
    inclusions.record(conn, "daily-2023-11-30-0700", "daily", "", ODD_IDS[:3], at=NOW)
    assert inclusions.included(conn, "daily", "", ODD_IDS) == frozenset(ODD_IDS[:3])
    # Each cadence and each list has its own history.
    assert inclusions.included(conn, "daily", "weekly", ODD_IDS) is None
    assert inclusions.included(conn, "politics", "", ODD_IDS) is None
    assert inclusions.digests_of(conn, "daily") == {"daily-2023-11-30-0700": sorted(ODD_IDS[:3])}


def test_an_empty_digest_still_ends_the_first_one(conn: Connection) -> None:
    content = ledger.SendContent(subject="Nothing new", html="<p/>", text="", view_url="")
    ledger.create_send(conn, "daily-2023-11-30-0700", "daily", content, scheduled_at=NOW)
    assert inclusions.included(conn, "daily", "", ODD_IDS) == frozenset()
    assert inclusions.included(conn, "daily", "weekly", ODD_IDS) is None


def test_an_article_goes_into_one_digest_of_a_cadence_only(conn: Connection) -> None:
    inclusions.record(conn, "daily-2023-11-30-0700", "daily", "", [ODD_IDS[3]], at=NOW)
    inclusions.record(conn, "daily-weekly-2023-11-30-0700", "daily", "weekly", [ODD_IDS[3]], at=NOW)
    with pytest.raises(exc.IntegrityError), conn.begin_nested():
        inclusions.record(conn, "daily-2023-12-01-0700", "daily", "", [ODD_IDS[3]], at=NOW)


def test_many_candidates_are_asked_about_in_chunks(conn: Connection) -> None:
    ids = [f"tag:example.org,2023:{n}" for n in range(1_234)]
    inclusions.record(conn, "daily-1", "daily", "", ids[::2], at=NOW)
    assert inclusions.included(conn, "daily", "", ids) == frozenset(ids[::2])


def test_recovery_keeps_the_first_digest_of_an_article_and_skips_foreign_records(
    conn: Connection,
) -> None:
    london = timezone(timedelta(hours=1))
    past = [
        PastDigest(
            "daily-2023-07-02-0700", "daily", "", datetime(2023, 7, 2, 7, tzinfo=london), ("b", "c")
        ),
        PastDigest(
            "daily-2023-07-01-0700", "daily", "", datetime(2023, 7, 1, 7, tzinfo=london), ("a", "b")
        ),
        PastDigest("x" * 121, "daily", "", NOW, ("d",)),  # an id no digest of ours has
        PastDigest("y", "a-list-name-far-longer-than-forty-characters", "", NOW, ("e",)),
    ]
    assert inclusions.recover(conn, past) == 3
    assert inclusions.digests_of(conn, "daily") == {
        "daily-2023-07-01-0700": ["a", "b"],
        "daily-2023-07-02-0700": ["c"],
    }
    times = conn.execute(select(digest_articles.c.included_at).distinct()).scalars().all()
    assert sorted(times) == [
        datetime(2023, 7, 1, 6, tzinfo=UTC),
        datetime(2023, 7, 2, 6, tzinfo=UTC),
    ]


@pytest.mark.perf
def test_the_lookup_stays_fast_when_the_database_reuses_its_plan(conn: Connection) -> None:
    """PostgreSQL plans a statement generically once one connection has run it ten times
    (psycopg prepares it after five); as ``= ANY(array)`` that compared every row with every
    id, twenty times slower. Timed against itself, so a slow machine does not matter."""
    ids = [f"tag:www.speakernews.co.uk,2023:{n}" for n in range(20_000)]
    inclusions.record(conn, "daily-1", "daily", "", ids, at=NOW)
    candidates = ids[-500:] + [f"new-{n}" for n in range(500)]
    times = []
    for _ in range(14):
        start = time.perf_counter()
        assert inclusions.included(conn, "daily", "", candidates) == frozenset(ids[-500:])
        times.append(time.perf_counter() - start)
    first, last = sorted(times[1:5])[1], sorted(times[-4:])[1]
    assert last < 5 * first, [round(t * 1000) for t in times]
