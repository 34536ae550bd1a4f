"""A CSV import's good rows, written: gathered a batch at a time in a temporary table and
applied to the store in one transaction with a handful of set-based statements.

``Batches`` gives the rows their new ids and deals them, in chunks, to the ``Writer``s: each
holds one connection, and (threaded, with an engine) works through an inbox in a thread of its
own, so the reading of the next rows overlaps the database work. A writer stages each chunk (COPY
on PostgreSQL, one JSON document per chunk on SQLite) and applies a batch's last one through
``Target``: suppressed addresses are dropped, new subscribers inserted, the rest found and
updated, then the subscriptions and consent records written.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from base64 import urlsafe_b64encode
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from speakerfeed.store.schema import subscribers

# Rows per chunk handed to a writer: what bounds the memory in flight, whatever the batch size.
_CHUNK = 10_000
# Subscriber ids as secrets.token_urlsafe(12) makes them (16 characters from 12 random bytes),
# cut from one os.urandom call per chunk.
_ID_BYTES, _ID_CHARS = 12, 16

# id, email, name, timezone, address hash (HMAC-SHA256 hex): a staged row.
Row = tuple[str, str, str, str, str]


class Batches:
    """Good rows, given new ids, cut into chunks and batches and dealt to the writers in turn."""

    def __init__(self, writers: list[Writer], batch: int):
        self.writers, self.batch = writers, batch
        self.turn = 0
        self.chunk: list[Row] = []
        self.in_batch = 0  # rows of the current batch, including those already sent
        self.ids = ""

    def __enter__(self) -> Batches:
        for writer in self.writers:
            writer.start()
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if error is None and self.in_batch:
            self._send(last=True)
        for writer in self.writers:
            writer.stop(abandon=error is not None)
        if error is None:
            for writer in self.writers:
                writer.raise_error()

    def add(self, email: str, name: str, zone: str, address_hash: str) -> None:
        if not self.ids:
            self.ids = urlsafe_b64encode(os.urandom(_ID_BYTES * _CHUNK)).decode("ascii")
        at = len(self.chunk) * _ID_CHARS
        self.chunk.append((self.ids[at : at + _ID_CHARS], email, name, zone, address_hash))
        self.in_batch += 1
        if self.in_batch == self.batch:
            self._send(last=True)
        elif len(self.chunk) == _CHUNK:
            self._send(last=False)

    def _send(self, *, last: bool) -> None:
        writer = self.writers[self.turn]
        writer.send(self.chunk, last=last)
        self.chunk, self.ids = [], ""
        if last:
            self.in_batch = 0
            self.turn = (self.turn + 1) % len(self.writers)


class Writer:
    """One connection and what writes on it: chunks are staged, and a batch's last chunk applies
    the batch. Threaded, it works through an inbox (two chunks deep, so memory stays bounded);
    otherwise each chunk is written in the caller's thread as it is sent."""

    def __init__(self, conn: Connection, target: Target, *, threaded: bool):
        self.conn, self.target = conn, target
        self.stage = _CopyStage() if conn.dialect.name == "postgresql" else _JsonStage()
        self.owns_transactions = not conn.in_transaction()
        self.staged = 0
        self.added = self.updated = self.skipped = 0
        self.inbox: queue.Queue[tuple[list[Row], bool] | None] = queue.Queue(maxsize=2)
        self.thread = threading.Thread(target=self._run, name="import-writer") if threaded else None
        self.error: BaseException | None = None
        self.abandoned = False

    def start(self) -> None:
        self.stage.create(self.conn)
        if self.owns_transactions:
            self.conn.commit()
        if self.thread is not None:
            self.thread.start()

    def send(self, chunk: list[Row], *, last: bool) -> None:
        self.raise_error()  # a failed writer stops the import at the next chunk
        if self.thread is None:
            self._write(chunk, last)
        else:
            self.inbox.put((chunk, last))

    def stop(self, *, abandon: bool) -> None:
        """Finish (or, after an error, drop) what was sent, then remove the staging table."""
        self.abandoned = abandon
        if self.thread is not None:
            self.inbox.put(None)
            self.thread.join()
        if self.conn.in_transaction() and self.owns_transactions:
            self.conn.rollback()  # a batch left unfinished by an error
        if self.error is None and not abandon:
            self.stage.drop(self.conn)
            if self.owns_transactions:
                self.conn.commit()

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while (item := self.inbox.get()) is not None:
            if self.error is None and not self.abandoned:  # otherwise drain, so no put blocks
                try:
                    self._write(*item)
                except BaseException as exc:  # handed to the reading thread by raise_error
                    self.error = exc

    def _write(self, chunk: list[Row], last: bool) -> None:
        if self.owns_transactions and not self.conn.in_transaction():
            self.conn.begin()
        if chunk:
            self.stage.fill(self.conn, chunk)
            self.staged += len(chunk)
        if not last:
            return
        added, updated, skipped = self.target.apply(self.conn, self.stage, self.staged)
        self.added, self.updated, self.skipped = (
            self.added + added,
            self.updated + updated,
            self.skipped + skipped,
        )
        self.staged = 0
        if self.owns_transactions:
            self.conn.commit()


