"""A sender's batch of rows: taken (``take``), screened (``screen``), its results written
(``record``), and the addresses refused for good suppressed (``suppress_bounced``).

Each engine has its own statements for the work done once per batch: ledger.sqlite (SQL text on
the sqlite3 connection) and ledger.postgresql (Core, rows locked as they are taken).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Connection, select

from speakerfeed.models import DeliveryResult, DeliveryState, Outcome, Subscriber
from speakerfeed.store.ledger import postgresql, sqlite
from speakerfeed.store.ledger.rows import Taken, among, set_rows, utc_now
from speakerfeed.store.schema import sends, subscribers
from speakerfeed.store.subscribers import AddressHasher, suppress

_OUTCOME_STATE = {
    Outcome.SENT: DeliveryState.SENT,
    Outcome.FAILED: DeliveryState.FAILED,
    Outcome.UNKNOWN: DeliveryState.UNKNOWN,
    Outcome.DEFERRED: DeliveryState.PENDING,
}


def take(conn: Connection, send_id: str, *, worker: str, limit: int) -> Taken:
    """Mark up to ``limit`` pending rows ``sending`` for ``worker``, in subscriber order.
    Committed on its own, before ``screen``, it holds SQLite's one write lock (which every
    other process of the send waits for) only as long as it must.

    On SQLite it is one UPDATE ... RETURNING: the first write of the transaction, so it waits
    for the write lock (the busy timeout) before reading which rows are pending, and two
    processes never take the same row. On PostgreSQL the rows are locked first (FOR UPDATE
    SKIP LOCKED), so other workers pass them by.
    """
    now = utc_now()
    if conn.dialect.name == "postgresql":
        return Taken(postgresql.take(conn, send_id, worker=worker, limit=limit, now=now))
    found = sqlite.take(conn, send_id, worker=worker, limit=limit, now=now)
    return Taken(sorted(found), found)


def screen(conn: Connection, send_id: str, taken: Taken, *, secret: bytes) -> list[Subscriber]:
    """Of the rows just taken (``sending``), the people still subscribed to the list and not
    suppressed, in subscriber order; the others are marked ``skipped``. (Rows taken as they
    were added, ``taken.confirmed``, were confirmed subscribers a moment ago: only whether the
    person is still in the store, and not suppressed, is read.)"""
    ids = taken.ids
    if taken.confirmed:
        people = _people(conn, ids)
    else:
        list_name = conn.execute(
            select(sends.c.list_name).where(sends.c.id == send_id)
        ).scalar_one()
        people = _people(conn, ids, confirmed_on=list_name)
    hashed = AddressHasher(secret)
    hashes = [hashed(email) for _, email, _ in people]
    suppressed = _suppressed(conn, hashes)
    chosen = [
        Subscriber(*person)
        for person, address_hash in zip(people, hashes, strict=True)
        if address_hash not in suppressed
    ]
    if len(chosen) < len(ids):
        kept = {subscriber.id for subscriber in chosen}
        skipped = [subscriber_id for subscriber_id in ids if subscriber_id not in kept]
        set_rows(
            conn,
            send_id,
            skipped,
            state=DeliveryState.SKIPPED,
            now=utc_now(),
            detail="left or suppressed",
            only_from=DeliveryState.SENDING,
            rowids=taken.rowids,
        )
    return chosen


def _people(
    conn: Connection, ids: Sequence[str], *, confirmed_on: str | None = None
) -> list[tuple[str, str, str]]:
    """(id, email, name) of those of ``ids`` still in the store (not erased), in id order; with
    ``confirmed_on``, only those still confirmed on that list."""
    if conn.dialect.name == "sqlite":
        return sqlite.people(conn, ids, confirmed_on=confirmed_on)
    return postgresql.people(conn, ids, confirmed_on=confirmed_on)


def _suppressed(conn: Connection, hashes: Sequence[str]) -> set[str]:
    """Those of the address ``hashes`` on the suppression list."""
    if not hashes:
        return set()
    if conn.dialect.name == "sqlite":
        return sqlite.suppressed(conn, hashes)
    return postgresql.suppressed(conn, hashes)


def record(
    conn: Connection,
    send_id: str,
    results: Iterable[DeliveryResult],
    *,
    rowids: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Write the transport's results (for rows of ``take``: pass its ``rowids``); counts per
    new state."""
    results = list(results)
    if rowids and conn.dialect.name == "sqlite" and all(r.key in rowids for r in results):
        return _record_by_rowid(conn, send_id, results, rowids)
    # One UPDATE per distinct outcome: the results of a request mostly share theirs.
    grouped: dict[tuple[Outcome, str, str], list[str]] = {}
    for result in results:
        key = (result.outcome, result.provider_id, result.detail)
        keys = grouped.get(key)
        if keys is None:
            grouped[key] = keys = []
        keys.append(result.key)
    counts: dict[str, int] = {}
    now = utc_now()
    for (outcome, provider_id, detail), keys in grouped.items():
        state = _OUTCOME_STATE[outcome]
        set_rows(
            conn,
            send_id,
            keys,
            state=state,
            now=now,
            provider_id=provider_id[:200],
            detail=detail[:1000],
            only_from=DeliveryState.SENDING,
            rowids=rowids,
        )
        counts[state] = counts.get(state, 0) + len(keys)
    return counts


def _record_by_rowid(
    conn: Connection, send_id: str, results: list[DeliveryResult], rowids: Mapping[str, int]
) -> dict[str, int]:
    """``record`` on SQLite: one statement per new state, each row its own provider id and
    detail (sqlite.record_by_rowid)."""
    by_state: dict[str, list[tuple[int, str, str]]] = {}
    for result in results:
        row = (rowids[result.key], result.provider_id[:200], result.detail[:1000])
        by_state.setdefault(_OUTCOME_STATE[result.outcome], []).append(row)
    now = utc_now()
    for new_state, rows in by_state.items():
        sqlite.record_by_rowid(conn, send_id, new_state, now, rows, only_from=DeliveryState.SENDING)
    return {new_state: len(rows) for new_state, rows in by_state.items()}


def suppress_bounced(conn: Connection, subscriber_ids: Sequence[str], *, secret: bytes) -> int:
    """Suppress the addresses of the people a provider refused for good (a hard bounce: no
    such mailbox), so that no later send mails them; how many were new suppressions."""
    if not subscriber_ids:
        return 0
    emails = conn.execute(
        select(subscribers.c.email).where(among(conn, subscribers.c.id, subscriber_ids))
    ).scalars()
    hashed = AddressHasher(secret)
    return sum(suppress(conn, hashed(email), "bounced") for email in emails)
