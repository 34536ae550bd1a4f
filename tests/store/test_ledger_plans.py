"""The statement plans a send's speed rests on, read back with SQLite's EXPLAIN QUERY PLAN.

Marked ``perf``: they check how the ledger's statements run, not what they do (the ledger's
behaviour is tested in tests/digest/test_deliver.py). They run in ``make test`` with the rest;
``pytest -m perf`` runs them alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from speakerfeed.store import ledger
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import engine_for_url, upgrade
from speakerfeed.store.ledger import sqlite as ledger_sqlite
from tests.digest.test_deliver import CONTENT

pytestmark = pytest.mark.perf


def test_sqlite_sends_by_the_indexes_made_for_it(tmp_path: Path) -> None:
    """The plans the send's speed rests on: the audience read in order from the covering index
    (no sort), a chunk of it from where the last one stopped, rows claimed through the index
    of pending rows, people screened through the subscriptions' covering index and the
    subscribers' key, results written by rowid."""
    engine = engine_for_url(f"sqlite:///{tmp_path / 'plans.sqlite3'}")
    upgrade(engine)
    statements: list[tuple[str, object]] = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, parameters, *_: statements.append((statement, parameters)),
    )
    with engine.begin() as conn:
        for number in range(3):
            person = repo.add_subscriber(conn, f"reader{number}@example.org")
            repo.subscribe(conn, person, "daily", status="confirmed", consent={"action": "test"})
        ledger.create_send(conn, "daily-1", "daily", CONTENT, scheduled_at=datetime.now(UTC))
        statement, parameters = statements[-1]

        def plan(statement: str, parameters: object) -> str:
            found = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)  # type: ignore[arg-type]
            return " / ".join(row[-1] for row in found)

        created = plan(statement, parameters)
        ledger.create_send(
            conn, "daily-2", "daily", CONTENT, scheduled_at=datetime.now(UTC), record_audience=False
        )
        ledger.claim_audience(conn, "daily-2", worker="w", named_cadences=(), limit=2)
        statements.clear()
        claimed = ledger.claim_audience(conn, "daily-2", worker="w", named_cadences=(), limit=2)
        assert len(claimed.ids) == 1
        (last, last_parameters), (chunk, chunk_parameters) = [
            (statement, parameters)
            for statement, parameters in statements
            if "max(" in statement or statement.startswith("INSERT")
        ]
        where_adding_stopped = plan(last, last_parameters)
        added = plan(chunk, chunk_parameters)
        taken = plan(ledger_sqlite.TAKE, ("w", "2023-11-29 07:00:00.000000", "daily-1", 10))
        screened = plan(ledger_sqlite.STILL_SUBSCRIBED, ("daily", '["a"]'))
        read = plan(ledger_sqlite.PEOPLE, ('["a"]',))
        suppressed = plan(ledger_sqlite.SUPPRESSED, ('["a"]',))
        recorded = plan(
            ledger_sqlite.SET_BY_ROWID.format(columns="state = ?", only_from=""),
            ("sent", "[1]", "daily-1"),
        )
        recorded_each = plan(
            ledger_sqlite.RECORD_BY_ROWID,
            ("sent", "2023-11-29 07:00:00.000000", '[[1, "a", "b"]]', "daily-1", "sending"),
        )
    engine.dispose()  # a connection left to the garbage collector is a ResourceWarning on 3.13
    assert "COVERING INDEX ix_subscriptions_list_status" in created, created
    assert "TEMP B-TREE" not in created, created
    assert "COVERING INDEX ix_subscriptions_list_status (" in added, added
    assert "subscriber_id>?" in added and "TEMP B-TREE" not in added, added
    assert "SEARCH deliveries USING COVERING INDEX" in where_adding_stopped, where_adding_stopped
    assert "INDEX ix_deliveries_pending" in taken, taken
    assert "COVERING INDEX ix_subscriptions_list_status" in screened, screened
    assert "SEARCH subscribers USING INDEX" in screened, screened
    assert "SEARCH subscribers USING INDEX sqlite_autoindex_subscribers" in read, read
    assert "SEARCH suppressions USING" in suppressed, suppressed
    assert "USING INTEGER PRIMARY KEY (rowid=?)" in recorded, recorded
    assert "autoindex" not in recorded, recorded
    assert "SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)" in recorded_each, recorded_each
    assert "SCAN deliveries" not in recorded_each, recorded_each