# The staging table: a batch's rows, to be applied by set-based statements. Temporary, so it is
# private to the connection and costs no write-ahead log; "existing" marks the rows whose
# address was already stored (id then becomes the stored subscriber's).
_CREATE_STAGE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS import_stage (id VARCHAR(32), email VARCHAR(320),"
    " name TEXT, timezone VARCHAR(64), hash VARCHAR(64), existing INTEGER NOT NULL DEFAULT 0)"
)


class _Stage:
    """The staging table: created once per connection, filled chunk by chunk, cleared per batch."""

    clear_sql = "DELETE FROM import_stage"

    def create(self, conn: Connection) -> None:
        conn.exec_driver_sql(_CREATE_STAGE)
        conn.exec_driver_sql(self.clear_sql)  # a pooled connection may keep an earlier one

    def fill(self, conn: Connection, rows: list[Row]) -> None:
        raise NotImplementedError

    def drop(self, conn: Connection) -> None:
        conn.exec_driver_sql("DROP TABLE IF EXISTS import_stage")


class _JsonStage(_Stage):
    """SQLite: each chunk in one statement, its rows one JSON parameter. A single step releases
    the GIL throughout, where executemany takes it back for every row, each time waiting for the
    reading thread to let go (up to 5 ms)."""

    fill_sql = (
        "INSERT INTO import_stage (id, email, name, timezone, hash)"
        " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
        " json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]')"
        " FROM json_each(?)"
    )

    def fill(self, conn: Connection, rows: list[Row]) -> None:
        document = json.dumps(rows, ensure_ascii=False, check_circular=False)
        conn.exec_driver_sql(self.fill_sql, (document,))


class _CopyStage(_Stage):
    """PostgreSQL: each chunk by COPY, which psycopg formats in C and the server parses with no
    planning per row."""

    clear_sql = "TRUNCATE import_stage"  # DELETE would leave dead rows: temp tables get no vacuum

    def fill(self, conn: Connection, rows: list[Row]) -> None:
        driver = conn.connection.driver_connection
        assert driver is not None
        copying = "COPY import_stage (id, email, name, timezone, hash) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(copying) as copy:
            for row in rows:
                copy.write_row(row)


class Target:
    """The list a file is imported into, and the statements that apply a staged batch to it.

    Each INSERT reads the staging table in id order: ids are random, so that turns scattered
    index insertions (the subscribers, subscriptions and consent indexes, and the foreign key
    checks) into one pass along each index.
    """

    def __init__(self, list_name: str, form: str, confirmed: bool, *, update: bool = False):
        self.list_name, self.form, self.confirmed = list_name, form, confirmed
        self.update = update  # the file's names and time zones replace those stored

    def apply(self, conn: Connection, stage: _Stage, staged: int) -> tuple[int, int, int]:
        """(added, updated, skipped) for the ``staged`` rows, which are then cleared."""
        stamp = _stamp(conn, datetime.now(UTC))
        skipped = _run(conn, _DROP_SUPPRESSED)
        added = _run(conn, _INSERT_SUBSCRIBERS, stamp)
        updated = staged - skipped - added
        if updated:
            skipped += self._existing(conn, stamp)
            updated = staged - skipped - added
        status = "confirmed" if self.confirmed else "pending"
        if added:
            # Their ids are new: no subscription can exist yet, so a plain insert will do.
            subscribe = _SUBSCRIBE + " WHERE existing = 0 ORDER BY id"
            _run(conn, subscribe, self.list_name, status, stamp, stamp)
        if self.confirmed and added + updated:
            _run(conn, _RECORD_CONSENT, self.list_name, self.form, stamp)
        _run(conn, stage.clear_sql)
        return added, updated, skipped

    def _existing(self, conn: Connection, stamp: Any) -> int:
        """Bring the rows whose address was already stored up to date; return how many of them
        were skipped (unsubscribed from the list)."""
        _run(conn, _MARK_EXISTING)
        skipped = _run(conn, _DROP_UNSUBSCRIBED, self.list_name)
        _run(conn, _RENAME if self.update else _FILL_BLANKS)
        status = "confirmed" if self.confirmed else "pending"
        subscribe = (
            f"{_SUBSCRIBE} WHERE existing = 1 ORDER BY id ON CONFLICT (subscriber_id, list_name)"
        )
        if self.confirmed:
            # The WHERE guards against an unsubscribe that lands between our read and this write.
            subscribe += (
                " DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at"
                " WHERE subscriptions.status <> 'unsubscribed'"
            )
        else:
            subscribe += " DO NOTHING"  # an unconfirmed import never downgrades a subscription
        _run(conn, subscribe, self.list_name, status, stamp, stamp)
        return skipped


