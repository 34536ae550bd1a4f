"""The provider's webhook events already acted on, by event id, so a redelivery changes nothing.

The caller owns the transaction: claim an event and apply it in the same one, so an event that
failed to apply is not remembered as done.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from speakerfeed.store.schema import webhook_events
from speakerfeed.store.subscribers import upsert_statement


def claim_event(conn: Connection, event_id: str, now: datetime) -> bool:
    """Record ``event_id`` as received at ``now``; False when it was already recorded.

    The primary key makes a concurrent claim of the same id wait for this transaction, then
    find the row and get False.
    """
    claim = upsert_statement(conn, webhook_events).values(event_id=event_id, received_at=now)
    # RETURNING, not rowcount: drivers need not report a row count for INSERT (psycopg gives -1).
    claimed = conn.execute(
        claim.on_conflict_do_nothing(index_elements=["event_id"]).returning(
            webhook_events.c.event_id
        )
    ).first()
    return claimed is not None
