"""The welcome emails that confirmed subscriptions are owed: one row per subscriber and list.

A row's life: "owed" (written in the confirmation's own transaction) -> "sending" (claimed by
one process, in a transaction of its own, just before the transport is called) -> "sent", or
back to "owed" with a later ``next_attempt_at`` when the transport failed for now, or "failed"
when it refused for good or the retries ran out. The claim is one conditional UPDATE, so two
processes (the confirm page and the retry job) can never both send the same welcome.

The rules (when a welcome is owed, what a stale claim means) are speakerfeed.actions.welcomes';
these only run the statements. Each function takes a ``Connection``: the caller owns the
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, bindparam, select, update

from speakerfeed.store.schema import UTCDateTime, welcomes
from speakerfeed.store.subscribers import upsert_statement


@dataclass(frozen=True, slots=True)
class OwedWelcome:
    subscriber_id: str
    list_name: str
    attempts: int  # failed tries so far


def owe(conn: Connection, subscriber_id: str, list_name: str, *, now: datetime) -> None:
    """Record that the subscription is owed a welcome, due at once. A row left by an earlier
    subscription (the reader left and has confirmed a new sign-up) starts over."""
    statement = upsert_statement(conn, welcomes).values(
        subscriber_id=subscriber_id,
        list_name=list_name,
        state="owed",
        attempts=0,
        next_attempt_at=now,
        updated_at=now,
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["subscriber_id", "list_name"],
            set_={
                "state": "owed",
                "attempts": 0,
                "next_attempt_at": statement.excluded.next_attempt_at,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )


def state_of(conn: Connection, subscriber_id: str, list_name: str) -> str | None:
    """The welcome's state, or None when none was ever owed."""
    value = conn.execute(
        select(welcomes.c.state).where(_key(subscriber_id, list_name))
    ).scalar_one_or_none()
    return None if value is None else str(value)


def due(conn: Connection, *, now: datetime, limit: int) -> list[OwedWelcome]:
    """Owed welcomes whose next attempt is due, the longest-waiting first."""
    rows = conn.execute(
        select(welcomes.c.subscriber_id, welcomes.c.list_name, welcomes.c.attempts)
        .where(welcomes.c.state == "owed")
        .where(welcomes.c.next_attempt_at <= bindparam("now", now, UTCDateTime))
        .order_by(welcomes.c.next_attempt_at)
        .limit(limit)
    ).all()
    return [OwedWelcome(row.subscriber_id, row.list_name, row.attempts) for row in rows]


def claim(conn: Connection, subscriber_id: str, list_name: str, *, now: datetime) -> int | None:
    """Take an owed, due welcome for sending: its failed tries so far, or None when it is not
    owed (sent, being sent by another process) or not due yet."""
    attempts = conn.execute(
        update(welcomes)
        .where(_key(subscriber_id, list_name))
        .where(welcomes.c.state == "owed")
        .where(welcomes.c.next_attempt_at <= bindparam("now", now, UTCDateTime))
        .values(state="sending", next_attempt_at=now, updated_at=now)
        .returning(welcomes.c.attempts)
    ).scalar_one_or_none()
    return None if attempts is None else int(attempts)


def finish(
    conn: Connection, subscriber_id: str, list_name: str, state: str, *, now: datetime
) -> None:
    """A claimed welcome's end: "sent" or "failed"."""
    conn.execute(
        update(welcomes).where(_key(subscriber_id, list_name)).values(state=state, updated_at=now)
    )


def retry_later(
    conn: Connection, subscriber_id: str, list_name: str, *, at: datetime, now: datetime
) -> None:
    """Give a claimed welcome back, one failed try more, to be tried again at ``at``."""
    conn.execute(
        update(welcomes)
        .where(_key(subscriber_id, list_name))
        .values(state="owed", attempts=welcomes.c.attempts + 1, next_attempt_at=at, updated_at=now)
    )


def close_stale_claims(conn: Connection, *, claimed_before: datetime, now: datetime) -> int:
    """Mark "sent" the welcomes claimed before ``claimed_before`` and never finished (the
    process died while sending); how many."""
    result = conn.execute(
        update(welcomes)
        .where(welcomes.c.state == "sending")
        .where(welcomes.c.next_attempt_at < bindparam("before", claimed_before, UTCDateTime))
        .values(state="sent", updated_at=now)
    )
    return int(result.rowcount)


def _key(subscriber_id: str, list_name: str) -> ColumnElement[bool]:
    return and_(welcomes.c.subscriber_id == subscriber_id, welcomes.c.list_name == list_name)
