"""The subscriber store on both engines: migrations, constraints, repository functions."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, event, exc, inspect, select, text

from speakerfeed.config import settings_from_mapping
from speakerfeed.errors import ConfigError
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import create_engine_for, database_url, upgrade
from speakerfeed.store.schema import consent_records, metadata, subscribers, subscriptions

SECRET = b"test-secret"
CONSENT = {"action": "subscribed", "ip": "192.0.2.1", "user_agent": "UA", "form": "footer"}
MINIMAL_CONFIG = {
    "site": {"title": "T", "url": "https://example.org", "author": "A"},
    "feeds": {"base_url": "https://example.org/feeds/"},
}


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A migrated database and a connection in a transaction, committed at the end."""
    upgrade(engine)
    with engine.begin() as connection:
        yield connection


def _confirmed(conn: Connection, email: str, list_name: str = "daily") -> str:
    subscriber_id = repo.add_subscriber(conn, email)
    repo.subscribe(conn, subscriber_id, list_name, status="confirmed", consent=CONSENT)
    return subscriber_id


HEAD = "0012"  # the newest migration in store/migrations/versions


def test_migrations_apply_and_are_idempotent(engine: Engine) -> None:
    assert upgrade(engine) == HEAD
    assert upgrade(engine) == HEAD
    tables = set(inspect(engine).get_table_names())
    assert tables == {"alembic_version", *metadata.tables}


