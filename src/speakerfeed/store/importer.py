"""Streaming CSV import of subscribers into one list.

The file is read as bytes, one line at a time, so memory stays flat whatever its size and one bad
byte sequence costs one line. Rows are checked in Python and handed on in chunks of a few thousand
to a writer, which gathers each batch in a temporary table (COPY on PostgreSQL, one JSON document
per chunk on SQLite) and applies it in one transaction with a handful of set-based statements:
suppressed addresses are dropped, new subscribers inserted, the rest found and updated, then the
subscriptions and consent records written. An address that is suppressed or has unsubscribed from
the list is never subscribed again.

With an engine, the writers run in their own threads with their own connections, so reading the
next rows overlaps the database work, which releases the GIL: one writer on SQLite (one writer at a
time is all it allows), two on PostgreSQL (two server processes). With a connection, the caller's
thread writes on it, between chunks.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import re
import threading
from array import array
from base64 import urlsafe_b64encode
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, Engine

from speakerfeed.errors import Problem
from speakerfeed.store.schema import subscribers
from speakerfeed.store.subscribers import AddressHasher

Progress = Callable[[str, int, int], None]
KNOWN_COLUMNS = ("email", "name", "timezone")
# Stricter than normalise_email, which only needs an @: an import is where typos arrive in bulk.
_ADDRESS = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]+")
_MAX_ADDRESS = 320
_MAX_TIMEZONE = 64
# Rows per chunk handed to a writer: what bounds the memory in flight, whatever the batch size.
_CHUNK = 10_000
# Subscriber ids as secrets.token_urlsafe(12) makes them (16 characters from 12 random bytes),
# cut from one os.urandom call per chunk.
_ID_BYTES, _ID_CHARS = 12, 16
# Concurrent writers per engine; PostgreSQL's server does most of the work, in one process per
# connection, so two connections use both cores. SQLite allows one writer at a time.
_WRITERS = {"postgresql": 2}

# id, email, name, timezone, address hash (HMAC-SHA256 hex): a staged row.
_Row = tuple[str, str, str, str, str]


@dataclass
class ImportReport:
    rows: int = 0  # data lines read (blank lines aside)
    added: int = 0  # new subscribers
    updated: int = 0  # already stored: subscribed to the list, or status and name refreshed
    skipped: int = 0  # suppressed, or unsubscribed from this list: left alone
    problems: list[Problem] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(1 for problem in self.problems if not problem.warning)

    def summary(self) -> str:
        return (
            f"{self.rows} rows: {self.added} added, {self.updated} updated, "
            f"{self.skipped} skipped (unsubscribed or suppressed), {self.rejected} rejected"
        )


class _Reader:
    """Lines of the file as parsed CSV rows with their line numbers; problems collected."""

    def __init__(self, stream: BinaryIO, where: str, progress: Progress | None, total: int):
        self.stream, self.where, self.progress, self.total = stream, where, progress, total
        self.line = 0
        self.undecodable = 0  # lines that never reach the CSV parser, counted as rows read
        self.problems: list[Problem] = []

    def _text_lines(self) -> Iterator[str]:
        for number, raw in enumerate(self.stream, 1):
            self.line = number
            if number % 10_000 == 0 and self.progress is not None:
                self.progress("import", self.stream.tell(), self.total)
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a BOM, as spreadsheet programs write
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.undecodable += 1
                self.problem(f"not UTF-8 (byte {exc.start + 1} of the line); line skipped")

    def problem(self, message: str, *, warning: bool = False, line: int | None = None) -> None:
        self.problems.append(Problem(self.where, message, line or self.line, warning))

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        # A quoted field may span lines; it is then numbered by the line where it ends.
        parsed = csv.reader(self._text_lines())
        while True:
            try:
                fields = next(parsed)
            except StopIteration:
                break
            except csv.Error as exc:  # e.g. an unclosed quote that ran past the field size limit
                self.problem(f"not valid CSV: {exc}")
                continue
            yield self.line, fields
        if self.progress is not None:
            self.progress("import", self.total, self.total)


def import_csv(
    conn_or_engine: Connection | Engine,
    path: Path,
    list_name: str,
    *,
    secret: bytes,
    confirmed: bool,
    batch: int = 100_000,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the subscribers in the CSV file at ``path`` into ``list_name``.

    Columns by header: ``email`` (required), ``name``, ``timezone``. With ``confirmed`` the
    subscriptions are confirmed and each gets a consent record (action "imported", form = the
    file's name); without, new subscriptions are pending (they need double opt-in) and an
    existing subscription keeps its status. Each ``batch`` rows are written in one transaction
    (unless the connection given is already in one: then the caller's transaction holds them all).
    """
    if not secret:
        raise ValueError("the secret is needed to match addresses against the suppression list")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    target = _Target(list_name, Path(path).name, confirmed)
    if isinstance(conn_or_engine, Connection):
        writers = [_Writer(conn_or_engine, target, threaded=False)]
        return _import(writers, Path(path), secret, batch, progress)
    with ExitStack() as stack:
        count = _WRITERS.get(conn_or_engine.dialect.name, 1)
        connections = [stack.enter_context(conn_or_engine.connect()) for _ in range(count)]
        writers = [_Writer(conn, target, threaded=True) for conn in connections]
        return _import(writers, Path(path), secret, batch, progress)


