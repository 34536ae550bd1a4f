"""The ledger's statements per batch on SQLite, as SQL text on the sqlite3 connection itself.

A send runs these once per batch of 1,000 rows: a thousand times each for a million recipients.
Through SQLAlchemy Core every statement also pays for its cache key, its compiled form's lookup
and a Row object per row returned: a large part of what taking, screening and recording a batch
cost on SQLite. Here the statements go to the DBAPI
connection underneath the caller's SQLAlchemy Connection, so they run inside its transaction
and are committed with it; the time is rendered by the column type's own bind processor, so a
row reads back exactly as if SQLAlchemy had written it. (SQLAlchemy's statement events do not
see them.) PostgreSQL has Core statements of its own: ledger.postgresql.

A batch's rows are named by one bound parameter, a JSON array read with json_each.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection

from speakerfeed.store.schema import deliveries
from speakerfeed.store.write_turns import take_write_turn

# The first ``limit`` pending rows in subscriber order, through the index of pending rows
# (schema.PENDING: its condition written the same way), found again by rowid, not by key.
TAKE = """
UPDATE deliveries SET state = 'sending', worker = ?, updated_at = ?
WHERE rowid IN (
    SELECT pending_rows.rowid FROM deliveries AS pending_rows
    WHERE pending_rows.send_id = ? AND pending_rows.state = 'pending'
    ORDER BY pending_rows.subscriber_id
    LIMIT ?
)
RETURNING subscriber_id, rowid
"""

# "IN (confirmed ids among these)" reads the status from the (list, status, id, cadence)
# index alone; a join or EXISTS on the subscription reads each one's table row as well.
STILL_SUBSCRIBED = """
SELECT id, email, name FROM subscribers
WHERE id IN (
    SELECT subscriber_id FROM subscriptions
    WHERE list_name = ? AND status = 'confirmed'
    AND subscriber_id IN (SELECT value FROM json_each(?))
)
"""

PEOPLE = """
SELECT id, email, name FROM subscribers WHERE id IN (SELECT value FROM json_each(?))
"""

SUPPRESSED = """
SELECT address_hash FROM suppressions WHERE address_hash IN (SELECT value FROM json_each(?))
"""

# Rows by rowid. The send is checked as an expression, which no index serves: given the send's
# key, SQLite would walk all the send's rows by it rather than look the rowids up.
SET_BY_ROWID = """
UPDATE deliveries SET {columns}
WHERE rowid IN (SELECT value FROM json_each(?)) AND send_id || '' = ?{only_from}
"""
# A batch's results, each row with its own provider id and detail (an SMTP server's reply names
# each message's queue id: no two alike), as one JSON array of [rowid, provider id, detail].
RECORD_BY_ROWID = """
UPDATE deliveries SET state = ?, updated_at = ?, provider_id = result.provider_id,
    detail = result.detail
FROM (
    SELECT json_extract(value, '$[0]') AS row_id, json_extract(value, '$[1]') AS provider_id,
        json_extract(value, '$[2]') AS detail
    FROM json_each(?)
) AS result
WHERE deliveries.rowid = result.row_id AND deliveries.send_id || '' = ? AND deliveries.state = ?
"""
_SETTABLE = ("state", "updated_at", "worker", "provider_id", "detail")


def driver(conn: Connection) -> sqlite3.Connection:
    """The sqlite3 connection under ``conn``, in ``conn``'s transaction."""
    found = conn.connection.driver_connection
    if not isinstance(found, sqlite3.Connection):
        raise TypeError(f"expected a sqlite3 connection, got {type(found).__name__}")
    return found


def writer(conn: Connection) -> sqlite3.Connection:
    """``driver``, for a write: this process's turn at the write lock taken first."""
    take_write_turn(conn)
    return driver(conn)


def take(
    conn: Connection, send_id: str, *, worker: str, limit: int, now: datetime
) -> dict[str, int]:
    """Mark up to ``limit`` pending rows ``sending``: subscriber id -> rowid of each.

    One UPDATE ... RETURNING, the transaction's first write: it waits for SQLite's one write
    lock (the busy timeout) before it reads which rows are pending, so two processes never take
    the same row."""
    rows = writer(conn).execute(TAKE, (worker, _time(conn, now), send_id, limit)).fetchall()
    return dict(rows)


def people(
    conn: Connection, ids: Sequence[str], *, confirmed_on: str | None = None
) -> list[tuple[str, str, str]]:
    """(id, email, name) of those of ``ids`` in the store, in id order; with ``confirmed_on``,
    only those still confirmed on that list."""
    if confirmed_on is None:
        rows = driver(conn).execute(PEOPLE, (json.dumps(ids),)).fetchall()
    else:
        rows = driver(conn).execute(STILL_SUBSCRIBED, (confirmed_on, json.dumps(ids))).fetchall()
    rows.sort()  # they come in id order as the index is read: cheap, and not relied on
    return rows


def suppressed(conn: Connection, hashes: Iterable[str]) -> set[str]:
    """Those of the address ``hashes`` on the suppression list."""
    found = driver(conn).execute(SUPPRESSED, (json.dumps(list(hashes)),))
    return {row[0] for row in found}


def set_by_rowid(
    conn: Connection,
    send_id: str,
    rowids: Sequence[int],
    values: Mapping[str, object],
    *,
    only_from: str | None = None,
) -> None:
    """Set ``values`` (columns of deliveries; ``updated_at`` a datetime) on the rows of
    ``rowids`` that belong to ``send_id`` (and are in state ``only_from``)."""
    columns = [name for name in _SETTABLE if name in values]
    if len(columns) != len(values):
        raise ValueError(f"cannot set {sorted(set(values) - set(columns))} this way")
    statement = SET_BY_ROWID.format(
        columns=", ".join(f"{name} = ?" for name in columns),
        only_from="" if only_from is None else " AND state = ?",
    )
    bound = [
        _time(conn, value) if isinstance(value, datetime) else value
        for value in (values[name] for name in columns)
    ]
    bound += [json.dumps(list(rowids)), send_id]
    if only_from is not None:
        bound.append(only_from)
    writer(conn).execute(statement, bound)


def record_by_rowid(
    conn: Connection,
    send_id: str,
    state: str,
    now: datetime,
    results: Sequence[tuple[int, str, str]],
    *,
    only_from: str,
) -> None:
    """Set ``state`` on the rows of ``send_id`` in state ``only_from`` among ``results``
    ((rowid, provider id, detail) each, written to the row): one statement for all of them.

    One UPDATE per distinct (state, provider id, detail) was one per row under SMTP, whose
    replies all differ: 1,000 statements, about 50 ms of CPU per batch with SQLite's write
    lock held, which every sign-up of the serving process waited behind (bench/load.py)."""
    bound = (state, _time(conn, now), json.dumps(results), send_id, only_from)
    writer(conn).execute(RECORD_BY_ROWID, bound)


def _time(conn: Connection, value: datetime) -> object:
    """``value`` as the updated_at column's type binds it on this dialect."""
    column_type = deliveries.c.updated_at.type.dialect_impl(conn.dialect)
    process = column_type.bind_processor(conn.dialect)
    return value if process is None else process(value)