_DROP_SUPPRESSED = (
    "DELETE FROM import_stage WHERE EXISTS"
    " (SELECT 1 FROM suppressions p WHERE p.address_hash = import_stage.hash)"
)
# WHERE true: SQLite needs it to read ON CONFLICT after INSERT ... SELECT.
_INSERT_SUBSCRIBERS = (
    "INSERT INTO subscribers (id, email, name, timezone, created_at)"
    " SELECT id, email, name, timezone, ? FROM import_stage WHERE true ORDER BY id"
    " ON CONFLICT (email) DO NOTHING"
)
# The rows whose new id is not stored: their address was (maybe added by another process
# meanwhile). Their id becomes the stored one; NULL if that subscriber was erased meanwhile.
_MARK_EXISTING = (
    "UPDATE import_stage SET existing = 1,"
    " id = (SELECT s.id FROM subscribers s WHERE s.email = import_stage.email)"
    " WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.id = import_stage.id)"
)
_DROP_UNSUBSCRIBED = (
    "DELETE FROM import_stage WHERE existing = 1 AND (id IS NULL OR EXISTS"
    " (SELECT 1 FROM subscriptions t WHERE t.subscriber_id = import_stage.id"
    " AND t.list_name = ? AND t.status = 'unsubscribed'))"
)
# --update: the values the file gives replace those stored; an empty cell never wipes a name.
_RENAME = (
    "UPDATE subscribers SET"
    " name = CASE WHEN st.name = '' THEN subscribers.name ELSE st.name END,"
    " timezone = CASE WHEN st.timezone = '' THEN subscribers.timezone ELSE st.timezone END"
    " FROM import_stage st WHERE st.existing = 1 AND subscribers.id = st.id"
    " AND (st.name <> '' OR st.timezone <> '')"
)
# Otherwise a stored name or time zone, which the reader may have chosen on the preferences
# page, is kept: the file only fills in those that are empty.
_FILL_BLANKS = (
    "UPDATE subscribers SET"
    " name = CASE WHEN subscribers.name = '' THEN st.name ELSE subscribers.name END,"
    " timezone = CASE WHEN subscribers.timezone = '' THEN st.timezone"
    " ELSE subscribers.timezone END"
    " FROM import_stage st WHERE st.existing = 1 AND subscribers.id = st.id"
    " AND ((st.name <> '' AND subscribers.name = '')"
    " OR (st.timezone <> '' AND subscribers.timezone = ''))"
)
_SUBSCRIBE = (
    "INSERT INTO subscriptions (subscriber_id, list_name, status, created_at, updated_at)"
    " SELECT id, ?, ?, ?, ? FROM import_stage"
)
_RECORD_CONSENT = (
    "INSERT INTO consent_records (subscriber_id, list_name, action, form, created_at)"
    " SELECT id, ?, 'imported', ?, ? FROM import_stage WHERE true ORDER BY id"
)


def _run(conn: Connection, sql: str, *params: Any) -> int:
    """Run one statement straight through the driver; the number of rows it changed."""
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")  # psycopg
    return int(conn.exec_driver_sql(sql, params).rowcount)


def _stamp(conn: Connection, now: datetime) -> Any:
    """``now`` as the driver takes it for a UTCDateTime column (SQLite: text), computed once."""
    process = subscribers.c.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return now if process is None else process(now)
