"""Which articles went into which digest, per list and cadence: what a list's next digest leaves
out, whatever the output folder holds.

An article is identified by its id (models.Article.id), which an edit keeps, so an edited article
is not sent again. The rows of a digest are written in the transaction that records its send
(digest.issue.open_send): a crash before it leaves the articles for the next digest, one after it
leaves a send that the ledger resumes, and either way no article is lost or sent twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import (
    Connection,
    Select,
    String,
    Table,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY

from speakerfeed.store.ledger.rows import among
from speakerfeed.store.schema import digest_articles, sends


class PastDigest(NamedTuple):
    """A digest that was issued before this table existed, as its web copy records it."""

    digest_id: str
    list_name: str
    cadence: str
    issued: datetime
    article_ids: tuple[str, ...]


def article_hash(article_id: str) -> str:
    """The key of an article id: ids from upstream feeds can be of any length."""
    return hashlib.sha256(article_id.encode("utf-8")).hexdigest()


def included(
    conn: Connection, list_name: str, cadence: str, article_ids: Iterable[str]
) -> frozenset[str] | None:
    """Those of ``article_ids`` already in a digest of the list's ``cadence``; None when that
    cadence has never had a digest (its next one is its first)."""
    mine = (digest_articles.c.list_name == list_name, digest_articles.c.cadence == cadence)
    sent_before = or_(
        exists().where(*mine),
        exists().where(sends.c.list_name == list_name, sends.c.cadence == cadence),
    )
    if not conn.execute(select(sent_before)).scalar():
        return None
    by_hash = {article_hash(article_id): article_id for article_id in article_ids}
    rows = conn.execute(_held(conn, list(by_hash)).where(*mine))
    found = {by_hash[key] for key in rows.scalars()}
    return frozenset(found)


def record(
    conn: Connection,
    digest_id: str,
    list_name: str,
    cadence: str,
    article_ids: Sequence[str],
    *,
    at: datetime,
) -> None:
    """Record that the digest ``digest_id`` of the list's ``cadence`` holds ``article_ids``.
    An article already in one of that cadence's digests is an IntegrityError: the caller's
    transaction (the send's) then records nothing."""
    if article_ids:
        conn.execute(
            insert(digest_articles),
            [
                {
                    "list_name": list_name,
                    "cadence": cadence,
                    "article_hash": article_hash(article_id),
                    "article_id": article_id,
                    "digest_id": digest_id,
                    "included_at": at,
                }
                for article_id in article_ids
            ],
        )


def digests_of(conn: Connection, list_name: str, cadence: str = "") -> dict[str, list[str]]:
    """The article ids of each digest of the list's ``cadence``, by digest id."""
    rows = conn.execute(
        select(digest_articles.c.digest_id, digest_articles.c.article_id)
        .where(digest_articles.c.list_name == list_name, digest_articles.c.cadence == cadence)
        .order_by(digest_articles.c.digest_id, digest_articles.c.article_id)
    )
    found: dict[str, list[str]] = {}
    for digest_id, article_id in rows:
        found.setdefault(str(digest_id), []).append(str(article_id))
    return found


def recover(conn: Connection, past: Iterable[PastDigest], table: Table = digest_articles) -> int:
    """Record what earlier digests held (once, by migration 0009, into the ``table`` it made),
    oldest digest first so an article that two of them held counts for the first; the rows
    added."""
    seen: set[tuple[str, str, str]] = set()
    rows = []
    for digest in sorted(past, key=lambda d: (d.issued, d.digest_id)):
        if not _fits(table, digest):
            continue  # a foreign file's names: no digest of ours
        for article_id in digest.article_ids:
            key = (digest.list_name, digest.cadence, article_hash(article_id))
            if key in seen:
                continue
            seen.add(key)
            rows.append(
                {
                    "list_name": digest.list_name,
                    "cadence": digest.cadence,
                    "article_hash": key[2],
                    "article_id": article_id,
                    "digest_id": digest.digest_id,
                    # In UTC: the migration's table has no UTCDateTime to convert it.
                    "included_at": digest.issued.astimezone(UTC),
                }
            )
    if rows:
        conn.execute(insert(table), rows)
    return len(rows)


def _fits(table: Table, digest: PastDigest) -> bool:
    values = {"list_name": digest.list_name, "cadence": digest.cadence, "id": digest.digest_id}
    columns = {"list_name": "list_name", "cadence": "cadence", "id": "digest_id"}
    return all(
        len(value) <= getattr(table.c[columns[name]].type, "length", 0)
        for name, value in values.items()
    )


def _held(conn: Connection, hashes: list[str]) -> Select[str]:
    """The rows among ``hashes``, bound as one parameter however many. On PostgreSQL a join
    with them: after ten runs on one connection it plans a prepared ``= ANY(array)``
    generically, comparing every row with every hash (4 s instead of 0.2 s for 1,000 hashes
    against 100,000 rows). On SQLite an ``IN`` (ledger's ``among``): as a join it read the
    whole array once per row (30 s)."""
    column = digest_articles.c.article_hash
    if conn.dialect.name != "postgresql":
        return select(column).where(among(conn, column, hashes))
    array = bindparam(None, hashes, type_=ARRAY(String))
    given = func.unnest(array).table_valued("value").render_derived()
    return select(column).join(given, column == given.c.value)
