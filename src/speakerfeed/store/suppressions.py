"""Reading and lifting suppressions (adding one and asking whether an address is suppressed are
store.subscribers' ``suppress`` and ``is_suppressed``).

Suppressions hold the HMAC of an address (store.subscribers.address_hash), never the address.
Each function takes a ``Connection``: the caller owns the transaction.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, select

from speakerfeed.store.schema import suppressions


def reason_of(conn: Connection, address_hash: str) -> str | None:
    """Why the address is suppressed; None when it is not."""
    found = conn.execute(
        select(suppressions.c.reason).where(suppressions.c.address_hash == address_hash)
    ).scalar()
    return None if found is None else str(found)


def lift(conn: Connection, address_hash: str, reason: str) -> bool:
    """Remove the address's suppression if it is for ``reason`` (any other is kept); whether one
    was removed."""
    result = conn.execute(
        delete(suppressions)
        .where(suppressions.c.address_hash == address_hash)
        .where(suppressions.c.reason == reason)
    )
    return bool(result.rowcount)
