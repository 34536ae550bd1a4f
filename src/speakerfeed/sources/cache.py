"""The incremental-build cache: parsed articles keyed by path and content hash, and the manifest of
output files written, so that a rebuild parses and renders only what changed.

It lives in a SQLite file in var/cache (ours alone, never shared) so that saving after a one-article
change writes that article's row and a few output rows, not the whole archive. It is thrown away
whole when speakerfeed's version or a setting that shapes articles or documents changes.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from speakerfeed import __version__
from speakerfeed.errors import Problem
from speakerfeed.models import Article

log = logging.getLogger(__name__)
CACHE_FORMAT = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL, entry BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS outputs (
    path TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class CachedArticle:
    digest: str
    article: Article | None
    problem: Problem | None

    @classmethod
    def failed(cls, problem: Problem) -> CachedArticle:
        return cls("", None, problem)


@dataclass(frozen=True, slots=True)
class WrittenFile:
    fingerprint: str  # of the inputs the document was rendered from
    size: int
    mtime_ns: int


@dataclass(slots=True)
class ArticleCache:
    key: str  # speakerfeed version + settings that shape articles and documents
    entries: dict[str, tuple[int, int, CachedArticle]] = field(default_factory=dict)
    outputs: dict[str, WrittenFile] = field(default_factory=dict)
    # What changed since the cache was loaded or saved: only that is written back.
    changed_entries: set[str] = field(default_factory=set)
    changed_outputs: set[str] = field(default_factory=set)

    def store(self, path: str, mtime_ns: int, size: int, cached: CachedArticle) -> None:
        self.entries[path] = (mtime_ns, size, cached)
        self.changed_entries.add(path)

    def forget_except(self, paths: set[str]) -> None:
        for gone in set(self.entries) - paths:
            del self.entries[gone]
            self.changed_entries.add(gone)

    def record_output(self, path: str, written: WrittenFile | None) -> None:
        if written is None:
            self.outputs.pop(path, None)
        else:
            self.outputs[path] = written
        self.changed_outputs.add(path)


def cache_key(*parts: object) -> str:
    text = repr((CACHE_FORMAT, __version__, *parts))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(_SCHEMA)
    return connection


def load_cache(path: Path, key: str) -> ArticleCache:
    cache = ArticleCache(key)
    if not path.exists():
        return cache
    try:
        connection = _connect(path)
        try:
            row = connection.execute("SELECT value FROM meta WHERE key = 'cache_key'").fetchone()
            if row is None or row[0] != key:
                return cache  # another version or other settings: start afresh
            for name, mtime_ns, size, blob in connection.execute("SELECT * FROM articles"):
                cache.entries[name] = (mtime_ns, size, pickle.loads(blob))  # noqa: S301 - ours
            for name, fingerprint, size, mtime_ns in connection.execute("SELECT * FROM outputs"):
                cache.outputs[name] = WrittenFile(fingerprint, size, mtime_ns)
        finally:
            connection.close()
    except (sqlite3.Error, pickle.UnpicklingError, EOFError, AttributeError, TypeError) as exc:
        log.warning("ignoring unreadable build cache %s (%s): rebuilding everything", path, exc)
        return ArticleCache(key)
    return cache


def save_cache(path: Path, cache: ArticleCache) -> None:
    """Write what changed since the last load or save, in one transaction."""
    if not cache.changed_entries and not cache.changed_outputs:
        return
    connection = _connect(path)
    try:
        with connection:
            stored = connection.execute("SELECT value FROM meta WHERE key = 'cache_key'").fetchone()
            if stored is None or stored[0] != cache.key:
                connection.execute("DELETE FROM articles")
                connection.execute("DELETE FROM outputs")
                connection.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('cache_key', ?)", (cache.key,)
                )
                changed_entries, changed_outputs = set(cache.entries), set(cache.outputs)
            else:
                changed_entries, changed_outputs = cache.changed_entries, cache.changed_outputs
            _save_rows(connection, cache, changed_entries, changed_outputs)
    finally:
        connection.close()
    cache.changed_entries.clear()
    cache.changed_outputs.clear()


def _save_rows(
    connection: sqlite3.Connection, cache: ArticleCache, entries: set[str], outputs: set[str]
) -> None:
    gone = [(name,) for name in entries if name not in cache.entries]
    connection.executemany("DELETE FROM articles WHERE path = ?", gone)
    connection.executemany(
        "INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?)",
        (
            (name, mtime_ns, size, pickle.dumps(cached, protocol=pickle.HIGHEST_PROTOCOL))
            for name in entries
            if name in cache.entries
            for mtime_ns, size, cached in [cache.entries[name]]
        ),
    )
    connection.executemany(
        "DELETE FROM outputs WHERE path = ?", [(n,) for n in outputs if n not in cache.outputs]
    )
    connection.executemany(
        "INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?)",
        (
            (name, record.fingerprint, record.size, record.mtime_ns)
            for name in outputs
            if name in cache.outputs
            for record in [cache.outputs[name]]
        ),
    )
