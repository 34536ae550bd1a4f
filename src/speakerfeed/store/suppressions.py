"""Reading and lifting suppressions (adding one and asking whether an address is suppressed are
store.subscribers' ``suppress`` and ``is_suppressed``).

Suppressions hold the HMAC of an address (store.subscribers.address_hash), never the address.
Each function takes a ``Connection``: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, select

from speakerfeed.store.schema import (
    SUPPRESSION_REASONS,
    subscribers,
    suppression_lifts,
    suppressions,
)
from speakerfeed.store.subscribers import AddressHasher

REASONS = SUPPRESSION_REASONS


@dataclass(frozen=True, slots=True)
class Suppression:
    address_hash: str
    reason: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LiftRecord:
    """A suppression an editor lifted: what it was, and who lifted it, when and on what
    consent."""

    reason: str
    suppressed_at: datetime
    lifted_at: datetime
    lifted_by: str
    consent_note: str
    forced: bool


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


def suppression_of(conn: Connection, address_hash: str) -> Suppression | None:
    row = conn.execute(
        select(suppressions.c.reason, suppressions.c.created_at).where(
            suppressions.c.address_hash == address_hash
        )
    ).first()
    return None if row is None else Suppression(address_hash, row.reason, row.created_at)


def list_all(conn: Connection, reason: str | None = None) -> list[Suppression]:
    """The suppressions (of one reason, or all), newest first."""
    query = select(suppressions.c.address_hash, suppressions.c.reason, suppressions.c.created_at)
    if reason is not None:
        query = query.where(suppressions.c.reason == reason)
    query = query.order_by(suppressions.c.created_at.desc(), suppressions.c.address_hash)
    return [
        Suppression(row.address_hash, row.reason, row.created_at) for row in conn.execute(query)
    ]


def stored_addresses(
    conn: Connection, hashes: Collection[str], secret: bytes, *, batch: int = 5_000
) -> dict[str, str]:
    """hash -> address for those of ``hashes`` whose address is still stored (a subscriber's):
    suppressions keep only hashes, so each stored address is hashed to find them."""
    if not hashes:
        return {}
    wanted = set(hashes)
    hasher = AddressHasher(secret)
    found: dict[str, str] = {}
    rows = conn.execute(select(subscribers.c.email).execution_options(yield_per=batch))
    for (email,) in rows:
        hashed = hasher.digest(email.encode("utf-8")).hex()
        if hashed in wanted:
            found[hashed] = email
    return found


def lift_recorded(
    conn: Connection,
    address_hash: str,
    *,
    lifted_by: str,
    consent_note: str,
    forced: bool,
    now: datetime | None = None,
) -> LiftRecord | None:
    """Remove the address's suppression, whatever its reason, and record who lifted it, when
    and why; None (nothing changed) if it was not suppressed. The caller checks the rules."""
    current = suppression_of(conn, address_hash)
    if current is None:
        return None
    record = LiftRecord(
        reason=current.reason,
        suppressed_at=current.created_at,
        lifted_at=now or datetime.now(UTC),
        lifted_by=lifted_by,
        consent_note=consent_note,
        forced=forced,
    )
    conn.execute(delete(suppressions).where(suppressions.c.address_hash == address_hash))
    conn.execute(
        suppression_lifts.insert().values(
            address_hash=address_hash,
            reason=record.reason,
            suppressed_at=record.suppressed_at,
            lifted_at=record.lifted_at,
            lifted_by=record.lifted_by,
            consent_note=record.consent_note,
            forced=record.forced,
        )
    )
    return record


def lifts_of(conn: Connection, address_hash: str) -> list[LiftRecord]:
    """The lifts of the address's suppressions, oldest first."""
    rows = conn.execute(
        select(suppression_lifts)
        .where(suppression_lifts.c.address_hash == address_hash)
        .order_by(suppression_lifts.c.id)
    )
    return [
        LiftRecord(
            reason=row.reason,
            suppressed_at=row.suppressed_at,
            lifted_at=row.lifted_at,
            lifted_by=row.lifted_by,
            consent_note=row.consent_note,
            forced=bool(row.forced),
        )
        for row in rows
    ]


def forget_lifts(conn: Connection, address_hash: str) -> int:
    """Delete the address's lift records (their notes may name the person): for erasure."""
    result = conn.execute(
        delete(suppression_lifts).where(suppression_lifts.c.address_hash == address_hash)
    )
    return int(result.rowcount or 0)
