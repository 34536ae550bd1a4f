"""Streaming CSV import of subscribers into one list.

The file is read as bytes, one line at a time, so memory stays flat whatever its size and one bad
byte sequence costs one line. Rows are checked in Python and written a batch at a time (one
transaction per batch) with set-based statements: one query finds the batch's suppressed hashes,
one its existing subscribers, then the inserts (executemany on SQLite, arrays unnested on
PostgreSQL). An address that is suppressed or has unsubscribed from the list is never subscribed
again.
"""

from __future__ import annotations

import csv
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, Engine

from speakerfeed.errors import Problem
from speakerfeed.store.schema import subscribers

Progress = Callable[[str, int, int], None]
KNOWN_COLUMNS = ("email", "name", "timezone")
# Stricter than normalise_email, which only needs an @: an import is where typos arrive in bulk.
_TEXT = ("text",)
_ADDRESS = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]+")
_MAX_ADDRESS = 320
_MAX_TIMEZONE = 64


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


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    email: str
    name: str
    timezone: str
    hash: str


class _Reader:
    """Lines of the file as parsed CSV rows with their line numbers; problems collected."""

    def __init__(self, stream: BinaryIO, where: str, progress: Progress | None, total: int):
        self.stream, self.where, self.progress, self.total = stream, where, progress, total
        self.line = 0
        self.read = 0
        self.undecodable = 0  # lines that never reach the CSV parser, counted as rows read
        self.problems: list[Problem] = []

    def _text_lines(self) -> Iterator[str]:
        for raw in self.stream:
            self.line += 1
            self.read += len(raw)
            if self.progress is not None and self.line % 10_000 == 0:
                self.progress("import", self.read, self.total)
            if self.line == 1 and raw.startswith(b"\xef\xbb\xbf"):
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


def _check(fields: list[str], columns: dict[str, int], width: int) -> tuple[str, str, str] | str:
    """(email, name, timezone) of a row, or what is wrong with it."""
    if len(fields) != width:
        return f"expected {width} fields as in the header, got {len(fields)}"
    given = fields[columns["email"]]
    if not given.strip():
        return "no email address"
    # normalise_email's spelling (stripped, lower-cased); the pattern is stricter than its check
    # and, unlike it, costs no Python loop over the characters.
    email = given.strip().lower()
    if len(email) > _MAX_ADDRESS or not _ADDRESS.fullmatch(email):
        return f"not an email address: {given!r}"
    name = fields[columns["name"]].strip() if "name" in columns else ""
    zone = fields[columns["timezone"]].strip() if "timezone" in columns else ""
    if len(zone) > _MAX_TIMEZONE:
        return f"time zone longer than {_MAX_TIMEZONE} characters"
    return email, name, zone


