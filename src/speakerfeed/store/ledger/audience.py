"""A send, and its audience in the ledger: one row per person it goes to.

A send's rows are its audience: the confirmed subscribers of its list (and cadence), added in
subscriber order, all at once by ``create_send`` or a batch at a time by the senders as they run
out of pending rows (``claim_audience``, which adds the rows already claimed), so a large send
starts at once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Insert, func, insert, literal, literal_column, select, update

from speakerfeed.models import DeliveryState, SendState
from speakerfeed.store.ledger.rows import Taken, utc_now
from speakerfeed.store.schema import deliveries, sends, subscriptions
from speakerfeed.store.subscribers import audience


@dataclass(frozen=True, slots=True)
class SendContent:
    subject: str
    html: str
    text: str
    view_url: str = ""
    editor_note: str = ""  # the note's Markdown as the send opened with it (digest.note)


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
            created_at=utc_now(),
            # Named only when not complete: the column's default says complete.
            **({} if record_audience else {"audience_complete": False}),
            # Likewise only when there is a note: the default is none.
            **({"editor_note": content.editor_note} if content.editor_note else {}),
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
        select(func.count()).where(*audience(list_name, cadence, named_cadences, after=last))
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
            literal(utc_now(), type_=deliveries.c.updated_at.type),
        )
        .where(*audience(list_name, cadence, named_cadences, after=after))
        .order_by(subscriptions.c.subscriber_id)
        .limit(limit)
    )
    return insert(deliveries).from_select(
        ["send_id", "subscriber_id", "state", "worker", "updated_at"], people
    )