def _import(
    writers: list[_Writer], path: Path, secret: bytes, batch: int, progress: Progress | None
) -> ImportReport:
    report = ImportReport()
    with path.open("rb") as stream:
        reader = _Reader(stream, str(path), progress, path.stat().st_size)
        rows = reader.rows()
        columns, width = _header(reader, rows)
        if columns is not None:
            with _Batches(writers, batch) as batches:
                _check_rows(reader, rows, columns, width, secret, report, batches)
            for writer in writers:
                report.added += writer.added
                report.updated += writer.updated
                report.skipped += writer.skipped
    report.rows += reader.undecodable
    report.problems = reader.problems
    return report


def _check_rows(
    reader: _Reader,
    rows: Iterator[tuple[int, list[str]]],
    columns: dict[str, int],
    width: int,
    secret: bytes,
    report: ImportReport,
    batches: _Batches,
) -> None:
    """Check each row and pass the good ones on; the loop every row goes through, so it calls
    no Python function of its own on the way."""
    email_at = columns["email"]
    name_at = columns.get("name")
    zone_at = columns.get("timezone")
    address = _ADDRESS.fullmatch
    digest = AddressHasher(secret).digest
    seen = _Seen()
    for line, fields in rows:
        if len(fields) != width or not (email := fields[email_at].strip().lower()):
            message = _unusable(fields, width)
            if message is not None:  # None: a blank line, not a row
                report.rows += 1
                reader.problem(message, line=line)
            continue
        report.rows += 1
        # normalise_email's spelling (stripped, lower-cased); the pattern is stricter than its
        # check and, unlike it, costs no Python loop over the characters.
        if len(email) > _MAX_ADDRESS or not address(email):
            reader.problem(f"not an email address: {fields[email_at]!r}", line=line)
            continue
        name = "" if name_at is None else fields[name_at].strip()
        zone = "" if zone_at is None else fields[zone_at].strip()
        if len(zone) > _MAX_TIMEZONE:
            reader.problem(f"time zone longer than {_MAX_TIMEZONE} characters", line=line)
            continue
        mac = digest(email.encode("utf-8"))
        if not seen.add(int.from_bytes(mac[:8]) | 1):
            reader.problem(f"{email} appears earlier in the file; this row skipped", line=line)
            continue
        batches.add(email, name, zone, mac.hex())


class _Seen:
    """The addresses met so far, as 63 bits of each one's HMAC: a false "duplicate" needs a 63-bit
    collision. An open-addressing table of 8-byte slots, half full at most: a fraction of the
    memory of a set of ints, let alone of the addresses themselves."""

    def __init__(self) -> None:
        self.table = array("Q", bytes(8 * 65_536))  # 0 marks an empty slot
        self.mask = len(self.table) - 1
        self.used = 0

    def add(self, key: int) -> bool:
        """Add ``key`` (odd, so never 0); False if it was there already."""
        table, mask = self.table, self.mask
        at = key & mask
        while found := table[at]:
            if found == key:
                return False
            at = (at + 1) & mask
        table[at] = key
        self.used += 1
        if self.used * 2 > mask:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self.table
        self.table = table = array("Q", bytes(16 * len(old)))
        self.mask = mask = len(table) - 1
        for key in old:
            if key:
                at = key & mask
                while table[at]:
                    at = (at + 1) & mask
                table[at] = key


