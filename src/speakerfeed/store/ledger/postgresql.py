"""The ledger's statements per batch on PostgreSQL, as SQLAlchemy Core; a batch's rows named by
one array parameter (rows.among). SQLite has its own, as SQL text: ledger.sqlite."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.sql import ColumnElement

from speakerfeed.models import DeliveryState
from speakerfeed.store.ledger.rows import among, is_pending, set_rows
from speakerfeed.store.schema import deliveries, subscribers, subscriptions, suppressions


def take(conn: Connection, send_id: str, *, worker: str, limit: int, now: datetime) -> list[str]:
    """Mark up to ``limit`` pending rows ``sending``: their subscriber ids, in order. The rows
    are locked first (FOR UPDATE SKIP LOCKED), so other workers pass them by."""
    pending = (
        select(deliveries.c.subscriber_id)
        .where(deliveries.c.send_id == send_id, is_pending(deliveries.c.state))
        .order_by(deliveries.c.subscriber_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(conn.execute(pending).scalars().all())
    if ids:
        set_rows(conn, send_id, ids, state=DeliveryState.SENDING, now=now, worker=worker)
    return ids


def people(
    conn: Connection, ids: Sequence[str], *, confirmed_on: str | None = None
) -> list[tuple[str, str, str]]:
    """(id, email, name) of those of ``ids`` in the store, in id order; with ``confirmed_on``,
    only those still confirmed on that list."""
    chosen: ColumnElement[bool] = among(conn, subscribers.c.id, ids)
    if confirmed_on is not None:
        # "IN (confirmed ids among these)" reads the status from the (list, status, id) index;
        # a join or EXISTS on the subscription reads each one's table row as well.
        chosen = subscribers.c.id.in_(
            select(subscriptions.c.subscriber_id).where(
                subscriptions.c.list_name == confirmed_on,
                subscriptions.c.status == "confirmed",
                among(conn, subscriptions.c.subscriber_id, ids),
            )
        )
    rows = conn.execute(
        select(subscribers.c.id, subscribers.c.email, subscribers.c.name)
        .where(chosen)
        .order_by(subscribers.c.id)
    )
    return [(subscriber_id, email, name) for subscriber_id, email, name in rows.all()]


def suppressed(conn: Connection, hashes: Sequence[str]) -> set[str]:
    """Those of the address ``hashes`` on the suppression list."""
    found = conn.execute(
        select(suppressions.c.address_hash).where(among(conn, suppressions.c.address_hash, hashes))
    )
    return set(found.scalars())
