"""The delivery ledger: one row per (send, subscriber), so a send survives crashes and restarts.

A send's rows are its audience: the confirmed subscribers of its list (and cadence), added in
subscriber order, all at once by ``create_send`` or a batch at a time by the senders as they run
out of pending rows (``claim_audience``, which adds the rows already claimed), so a large send
starts at once.

A row's life: ``pending`` -> ``sending`` (claimed by a worker and handed to the transport) ->
``sent`` (the provider accepted it) | ``failed`` (refused for good) | ``unknown`` (the worker
died, or the connection broke, after the message may have left: never resent automatically) |
``skipped`` (the person left or was suppressed before their turn). A refusal for now (deferred)
goes back to ``pending``.

Claiming takes a batch of pending rows and marks them ``sending`` (``take``: PostgreSQL locks
them first, ``FOR UPDATE SKIP LOCKED``; on SQLite it is one UPDATE ... RETURNING, the
transaction's first statement, so it holds the one write lock before it reads: either way
several processes share a send and never take the same row), then checks each person is still
subscribed and not suppressed and marks the others ``skipped`` (``screen``). A sender commits
each on its own, so that SQLite's write lock is held for the take only. Only then is the batch
handed to the transport, and its results are written once they are in (a sender writes them in
the same transaction as its next take). A crash in between leaves ``sending`` rows, which a
later ``release_stale`` turns into ``unknown``: reported, and resent only when an operator asks
(``resend_unknown``).

Only pending rows are indexed by state (schema.PENDING): a take removes its rows from that
index, rows added already claimed never enter it, and writing a result changes no index at
all. On SQLite, ``take`` and ``claim_audience`` also return each row's rowid, by which
``screen`` and ``record`` find it again, and the statements run once per batch are SQL text on
the sqlite3 connection (store.ledger_sqlite: SQLAlchemy's own work per statement and per row
was a large part of their time).

A batch's rows are named in each statement as one bound parameter (a JSON array on SQLite, an
array on PostgreSQL) however many there are: binding one parameter per row cost more than the
statements themselves.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Insert,
    String,
    any_,
    bindparam,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.sql import ColumnElement

from speakerfeed.models import DeliveryResult, DeliveryState, Outcome, SendState, Subscriber
from speakerfeed.store import ledger_sqlite
from speakerfeed.store.schema import (
    DELIVERY_STATES,
    deliveries,
    sends,
    subscribers,
    subscriptions,
    suppressions,
)
from speakerfeed.store.subscribers import AddressHasher, on_cadence, suppress

_OUTCOME_STATE = {
    Outcome.SENT: DeliveryState.SENT,
    Outcome.FAILED: DeliveryState.FAILED,
    Outcome.UNKNOWN: DeliveryState.UNKNOWN,
    Outcome.DEFERRED: DeliveryState.PENDING,
}


@dataclass(frozen=True, slots=True)
class SendContent:
    subject: str
    html: str
    text: str
    view_url: str = ""


def _now() -> datetime:
    return datetime.now(UTC)


def create_send(
    conn: Connection,
    send_id: str,
    list_name: str,
    content: SendContent,
    *,
    scheduled_at: datetime,
    cadence: str = "",
    named_cadences: Collection[str] = (),
    record_audience: bool = True,
) -> bool:
    """Record a send of ``content`` to the confirmed subscribers of the list who get the
    digests of ``cadence`` (see subscribers.on_cadence; ``named_cadences``: the list's own).

    With ``record_audience``, one pending row per person is added now; without, the senders
    add them a batch at a time as they go (``claim_audience``), so the first messages leave at
    once however long the list. False when the send already exists: creating it twice never
    adds a second row for anyone.
    """
    if conn.execute(select(sends.c.id).where(sends.c.id == send_id)).first() is not None:
        return False
    conn.execute(
        insert(sends).values(
            id=send_id,
            list_name=list_name,
            cadence=cadence,
            state=SendState.SENDING,
            subject=content.subject,
            html=content.html,
            text=content.text,
            view_url=content.view_url,
            scheduled_at=scheduled_at,
            created_at=_now(),
            # Named only when not complete: the column's default says complete.
            **({} if record_audience else {"audience_complete": False}),
        )
    )
    if record_audience:
        conn.execute(
            _audience_rows(send_id, list_name, cadence, named_cadences, after=None, limit=None)
        )
    return True


def claim_audience(
    conn: Connection, send_id: str, *, worker: str, named_cadences: Collection[str], limit: int
) -> Taken:
    """Add the send's next ``limit`` people (in subscriber order, after the last one added)
    already taken by ``worker``: their rows go in ``sending``, as ``take`` would have marked
    them, so screen them next as after a ``take``. None taken when its audience was complete;
    fewer than ``limit`` completes it.

    Whoever adds holds the send's row first (the write lock on SQLite), so two senders adding
    at once take turns and each continues where the other stopped. ``named_cadences``: the
    list's own, as for ``create_send``."""
    # A write that changes nothing, to take the lock before reading where adding stopped.
    conn.execute(
        update(sends)
        .where(sends.c.id == send_id)
        .values(audience_complete=sends.c.audience_complete)
    )
    to_add = _audience_to_add(conn, send_id)
    if to_add is None:
        return Taken([])
    list_name, cadence, last = to_add
    people = _audience_rows(
        send_id, list_name, cadence, named_cadences, after=last, limit=limit, worker=worker
    )
    if conn.dialect.name == "sqlite":
        added = conn.execute(people.returning(deliveries.c.subscriber_id, literal_column("rowid")))
        rowids: dict[str, int] = dict(added.all())
        ids = sorted(rowids)
    else:
        rowids = {}
        ids = sorted(conn.execute(people.returning(deliveries.c.subscriber_id)).scalars())
    if len(ids) < limit:
        conn.execute(update(sends).where(sends.c.id == send_id).values(audience_complete=True))
    return Taken(ids, rowids, confirmed=True)


def audience_left(conn: Connection, send_id: str, *, named_cadences: Collection[str]) -> int:
    """How many people ``claim_audience`` has still to add to the send (0 once complete)."""
    to_add = _audience_to_add(conn, send_id)
    if to_add is None:
        return 0
    list_name, cadence, last = to_add
    found = conn.execute(
        select(func.count()).where(*_audience(list_name, cadence, named_cadences, after=last))
    ).scalar_one()
    return int(found)


def _audience_to_add(conn: Connection, send_id: str) -> tuple[str, str, str | None] | None:
    """(the send's list, its cadence, the last subscriber id added), or None when the send's
    audience is complete."""
    row = conn.execute(
        select(sends.c.list_name, sends.c.cadence, sends.c.audience_complete).where(
            sends.c.id == send_id
        )
    ).one()
    if row.audience_complete:
        return None
    last = conn.execute(
        select(func.max(deliveries.c.subscriber_id)).where(deliveries.c.send_id == send_id)
    ).scalar()
    return str(row.list_name), str(row.cadence), last


def _audience_rows(
    send_id: str,
    list_name: str,
    cadence: str,
    named_cadences: Collection[str],
    *,
    after: str | None,
    limit: int | None,
    worker: str | None = None,
) -> Insert:
    """The ledger rows of the audience after subscriber id ``after``, up to ``limit`` of them:
    pending, or with ``worker`` already taken by it (``sending``)."""
    # In id order: one ordered scan of the (list, status, id, cadence) index, which fills the
    # ledger's own indexes from one end, page by page.
    people = (
        select(
            literal(send_id),
            subscriptions.c.subscriber_id,
            literal(
                DeliveryState.PENDING if worker is None else DeliveryState.SENDING,
                type_=deliveries.c.state.type,
            ),
            literal(worker or ""),
            literal(_now(), type_=deliveries.c.updated_at.type),
        )
        .where(*_audience(list_name, cadence, named_cadences, after=after))
        .order_by(subscriptions.c.subscriber_id)
        .limit(limit)
    )
    return insert(deliveries).from_select(
        ["send_id", "subscriber_id", "state", "worker", "updated_at"], people
    )


def _audience(
    list_name: str, cadence: str, named_cadences: Collection[str], *, after: str | None
) -> list[ColumnElement[bool]]:
    """The conditions on subscriptions that pick a send's audience after subscriber ``after``."""
    conditions = [
        subscriptions.c.list_name == list_name,
        subscriptions.c.status == "confirmed",
        on_cadence(cadence, named_cadences),
    ]
    if after is not None:
        conditions.append(subscriptions.c.subscriber_id > after)
    return conditions


@dataclass(frozen=True, slots=True)
class Taken:
    """The rows ``take`` marked ``sending``: their subscriber ids in order, and on SQLite each
    row's rowid, by which ``screen`` and ``record`` find it again (one lookup in the table, not
    one in the primary key's index and then one in the table). ``confirmed``: the rows were
    added from the list's confirmed subscribers as they were taken (``claim_audience``), so
    ``screen`` need not read their subscriptions again, only whether they are suppressed."""

    ids: list[str]
    rowids: Mapping[str, int] = field(default_factory=dict)
    confirmed: bool = False


def take(conn: Connection, send_id: str, *, worker: str, limit: int) -> Taken:
    """Mark up to ``limit`` pending rows ``sending`` for ``worker``, in subscriber order.
    Committed on its own, before ``screen``, it holds SQLite's one write lock (which every
    other process of the send waits for) only as long as it must.

    On SQLite it is one UPDATE ... RETURNING: the first write of the transaction, so it waits
    for the write lock (the busy timeout) before reading which rows are pending, and two
    processes never take the same row. On PostgreSQL the rows are locked first (FOR UPDATE
    SKIP LOCKED), so other workers pass them by.
    """
    now = _now()
    if conn.dialect.name == "postgresql":
        pending = (
            select(deliveries.c.subscriber_id)
            .where(deliveries.c.send_id == send_id, _is_pending(deliveries.c.state))
            .order_by(deliveries.c.subscriber_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list(conn.execute(pending).scalars().all())
        if ids:
            _set(conn, send_id, ids, state=DeliveryState.SENDING, now=now, worker=worker)
        return Taken(ids)
    found = ledger_sqlite.take(conn, send_id, worker=worker, limit=limit, now=now)
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
        _set(
            conn,
            send_id,
            skipped,
            state=DeliveryState.SKIPPED,
            now=_now(),
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
        return ledger_sqlite.people(conn, ids, confirmed_on=confirmed_on)
    among: ColumnElement[bool] = _among(conn, subscribers.c.id, ids)
    if confirmed_on is not None:
        # "IN (confirmed ids among these)" reads the status from the (list, status, id) index;
        # a join or EXISTS on the subscription reads each one's table row as well.
        among = subscribers.c.id.in_(
            select(subscriptions.c.subscriber_id).where(
                subscriptions.c.list_name == confirmed_on,
                subscriptions.c.status == "confirmed",
                _among(conn, subscriptions.c.subscriber_id, ids),
            )
        )
    rows = conn.execute(
        select(subscribers.c.id, subscribers.c.email, subscribers.c.name)
        .where(among)
        .order_by(subscribers.c.id)
    )
    return [(subscriber_id, email, name) for subscriber_id, email, name in rows.all()]


def _suppressed(conn: Connection, hashes: Sequence[str]) -> set[str]:
    """Those of the address ``hashes`` on the suppression list."""
    if not hashes:
        return set()
    if conn.dialect.name == "sqlite":
        return ledger_sqlite.suppressed(conn, hashes)
    found = conn.execute(
        select(suppressions.c.address_hash).where(_among(conn, suppressions.c.address_hash, hashes))
    )
    return set(found.scalars())


def record(
    conn: Connection,
    send_id: str,
    results: Iterable[DeliveryResult],
    *,
    rowids: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Write the transport's results (for rows of ``take``: pass its ``rowids``); counts per
    new state."""
    # One UPDATE per distinct outcome: the results of a request mostly share theirs.
    grouped: dict[tuple[Outcome, str, str], list[str]] = {}
    for result in results:
        key = (result.outcome, result.provider_id, result.detail)
        keys = grouped.get(key)
        if keys is None:
            grouped[key] = keys = []
        keys.append(result.key)
    counts: dict[str, int] = {}
    now = _now()
    for (outcome, provider_id, detail), keys in grouped.items():
        state = _OUTCOME_STATE[outcome]
        _set(
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


def suppress_bounced(conn: Connection, subscriber_ids: Sequence[str], *, secret: bytes) -> int:
    """Suppress the addresses of the people a provider refused for good (a hard bounce: no
    such mailbox), so that no later send mails them; how many were new suppressions."""
    if not subscriber_ids:
        return 0
    emails = conn.execute(
        select(subscribers.c.email).where(_among(conn, subscribers.c.id, subscriber_ids))
    ).scalars()
    hashed = AddressHasher(secret)
    return sum(suppress(conn, hashed(email), "bounced") for email in emails)


def release_stale(
    conn: Connection, send_id: str, *, older_than: timedelta, dead_workers: Sequence[str] = ()
) -> int:
    """Rows left ``sending`` by a worker known to be dead, or longer than ``older_than`` (a
    worker elsewhere that stopped answering), become ``unknown``."""
    stale = deliveries.c.updated_at < _now() - older_than
    if dead_workers:
        stale = or_(stale, deliveries.c.worker.in_(list(dead_workers)))
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.send_id == send_id, deliveries.c.state == DeliveryState.SENDING, stale)
        .values(
            state=DeliveryState.UNKNOWN,
            detail="the sender stopped while this message was in flight",
        )
    )
    return int(result.rowcount or 0)


def workers_in_flight(conn: Connection, send_id: str) -> list[str]:
    """The workers holding rows of the send in flight."""
    found = conn.execute(
        select(deliveries.c.worker)
        .where(deliveries.c.send_id == send_id, deliveries.c.state == DeliveryState.SENDING)
        .distinct()
    )
    return [str(worker) for worker in found.scalars()]


def resend_unknown(conn: Connection, send_id: str) -> int:
    """An operator's choice: try the ``unknown`` rows again (some may get a second copy)."""
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.send_id == send_id, deliveries.c.state == DeliveryState.UNKNOWN)
        .values(state=DeliveryState.PENDING, updated_at=_now())
    )
    return int(result.rowcount or 0)


def counts(conn: Connection, send_id: str) -> dict[str, int]:
    """Rows per state, every state present (0 when none)."""
    found: dict[str, int] = dict.fromkeys(DELIVERY_STATES, 0)
    rows = conn.execute(
        select(deliveries.c.state, func.count())
        .where(deliveries.c.send_id == send_id)
        .group_by(deliveries.c.state)
    ).all()
    for state, number in rows:
        found[str(state)] = int(number)
    return found


def errors(conn: Connection, send_id: str, *, limit: int = 20) -> list[tuple[str, int]]:
    """The commonest failure details of a send, with how many rows each."""
    rows = conn.execute(
        select(deliveries.c.detail, func.count().label("n"))
        .where(
            deliveries.c.send_id == send_id,
            deliveries.c.state.in_((DeliveryState.FAILED, DeliveryState.UNKNOWN)),
        )
        .group_by(deliveries.c.detail)
        .order_by(func.count().desc())
        .limit(limit)
    ).all()
    return [(str(row.detail), int(row.n)) for row in rows]


def set_send_state(
    conn: Connection, send_id: str, state: SendState, *, error: str = "", add_errors: int = 0
) -> None:
    values: dict[str, object] = {"state": state}
    if state in (SendState.DONE, SendState.CANCELLED):
        values["finished_at"] = _now()
    if error:
        values["last_error"] = error[:2000]
    if add_errors:
        values["errors"] = sends.c.errors + add_errors
    conn.execute(update(sends).where(sends.c.id == send_id).values(**values))


def send_row(conn: Connection, send_id: str) -> Mapping[str, object] | None:
    row = conn.execute(select(sends).where(sends.c.id == send_id)).first()
    return None if row is None else dict(row._mapping)


def list_sends(conn: Connection, *, limit: int = 50) -> list[Mapping[str, object]]:
    rows = conn.execute(
        select(
            sends.c.id,
            sends.c.list_name,
            sends.c.cadence,
            sends.c.state,
            sends.c.scheduled_at,
            sends.c.created_at,
            sends.c.finished_at,
        )
        .order_by(sends.c.created_at.desc())
        .limit(limit)
    ).all()
    return [dict(row._mapping) for row in rows]


def _is_pending(state: ColumnElement[str]) -> ColumnElement[bool]:
    """``state = 'pending'`` with the value written in: the partial index of pending rows
    (schema.PENDING) serves a query only when its condition says the same, which a bound
    parameter does not."""
    return state == literal_column("'pending'", String)


def _among(conn: Connection, column: ColumnElement[Any], values: Sequence[object]) -> Any:
    """``column IN values`` with the values as one bound parameter, however many: a JSON array
    read by json_each on SQLite, an array on PostgreSQL. Binding (and SQLAlchemy expanding)
    one parameter per value took longer than the query itself for a batch of 1,000."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    each = func.json_each(bindparam(None, json.dumps(list(values)))).table_valued("value")
    return column.in_(select(each.c.value))


def _set(
    conn: Connection,
    send_id: str,
    subscriber_ids: Sequence[str],
    *,
    state: DeliveryState,
    now: datetime,
    worker: str | None = None,
    provider_id: str | None = None,
    detail: str | None = None,
    only_from: DeliveryState | None = None,
    rowids: Mapping[str, int] | None = None,
) -> None:
    """Set the rows of ``subscriber_ids``; on SQLite by rowid where ``rowids`` has them all."""
    values: dict[str, object] = {"state": state, "updated_at": now}
    if worker is not None:
        values["worker"] = worker
    if provider_id is not None:
        values["provider_id"] = provider_id
    if detail is not None:
        values["detail"] = detail
    if rowids and conn.dialect.name == "sqlite":
        found = [rowids[key] for key in subscriber_ids if key in rowids]
        if len(found) == len(subscriber_ids):
            ledger_sqlite.set_by_rowid(conn, send_id, found, values, only_from=only_from)
            return
    statement = update(deliveries).where(
        deliveries.c.send_id == send_id,
        _among(conn, deliveries.c.subscriber_id, subscriber_ids),
    )
    if only_from is not None:
        statement = statement.where(deliveries.c.state == only_from)
    conn.execute(statement.values(**values))