def _unusable(fields: list[str], width: int) -> str | None:
    """What is wrong with a row that has the wrong width or no address; None if it is blank."""
    if not any(value.strip() for value in fields):
        return None
    if len(fields) != width:
        return f"expected {width} fields as in the header, got {len(fields)}"
    return "no email address"


def _header(
    reader: _Reader, rows: Iterator[tuple[int, list[str]]]
) -> tuple[dict[str, int] | None, int]:
    for line, fields in rows:
        if not any(value.strip() for value in fields):
            continue
        names = [value.strip().lower() for value in fields]
        columns: dict[str, int] = {}
        for index, name in enumerate(names):
            if name in columns:
                reader.problem(f"column {name!r} appears twice", line=line)
                return None, 0
            columns[name] = index
        if "email" not in columns:
            reader.problem("no 'email' column in the header; nothing imported", line=line)
            return None, 0
        unknown = [name for name in names if name not in KNOWN_COLUMNS]
        if unknown:
            reader.problem(
                f"unknown column(s) ignored: {', '.join(unknown)}", line=line, warning=True
            )
        return columns, len(names)
    reader.problem("empty file: no header line", line=1)
    return None, 0


class _Batches:
    """Good rows, given new ids, cut into chunks and batches and dealt to the writers in turn."""

    def __init__(self, writers: list[_Writer], batch: int):
        self.writers, self.batch = writers, batch
        self.turn = 0
        self.chunk: list[_Row] = []
        self.in_batch = 0  # rows of the current batch, including those already sent
        self.ids = ""

    def __enter__(self) -> _Batches:
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


class _Writer:
    """One connection and what writes on it: chunks are staged, and a batch's last chunk applies
    the batch. Threaded, it works through an inbox (two chunks deep, so memory stays bounded);
    otherwise each chunk is written in the caller's thread as it is sent."""

    def __init__(self, conn: Connection, target: _Target, *, threaded: bool):
        self.conn, self.target = conn, target
        self.stage = _CopyStage() if conn.dialect.name == "postgresql" else _JsonStage()
        self.owns_transactions = not conn.in_transaction()
        self.staged = 0
        self.added = self.updated = self.skipped = 0
        self.inbox: queue.Queue[tuple[list[_Row], bool] | None] = queue.Queue(maxsize=2)
        self.thread = threading.Thread(target=self._run, name="import-writer") if threaded else None
        self.error: BaseException | None = None
        self.abandoned = False

    def start(self) -> None:
        self.stage.create(self.conn)
        if self.owns_transactions:
            self.conn.commit()
        if self.thread is not None:
            self.thread.start()

    def send(self, chunk: list[_Row], *, last: bool) -> None:
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

    def _write(self, chunk: list[_Row], last: bool) -> None:
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

    def fill(self, conn: Connection, rows: list[_Row]) -> None:
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

    def fill(self, conn: Connection, rows: list[_Row]) -> None:
        document = json.dumps(rows, ensure_ascii=False, check_circular=False)
        conn.exec_driver_sql(self.fill_sql, (document,))


class _CopyStage(_Stage):
    """PostgreSQL: each chunk by COPY, which psycopg formats in C and the server parses with no
    planning per row."""

    clear_sql = "TRUNCATE import_stage"  # DELETE would leave dead rows: temp tables get no vacuum

    def fill(self, conn: Connection, rows: list[_Row]) -> None:
        driver = conn.connection.driver_connection
        assert driver is not None
        copying = "COPY import_stage (id, email, name, timezone, hash) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(copying) as copy:
            for row in rows:
                copy.write_row(row)


class _Target:
    """The list a file is imported into, and the statements that apply a staged batch to it.

    Each INSERT reads the staging table in id order: ids are random, so that turns scattered
    index insertions (the subscribers, subscriptions and consent indexes, and the foreign key
    checks) into one pass along each index.
    """

    def __init__(self, list_name: str, form: str, confirmed: bool):
        self.list_name, self.form, self.confirmed = list_name, form, confirmed

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
        _run(conn, _RENAME)
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
# Only the values the file gives: an empty cell never wipes a stored name.
_RENAME = (
    "UPDATE subscribers SET"
    " name = CASE WHEN st.name = '' THEN subscribers.name ELSE st.name END,"
    " timezone = CASE WHEN st.timezone = '' THEN subscribers.timezone ELSE st.timezone END"
    " FROM import_stage st WHERE st.existing = 1 AND subscribers.id = st.id"
    " AND (st.name <> '' OR st.timezone <> '')"
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
