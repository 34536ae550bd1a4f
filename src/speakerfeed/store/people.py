"""One person's data as a whole: show it (subject access), erase it, export a list of them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, delete, select

from speakerfeed.store.schema import consent_records, subscribers, subscriptions, suppressions
from speakerfeed.store.subscribers import address_hash, normalise_email

EXPORT_COLUMNS = ("email", "name", "timezone", "status")


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def show(conn: Connection, email: str, secret: bytes) -> dict[str, Any]:
    """Everything stored about the address, JSON-serialisable; empty parts when nothing is."""
    address = normalise_email(email)
    hashed = address_hash(secret, address)
    person = conn.execute(select(subscribers).where(subscribers.c.email == address)).first()
    suppression = conn.execute(
        select(suppressions.c.reason, suppressions.c.created_at).where(
            suppressions.c.address_hash == hashed
        )
    ).first()
    found: dict[str, Any] = {
        "email": address,
        "subscriber": None,
        "subscriptions": [],
        "consent_records": [],
        "suppression": None,
    }
    if suppression is not None:
        found["suppression"] = {
            "address_hash": hashed,
            "reason": suppression.reason,
            "created_at": _plain(suppression.created_at),
        }
    if person is None:
        return found
    found["subscriber"] = {key: _plain(value) for key, value in person._mapping.items()}
    found["subscriptions"] = _records(conn, subscriptions, person.id, subscriptions.c.list_name)
    found["consent_records"] = _records(conn, consent_records, person.id, consent_records.c.id)
    return found


def _records(
    conn: Connection, table: Table, subscriber_id: str, order: ColumnElement[Any]
) -> list[dict[str, Any]]:
    """The person's rows of ``table``, JSON-serialisable, without the subscriber id."""
    rows = conn.execute(select(table).where(table.c.subscriber_id == subscriber_id).order_by(order))
    return [
        {key: _plain(value) for key, value in row._mapping.items() if key != "subscriber_id"}
        for row in rows
    ]


def erase(conn: Connection, email: str, secret: bytes) -> bool:
    """Delete the person and everything tied to them; keep only their address hash, suppressed
    with reason "erased" so an import or a form cannot bring them back. False if no one was
    stored under the address (the hash is kept all the same)."""
    address = normalise_email(email)
    hashed = address_hash(secret, address)
    person = conn.execute(select(subscribers.c.id).where(subscribers.c.email == address)).first()
    if person is not None:
        # Explicit rather than trusting ON DELETE CASCADE: SQLite enforces it only when the
        # connection turned foreign keys on.
        conn.execute(delete(consent_records).where(consent_records.c.subscriber_id == person.id))
        conn.execute(delete(subscriptions).where(subscriptions.c.subscriber_id == person.id))
        conn.execute(delete(subscribers).where(subscribers.c.id == person.id))
    # The earlier reason (say "unsubscribed") is itself a fact about the person: replace it.
    conn.execute(delete(suppressions).where(suppressions.c.address_hash == hashed))
    conn.execute(
        suppressions.insert().values(address_hash=hashed, reason="erased", created_at=_now())
    )
    return person is not None


def _now() -> datetime:
    return datetime.now(UTC)


def export_rows(
    conn: Connection, list_name: str, status: str | None = None, *, batch: int = 5000
) -> Iterator[dict[str, str]]:
    """The list's subscribers (of one status, or all) in id order, as EXPORT_COLUMNS.

    Keyset paged (id > the last one seen), so memory stays flat and each page is an index range.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    last = ""
    while True:
        query = (
            select(
                subscriptions.c.subscriber_id,
                subscribers.c.email,
                subscribers.c.name,
                subscribers.c.timezone,
                subscriptions.c.status,
            )
            .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
            .where(subscriptions.c.list_name == list_name)
            .where(subscriptions.c.subscriber_id > last)
            .order_by(subscriptions.c.subscriber_id)
            .limit(batch)
        )
        if status is not None:
            query = query.where(subscriptions.c.status == status)
        rows = conn.execute(query).all()
        for row in rows:
            yield {
                "email": row.email,
                "name": row.name,
                "timezone": row.timezone,
                "status": row.status,
            }
        if len(rows) < batch:
            return
        last = rows[-1].subscriber_id
