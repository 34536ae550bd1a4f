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

This module reads and checks the rows; speakerfeed.store.import_writers writes them.
"""

from __future__ import annotations

import csv
import functools
import zoneinfo
from array import array
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Connection, Engine

from speakerfeed.errors import AddressError, Problem
from speakerfeed.mail.addresses import mailable_address
from speakerfeed.store.import_writers import Batches, Target, Writer
from speakerfeed.store.subscribers import AddressHasher

# (phase, bytes read since the last call, bytes in the file): steps, as every bar's caller gives.
Progress = Callable[[str, int, int], None]
KNOWN_COLUMNS = ("email", "name", "timezone")
# What spreadsheet programs write: comma, semicolon where the comma is the decimal mark, tab.
DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {",": "comma (,)", ";": "semicolon (;)", "\t": "tab"}
_MAX_TIMEZONE = 64  # the column's width; only in messages now, as every zone name is shorter
# Concurrent writers per engine; PostgreSQL's server does most of the work, in one process per
# connection, so two connections use both cores. SQLite allows one writer at a time.
_WRITERS = {"postgresql": 2}


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

    def __init__(
        self,
        stream: BinaryIO,
        where: str,
        progress: Progress | None,
        total: int,
        delimiter: str = ",",
    ):
        self.stream, self.where, self.progress, self.total = stream, where, progress, total
        self.delimiter = delimiter
        self.reported = 0  # bytes already passed to progress
        self.line = 0
        self.undecodable = 0  # lines that never reach the CSV parser, counted as rows read
        self.problems: list[Problem] = []

    def _text_lines(self) -> Iterator[str]:
        for number, raw in enumerate(self.stream, 1):
            self.line = number
            if number % 10_000 == 0 and self.progress is not None:
                self._advance(self.stream.tell())
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a BOM, as spreadsheet programs write
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.undecodable += 1
                self.problem(f"not UTF-8 (byte {exc.start + 1} of the line); line skipped")

    def _advance(self, position: int) -> None:
        """Tell progress how many bytes were read since last time: the bar counts bytes too."""
        assert self.progress is not None
        self.progress("import", position - self.reported, self.total)
        self.reported = position

    def problem(self, message: str, *, warning: bool = False, line: int | None = None) -> None:
        self.problems.append(Problem(self.where, message, line or self.line, warning))

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        # A quoted field may span lines; it is then numbered by the line where it ends.
        parsed = csv.reader(self._text_lines(), delimiter=self.delimiter)
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
            self._advance(self.total)


def import_csv(
    conn_or_engine: Connection | Engine,
    path: Path,
    list_name: str,
    *,
    secret: bytes,
    confirmed: bool,
    update: bool = False,
    dry_run: bool = False,
    batch: int = 100_000,
    progress: Progress | None = None,
    smtputf8: bool = False,
) -> ImportReport:
    """Import the subscribers in the CSV file at ``path`` into ``list_name``.

    Columns by header: ``email`` (required), ``name``, ``timezone``. With ``confirmed`` the
    subscriptions are confirmed and each gets a consent record (action "imported", form = the
    file's name); without, new subscriptions are pending (they need double opt-in) and an
    existing subscription keeps its status. Addresses are checked by mail.addresses, as at
    sign-up (``smtputf8``: the transport can send to a non-ASCII local part). A stored subscriber
    keeps the name and time zone they have (a reader may have chosen them) and only gets those
    they lack, unless ``update``: then the file's non-empty values replace them. Each ``batch``
    rows are written in one transaction (unless the connection given is already in one: then the
    caller's transaction holds them all). With ``dry_run`` everything is done in one transaction
    that is rolled back: the report is the one a real import would give, and nothing is kept.
    """
    if not secret:
        raise ValueError("the secret is needed to match addresses against the suppression list")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    target = Target(list_name, Path(path).name, confirmed, update=update)
    if isinstance(conn_or_engine, Connection):
        writers = [Writer(conn_or_engine, target, threaded=False)]
        return _import(writers, Path(path), secret, batch, progress, smtputf8)
    if dry_run:
        with conn_or_engine.connect() as conn:
            transaction = conn.begin()
            try:
                writers = [Writer(conn, target, threaded=False)]
                return _import(writers, Path(path), secret, batch, progress, smtputf8)
            finally:
                transaction.rollback()
    with ExitStack() as stack:
        count = _WRITERS.get(conn_or_engine.dialect.name, 1)
        connections = [stack.enter_context(conn_or_engine.connect()) for _ in range(count)]
        writers = [Writer(conn, target, threaded=True) for conn in connections]
        return _import(writers, Path(path), secret, batch, progress, smtputf8)


def _import(
    writers: list[Writer],
    path: Path,
    secret: bytes,
    batch: int,
    progress: Progress | None,
    smtputf8: bool,
) -> ImportReport:
    report = ImportReport()
    with path.open("rb") as stream:
        delimiter = guess_delimiter(stream)
        reader = _Reader(stream, str(path), progress, path.stat().st_size, delimiter)
        rows = reader.rows()
        columns, width = _header(reader, rows)
        if columns is not None:
            with Batches(writers, batch) as batches:
                _check_rows(reader, rows, columns, width, secret, smtputf8, report, batches)
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
    smtputf8: bool,
    report: ImportReport,
    batches: Batches,
) -> None:
    """Check each row and pass the good ones on; the loop every row goes through, so it calls
    no Python function of its own on the way but the one address check (a regex and a cached
    look-up for the usual address)."""
    email_at = columns["email"]
    name_at = columns.get("name")
    zone_at = columns.get("timezone")
    digest = AddressHasher(secret).digest
    seen = _Seen()
    known_zones = _known_zones()
    for line, fields in rows:
        if len(fields) != width or not fields[email_at].strip():
            message = _unusable(fields, width)
            if message is not None:  # None: a blank line, not a row
                report.rows += 1
                reader.problem(message, line=line)
            continue
        report.rows += 1
        # The one check (mail.addresses): what sign-up and `subscribers add` accept, stored in
        # the same spelling (lower-cased, an IDN domain as ASCII).
        try:
            email = mailable_address(fields[email_at], smtputf8=smtputf8)
        except AddressError as exc:
            reader.problem(f"not an email address: {fields[email_at]!r} ({exc.reason})", line=line)
            continue
        name = "" if name_at is None else fields[name_at].strip()
        zone = "" if zone_at is None else fields[zone_at].strip()
        if zone and zone not in known_zones:
            # The address is good: import it, on the list's own time zone, and say so.
            shown = zone if len(zone) <= _MAX_TIMEZONE else zone[:_MAX_TIMEZONE] + "…"
            reader.problem(
                f"unknown time zone {shown!r} (expected an IANA name such as Europe/London);"
                " imported without one",
                line=line,
                warning=True,
            )
            zone = ""
        mac = digest(email.encode("utf-8"))
        if not seen.add(int.from_bytes(mac[:8]) | 1):
            reader.problem(f"{email} appears earlier in the file; this row skipped", line=line)
            continue
        batches.add(email, name, zone, mac.hex())


def guess_delimiter(stream: BinaryIO) -> str:
    """The delimiter of the file's header (its first non-blank line): whichever of DELIMITERS
    it holds most of, comma on a tie or none; the stream is put back where it was."""
    start = stream.tell()
    header = b""
    for raw in stream:
        if raw.strip():
            header = raw
            break
    stream.seek(start)
    counts = {delimiter: header.count(delimiter.encode()) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


@functools.cache
def _known_zones() -> frozenset[str]:
    """The IANA time zone names, as the preferences page offers them."""
    return frozenset(zoneinfo.available_timezones())


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
            found = ", ".join(repr(value.strip()) for value in fields)
            reader.problem(
                f"no 'email' column in the header; found {found} with the delimiter guessed as"
                f" {_DELIMITER_NAMES[reader.delimiter]}; nothing imported",
                line=line,
            )
            return None, 0
        unknown = [name for name in names if name not in KNOWN_COLUMNS]
        if unknown:
            reader.problem(
                f"unknown column(s) ignored: {', '.join(unknown)}", line=line, warning=True
            )
        return columns, len(names)
    reader.problem("empty file: no header line", line=1)
    return None, 0