def import_csv(
    conn_or_engine: Connection | Engine,
    path: Path,
    list_name: str,
    *,
    secret: bytes,
    confirmed: bool,
    batch: int = 5000,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the subscribers in the CSV file at ``path`` into ``list_name``.

    Columns by header: ``email`` (required), ``name``, ``timezone``. With ``confirmed`` the
    subscriptions are confirmed and each gets a consent record (action "imported", form = the
    file's name); without, new subscriptions are pending (they need double opt-in) and an
    existing subscription keeps its status.
    """
    if not secret:
        raise ValueError("the secret is needed to match addresses against the suppression list")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    if isinstance(conn_or_engine, Connection):
        return _import(conn_or_engine, Path(path), list_name, secret, confirmed, batch, progress)
    with conn_or_engine.connect() as conn:
        return _import(conn, Path(path), list_name, secret, confirmed, batch, progress)


def _import(
    conn: Connection,
    path: Path,
    list_name: str,
    secret: bytes,
    confirmed: bool,
    batch: int,
    progress: Progress | None,
) -> ImportReport:
    report = ImportReport()
    with path.open("rb") as stream:
        reader = _Reader(stream, str(path), progress, path.stat().st_size)
        rows = reader.rows()
        columns, width = _header(reader, rows)
        if columns is None:
            report.problems = reader.problems
            return report
        # 8 bytes of each address's HMAC: a million of them fit in tens of MB, where the
        # addresses themselves would not; a false "duplicate" needs a 64-bit collision.
        seen: set[bytes] = set()
        pending: list[_Row] = []
        writer = _Writer(list_name, path.name, confirmed, report)
        for line, fields in rows:
            if not any(value.strip() for value in fields):
                continue
            report.rows += 1
            checked = _check(fields, columns, width)
            if isinstance(checked, str):
                reader.problem(checked, line=line)
                continue
            email, name, zone = checked
            digest = hmac.new(secret, email.encode("utf-8"), sha256).digest()
            if digest[:8] in seen:
                reader.problem(f"{email} appears earlier in the file; this row skipped", line=line)
                continue
            seen.add(digest[:8])
            pending.append(_Row(line, email, name, zone, digest.hex()))
            if len(pending) >= batch:
                writer.write(conn, pending)
                pending = []
        if pending:
            writer.write(conn, pending)
    report.rows += reader.undecodable
    report.problems = reader.problems
    return report


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


class _Writer:
    def __init__(self, list_name: str, form: str, confirmed: bool, report: ImportReport):
        self.list_name, self.form, self.confirmed, self.report = list_name, form, confirmed, report

    def write(self, conn: Connection, rows: list[_Row]) -> None:
        if conn.in_transaction():
            self._write(conn, rows)  # the caller owns the transaction
        else:
            with conn.begin():
                self._write(conn, rows)

    def _write(self, conn: Connection, rows: list[_Row]) -> None:
        now = datetime.now(UTC)
        hashes = [row.hash for row in rows]
        suppressed = {
            found
            for (found,) in _select_in(
                conn, "SELECT address_hash FROM suppressions WHERE address_hash IN (*)", (), hashes
            )
        }
        emails = [row.email for row in rows]
        existing: dict[str, tuple[str, str | None]] = {
            email: (subscriber_id, status)
            for email, subscriber_id, status in _select_in(
                conn,
                "SELECT s.email, s.id, t.status FROM subscribers s LEFT JOIN subscriptions t"
                " ON t.subscriber_id = s.id AND t.list_name = ? WHERE s.email IN (*)",
                (self.list_name,),
                emails,
            )
        }
        stamp = _stamp(conn, now)
        new: list[tuple[str, str, str, str]] = []
        ids: dict[str, str] = {}
        renamed: list[tuple[str, str, str, str, str]] = []
        for row in rows:
            found = existing.get(row.email)
            if row.hash in suppressed or (found is not None and found[1] == "unsubscribed"):
                self.report.skipped += 1
            elif found is None:
                ids[row.email] = secrets.token_urlsafe(12)
                new.append((ids[row.email], row.email, row.name, row.timezone))
            else:
                ids[row.email] = found[0]
                self.report.updated += 1
                if row.name or row.timezone:
                    renamed.append((row.name, row.name, row.timezone, row.timezone, found[0]))
        if new:
            _insert_many(
                conn,
                "INSERT INTO subscribers (id, email, name, timezone, created_at)",
                "ON CONFLICT (email) DO NOTHING",
                new,
                _TEXT * 4,
                (stamp,),
            )
            # Another process may have added some of these meanwhile: take the ids that won.
            added = [item[1] for item in new]
            won = _select_in(
                conn, "SELECT email, id FROM subscribers WHERE email IN (*)", (), added
            )
            for email, subscriber_id in won:
                if subscriber_id != ids[email]:
                    self.report.updated += 1
                    ids[email] = subscriber_id
                else:
                    self.report.added += 1
        if renamed:
            # Only the values the file gives: an empty cell never wipes a stored name.
            _many(
                conn,
                "UPDATE subscribers SET name = CASE WHEN ? = '' THEN name ELSE ? END,"
                " timezone = CASE WHEN ? = '' THEN timezone ELSE ? END WHERE id = ?",
                renamed,
            )
        if ids:
            self._subscribe(conn, list(ids.values()), stamp)

    def _subscribe(self, conn: Connection, ids: list[str], stamp: Any) -> None:
        status = "confirmed" if self.confirmed else "pending"
        each = [(subscriber_id,) for subscriber_id in ids]
        insert = (
            "INSERT INTO subscriptions (subscriber_id, list_name, status, created_at, updated_at)"
        )
        conflict = "ON CONFLICT (subscriber_id, list_name)"
        fixed = (self.list_name, status, stamp, stamp)
        if not self.confirmed:
            # An unconfirmed import never downgrades a confirmed subscription.
            _insert_many(conn, insert, conflict + " DO NOTHING", each, _TEXT, fixed)
            return
        # The WHERE guards against an unsubscribe that lands between our read and this write.
        _insert_many(
            conn,
            insert,
            conflict + " DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at"
            " WHERE subscriptions.status <> 'unsubscribed'",
            each,
            _TEXT,
            fixed,
        )
        _insert_many(
            conn,
            "INSERT INTO consent_records (subscriber_id, list_name, action, form, created_at)",
            "",
            each,
            _TEXT,
            (self.list_name, "imported", self.form, stamp),
        )


def _stamp(conn: Connection, now: datetime) -> Any:
    """``now`` as the driver takes it for a UTCDateTime column (SQLite: text), computed once."""
    process = subscribers.c.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return now if process is None else process(now)


# Straight to the driver: SQLAlchemy's per-value processing (five datetimes a row) and compiling
# 5000-item IN lists cost more than the database work. The SQL is plain enough for both engines.


def _sql(conn: Connection, sql: str) -> str:
    return sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")  # psycopg


def _many(conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    conn.exec_driver_sql(_sql(conn, sql), rows)


def _select_in(
    conn: Connection, sql: str, params: tuple[Any, ...], values: list[str]
) -> Iterable[Any]:
    """Run sql with its "IN (*)" matching ``values``: one placeholder per value on SQLite, one
    array parameter (= ANY) on PostgreSQL, whose driver parses long queries slowly."""
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql(
            _sql(conn, sql.replace("IN (*)", "= ANY(?)")), (*params, values)
        )
    placeholders = f"({', '.join('?' * len(values))})"
    return conn.exec_driver_sql(sql.replace("(*)", placeholders), (*params, *values))


def _insert_many(
    conn: Connection,
    head: str,
    tail: str,
    rows: list[tuple[Any, ...]],
    pg_types: tuple[str, ...],
    fixed: tuple[Any, ...] = (),
) -> None:
    """``head`` (INSERT INTO t (columns)) with every row, then ``tail`` (ON CONFLICT ...).

    Each row holds the first columns (of ``pg_types``); ``fixed`` fills the rest, the same for
    every row. SQLite: executemany, one prepared statement stepped in-process, its fast path.
    PostgreSQL: one statement per batch, the varying columns sent as binary arrays (which psycopg
    dumps without quoting each element) and unnested, the fixed ones once.
    """
    if conn.dialect.name != "postgresql":
        marks = ", ".join("?" * (len(pg_types) + len(fixed)))
        _many(conn, f"{head} VALUES ({marks}) {tail}", [(*row, *fixed) for row in rows])
        return
    arrays = ", ".join(f"%b::{kind}[]" for kind in pg_types)
    columns = tuple(list(column) for column in zip(*rows, strict=True))
    select = " ".join(("SELECT u.*", ", %s" * len(fixed), "FROM unnest(", arrays, ") AS u"))
    conn.exec_driver_sql(" ".join((head, select, tail)), (*fixed, *columns))