def test_autogenerate_finds_no_difference_between_migrations_and_schema(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    # The comparison is not vacuous: a table the migrations lack is reported.
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE suppressions"))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert [d[0] for d in compare_metadata(context, metadata)] == ["add_table"]


def test_a_send_under_way_survives_the_ledger_index_migrations(engine: Engine) -> None:
    from speakerfeed.models import DeliveryResult, Outcome
    from speakerfeed.store import ledger

    upgrade(engine, "0005")  # before the pending-only and covering indexes
    with engine.begin() as conn:
        people = sorted(_confirmed(conn, f"reader{n}@example.org") for n in range(5))
        content = ledger.SendContent(subject="S", html="<p>H</p>", text="T")
        ledger.create_send(conn, "daily-1", "daily", content, scheduled_at=datetime.now(UTC))
        taken = ledger.take(conn, "daily-1", worker="w", limit=2)
        ledger.record(conn, "daily-1", [DeliveryResult(taken.ids[0], Outcome.SENT)])
    assert upgrade(engine) == HEAD
    with engine.begin() as conn:
        counts = ledger.counts(conn, "daily-1")
        assert (counts["sent"], counts["sending"], counts["pending"]) == (1, 1, 3)
        assert ledger.take(conn, "daily-1", worker="w", limit=10).ids == people[2:]
    names = {index["name"] for index in inspect(engine).get_indexes("deliveries")}
    assert "ix_deliveries_pending" in names and "ix_deliveries_send_state" not in names
    columns = {
        index["name"]: index["column_names"]
        for index in inspect(engine).get_indexes("subscriptions")
    }
    assert columns["ix_subscriptions_list_status"][-1] == "cadence"


def test_sqlite_pragmas_and_relative_path(tmp_path: Path) -> None:
    settings = settings_from_mapping(
        {**MINIMAL_CONFIG, "store": {"url": "sqlite:///data/sub.sqlite3"}},
        where="config.toml",
        root=tmp_path,
    )
    assert database_url(settings).database == str(tmp_path / "data" / "sub.sqlite3")
    engine = create_engine_for(settings)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()
    assert (tmp_path / "data" / "sub.sqlite3").is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "expected a sqlite:///path or postgresql://user@host/name URL"),
        ("postgresql+psycopg2://u@h/db", "expected a sqlite:///path or postgresql"),
        ("postgresql://u:hunter2@h/db", "expected no password in the URL"),
    ],
)
def test_store_url_is_validated(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(
            {**MINIMAL_CONFIG, "store": {"url": url}}, where="config.toml", root=Path()
        )
    assert any(message in str(p) and "store.url" in str(p) for p in caught.value.problems)


def test_default_store_is_sqlite_under_var(tmp_path: Path) -> None:
    settings = settings_from_mapping(MINIMAL_CONFIG, where="config.toml", root=tmp_path)
    url = database_url(settings)
    assert url.get_backend_name() == "sqlite"
    assert url.database == str(tmp_path / "var" / "speakerfeed.sqlite3")


def test_check_constraints_refuse_bad_status_and_reason(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        subscriber_id = repo.add_subscriber(connection, "a@example.org")
    now = datetime.now(UTC)
    with pytest.raises(exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            subscriptions.insert().values(
                subscriber_id=subscriber_id,
                list_name="daily",
                status="maybe",
                created_at=now,
                updated_at=now,
            )
        )
    with pytest.raises(exc.IntegrityError), engine.begin() as connection:
        repo.suppress(connection, "0" * 64, "spam")
    with engine.begin() as connection:  # the good values pass the same constraints
        repo.subscribe(connection, subscriber_id, "daily", status="pending", consent=CONSENT)
        assert repo.suppress(connection, "0" * 64, "bounced")
    with pytest.raises(ValueError, match="expected a status"), engine.begin() as connection:
        repo.subscribe(connection, subscriber_id, "daily", status="maybe", consent=CONSENT)


def test_the_state_constraints_are_the_enums_and_the_text_migration_0004_wrote() -> None:
    """SendState and DeliveryState make the CHECK constraints of sends and deliveries, in the
    very words of migration 0004, so the enums needed no migration."""
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
    from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
    from sqlalchemy.schema import CreateTable

    from speakerfeed.models import DeliveryState, SendState
    from speakerfeed.store.schema import DELIVERY_STATES, deliveries, sends

    expected = {
        sends: "CHECK (state IN ('sending', 'paused', 'done', 'cancelled'))",
        deliveries: (
            "CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'unknown', 'skipped'))"
        ),
    }
    for table, check in expected.items():
        for dialect in (SQLiteDialect_pysqlite(), PGDialect_psycopg()):  # type: ignore[no-untyped-call]
            assert check in str(CreateTable(table).compile(dialect=dialect))
    assert [str(state) for state in SendState] == ["sending", "paused", "done", "cancelled"]
    assert [f"{state}" for state in DeliveryState] == list(DELIVERY_STATES)


def test_email_is_unique_and_normalised(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        first = repo.add_subscriber(connection, "  Ann.Lee@Example.ORG ", name="Ann")
        assert repo.add_subscriber(connection, "ann.lee@example.org") == first
        found = repo.find_by_email(connection, "ANN.LEE@example.org")
        assert found is not None
        assert (found.id, found.email, found.name) == (first, "ann.lee@example.org", "Ann")
        assert repo.find_by_email(connection, "someone@example.org") is None
        assert connection.execute(select(subscribers.c.email)).scalars().all() == [
            "ann.lee@example.org"
        ]
    with pytest.raises(exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            subscribers.insert().values(
                id="other", email="ann.lee@example.org", created_at=datetime.now(UTC)
            )
        )


def test_normalise_email_and_address_hash() -> None:
    assert repo.normalise_email(" Ann@Example.Org\n") == "ann@example.org"
    for bad in ("", "ann", "@example.org", "ann@", "a nn@example.org"):
        with pytest.raises(ValueError, match="expected an email address"):
            repo.normalise_email(bad)
    digest = repo.address_hash(SECRET, "Ann@Example.org ")
    assert digest == repo.address_hash(SECRET, "ann@example.org")
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert digest != repo.address_hash(b"other-secret", "ann@example.org")
    with pytest.raises(ValueError, match="empty secret"):
        repo.address_hash(b"", "ann@example.org")


def test_the_address_hash_is_pinned_hmac_sha256_of_the_normalised_address() -> None:
    """Suppression lists and erasures in existing databases hold these hashes: the value for a
    known secret and address must never change, however it is computed."""
    import hashlib
    import hmac

    secret = b"pinned secret: suppressions must keep matching"
    pinned = "704258ed1796543692916e4c20440f53953cf19ef0e9fac9e53e57551eccfa01"
    assert repo.address_hash(secret, " Ann.Lee@Example.ORG ") == pinned
    hasher = repo.AddressHasher(secret)
    assert hasher("ann.lee@example.org") == pinned
    assert hasher.digest(b"ann.lee@example.org").hex() == pinned
    assert pinned == hmac.new(secret, b"ann.lee@example.org", hashlib.sha256).hexdigest()
    # A key longer than SHA-256's block is hashed first (RFC 2104), as it always was.
    assert repo.AddressHasher(b"k" * 100)("zoe@example.org") == (
        "7962a0211911d646140a6700abb0eb4782fa7aa19c7ac1e92cb5929689c39d49"
    )
    assert "k" not in repr(repo.AddressHasher(b"k" * 32))
    with pytest.raises(ValueError, match="empty secret"):
        repo.AddressHasher(b"")


def test_consent_records_are_appended(conn: Connection) -> None:
    subscriber_id = repo.add_subscriber(conn, "b@example.org")
    repo.subscribe(conn, subscriber_id, "daily", status="pending", consent=CONSENT)
    assert repo.set_status(
        conn,
        subscriber_id,
        "daily",
        "confirmed",
        consent={"action": "confirmed", "confirmation_message_id": "<m1@example.org>"},
    )
    repo.subscribe(conn, subscriber_id, "daily", status="confirmed", consent={"action": "imported"})
    rows = conn.execute(
        select(consent_records.c.action, consent_records.c.ip, consent_records.c.form)
        .where(consent_records.c.subscriber_id == subscriber_id)
        .order_by(consent_records.c.id)
    ).all()
    assert [tuple(r) for r in rows] == [
        ("subscribed", "192.0.2.1", "footer"),
        ("confirmed", "", ""),
        ("imported", "", ""),
    ]
    assert repo.count_subscriptions(conn, "daily") == 1  # upserted, not duplicated
    assert repo.count_subscriptions(conn, "daily", "confirmed") == 1
    assert not repo.set_status(conn, subscriber_id, "weekly", "confirmed")
    with pytest.raises(ValueError, match="consent needs 'action'"):
        repo.subscribe(conn, subscriber_id, "daily", status="pending", consent={"ip": "x"})
    with pytest.raises(ValueError, match="consent needs 'action'"):
        repo.record_consent(conn, subscriber_id, "daily", {"action": "x", "colour": "red"})


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    upgrade(engine)
    with pytest.raises(exc.IntegrityError), engine.begin() as connection:
        repo.subscribe(connection, "no-such-id", "daily", status="pending", consent=CONSENT)


def test_count_subscriptions_by_status(conn: Connection) -> None:
    for n, status in enumerate(["pending", "confirmed", "confirmed", "unsubscribed"]):
        subscriber_id = repo.add_subscriber(conn, f"c{n}@example.org")
        repo.subscribe(conn, subscriber_id, "daily", status=status, consent=CONSENT)
    _confirmed(conn, "other@example.org", "weekly")
    assert repo.count_subscriptions(conn, "daily") == 4
    assert repo.count_subscriptions(conn, "daily", "confirmed") == 2
    assert repo.count_subscriptions(conn, "daily", "pending") == 1
    assert repo.count_subscriptions(conn, "weekly") == 1
    assert repo.count_subscriptions(conn, "monthly") == 0


def test_suppression_hides_a_confirmed_subscriber(conn: Connection) -> None:
    kept = [_confirmed(conn, f"keep{n}@example.org") for n in range(2)]
    _confirmed(conn, "Gone@Example.org")
    gone_hash = repo.address_hash(SECRET, "gone@example.org")
    assert not repo.is_suppressed(conn, gone_hash)
    assert repo.suppress(conn, gone_hash, "complained")
    assert not repo.suppress(conn, gone_hash, "bounced")  # already there: first reason kept
    assert repo.is_suppressed(conn, gone_hash)
    assert [s.id for s in repo.iter_confirmed(conn, "daily", secret=SECRET)] == sorted(kept)
    assert repo.count_subscriptions(conn, "daily", "confirmed") == 3


def test_keyset_paging_returns_every_confirmed_subscriber_once(conn: Connection) -> None:
    now = datetime.now(UTC)
    people = [
        {"id": f"id{n:05d}", "email": f"p{n}@example.org", "created_at": now} for n in range(2600)
    ]
    conn.execute(subscribers.insert(), people)
    status = ["confirmed"] * 2500 + ["pending"] * 50 + ["unsubscribed"] * 50
    conn.execute(
        subscriptions.insert(),
        [
            {
                "subscriber_id": p["id"],
                "list_name": "daily",
                "status": s,
                "created_at": now,
                "updated_at": now,
            }
            for p, s in zip(people, status, strict=True)
        ],
    )
    _confirmed(conn, "weekly-only@example.org", "weekly")
    pages: list[tuple[str, list[Any]]] = []

    def record(*args: Any) -> None:
        statement, parameters = str(args[2]), args[3]
        if "JOIN" in statement.upper():
            values = parameters.values() if isinstance(parameters, dict) else parameters
            pages.append((statement.upper(), list(values)))

    event.listen(conn, "before_cursor_execute", record)
    try:
        found = [s.id for s in repo.iter_confirmed(conn, "daily", secret=SECRET, batch=1000)]
    finally:
        event.remove(conn, "before_cursor_execute", record)
    assert len(found) == 2500
    assert found == sorted(str(p["id"]) for p in people[:2500])
    # Each page starts after the last id of the one before (SQLite always renders OFFSET ?,
    # with 0 when there is none).
    for number, (statement, values) in enumerate(pages):
        assert "OFFSET" not in statement or values[-1] == 0
        assert ("" if number == 0 else found[min(number * 1000, len(found)) - 1]) in values
    assert len(pages) == 4  # three full pages and the empty one that ends the walk


def test_datetimes_come_back_aware_utc(conn: Connection) -> None:
    before = datetime.now(UTC)
    subscriber_id = repo.add_subscriber(conn, "d@example.org")
    created = conn.execute(
        select(subscribers.c.created_at).where(subscribers.c.id == subscriber_id)
    ).scalar_one()
    assert created.tzinfo is not None
    assert created.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=5) <= created <= datetime.now(UTC) + timedelta(seconds=5)
    # Another zone goes in; the same instant comes out, in UTC.
    plus_five = datetime(2024, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=5)))
    conn.execute(subscribers.insert().values(id="tz", email="e@example.org", created_at=plus_five))
    back = conn.execute(select(subscribers.c.created_at).where(subscribers.c.id == "tz")).scalar()
    assert back == plus_five
    assert back is not None
    assert back.utcoffset() == timedelta(0)
    assert back.hour == 7
    with pytest.raises(exc.StatementError, match="time-zone aware"):
        conn.execute(
            subscribers.insert().values(
                id="naive", email="f@example.org", created_at=datetime(2024, 3, 1)
            )
        )


def test_cli_db_upgrade_creates_the_sqlite_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        """
[site]
title = "T"
url = "https://example.org"
author = "A"

[feeds]
base_url = "https://example.org/feeds/"

[store]
url = "sqlite:///data/subscribers.sqlite3"
""",
        encoding="utf-8",
    )
    database = tmp_path / "data" / "subscribers.sqlite3"
    result = subprocess.run(
        [sys.executable, "-m", "speakerfeed", "--config", str(config), "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert f"at revision {HEAD}" in result.stdout
    assert database.is_file()
    with sqlite3.connect(database) as check:
        names = {row[0] for row in check.execute("SELECT name FROM sqlite_master")}
    check.close()
    assert {"subscribers", "subscriptions", "consent_records", "suppressions"} <= names
