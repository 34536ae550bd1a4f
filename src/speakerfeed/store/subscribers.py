"""Repository functions for subscribers, subscriptions, consent and suppressions.

Plain functions that take a ``Connection``: the caller decides the transaction, so a web request
or a send batch can group several calls atomically. Upserts use each engine's ON CONFLICT, so two
processes adding the same address at once both get the one id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection, Table, func, select, true
from sqlalchemy.dialects import postgresql, sqlite

from speakerfeed.models import Subscriber
from speakerfeed.store.schema import (
    SUBSCRIPTION_STATUSES,
    consent_records,
    subscribers,
    subscriptions,
    suppressions,
)

CONSENT_FIELDS = frozenset({"action", "ip", "user_agent", "form", "confirmation_message_id"})
# Any character str.isspace() calls a space: one regex search is a fraction of a loop over the
# characters, which made normalising the costliest part of screening a batch before a send.
_SPACE = re.compile(r"\s")


def normalise_email(email: str) -> str:
    """The one spelling of an address that is stored, compared and hashed.

    Stripped and lower-cased as a whole, as listmonk and most mailing tools do: RFC 5321 lets the
    local part be case-sensitive, but no mainstream mailbox provider treats it so, and keeping
    the case would let Ann@ and ann@ subscribe (and be suppressed) separately.
    """
    address = email.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or _SPACE.search(address):
        raise ValueError(f"expected an email address such as name@example.org, got {email!r}")
    return address


class AddressHasher:
    """The one address hash: HMAC-SHA256 of the normalised address under the secret key, what
    the suppression list stores (and erasure keeps). Made once per secret, it keys the HMAC once
    and copies the keyed state for each address, for the bulk of a send or an import."""

    __slots__ = ("_keyed",)

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("an empty secret would make address hashes guessable")
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def __repr__(self) -> str:  # never the key
        return "<AddressHasher>"

    def digest(self, normalised: bytes) -> bytes:
        """The raw HMAC of an address already in normalise_email's spelling, as UTF-8."""
        mac = self._keyed.copy()
        mac.update(normalised)
        return mac.digest()

    def __call__(self, email: str) -> str:
        """The hash (hex) of ``email``, normalised first."""
        return self.digest(normalise_email(email).encode("utf-8")).hex()


def address_hash(secret: bytes, email: str) -> str:
    """HMAC-SHA256 (hex) of the normalised address: what the suppression list stores. For many
    addresses, make one AddressHasher."""
    return AddressHasher(secret)(email)


def _now() -> datetime:
    return datetime.now(UTC)


def upsert_statement(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    # ON CONFLICT lives in each dialect's own insert(); both take the same arguments.
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def add_subscriber(conn: Connection, email: str, name: str = "", timezone: str = "") -> str:
    """Add a subscriber and return the id; an address already present returns its existing id."""
    address = normalise_email(email)
    statement = upsert_statement(conn, subscribers).values(
        id=secrets.token_urlsafe(12),
        email=address,
        name=name,
        timezone=timezone,
        created_at=_now(),
    )
    conn.execute(statement.on_conflict_do_nothing(index_elements=["email"]))
    found = conn.execute(select(subscribers.c.id).where(subscribers.c.email == address))
    return str(found.scalar_one())


def find_by_email(conn: Connection, email: str) -> Subscriber | None:
    row = conn.execute(
        select(subscribers.c.id, subscribers.c.email, subscribers.c.name).where(
            subscribers.c.email == normalise_email(email)
        )
    ).first()
    return None if row is None else Subscriber(id=row.id, email=row.email, name=row.name)


def _check_status(status: str) -> None:
    # The CHECK constraint is the guarantee; this gives a clearer message first.
    if status not in SUBSCRIPTION_STATUSES:
        raise ValueError(f"expected a status in {SUBSCRIPTION_STATUSES}, got {status!r}")


def record_consent(
    conn: Connection, subscriber_id: str, list_name: str, consent: Mapping[str, str]
) -> None:
    """Append a consent record (never updated: it is the evidence of what happened when)."""
    unknown = set(consent) - CONSENT_FIELDS
    if unknown or "action" not in consent:
        raise ValueError(
            f"consent needs 'action' and only {sorted(CONSENT_FIELDS)}; got {sorted(consent)}"
        )
    conn.execute(
        consent_records.insert().values(
            subscriber_id=subscriber_id, list_name=list_name, created_at=_now(), **consent
        )
    )


def subscribe(
    conn: Connection,
    subscriber_id: str,
    list_name: str,
    *,
    status: str,
    consent: Mapping[str, str],
    cadence: str = "",
) -> None:
    """Create or update the subscription to ``list_name`` and append a consent record."""
    _check_status(status)
    now = _now()
    statement = upsert_statement(conn, subscriptions).values(
        subscriber_id=subscriber_id,
        list_name=list_name,
        status=status,
        cadence=cadence,
        created_at=now,
        updated_at=now,
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["subscriber_id", "list_name"],
            set_={"status": status, "cadence": cadence, "updated_at": now},
        )
    )
    record_consent(conn, subscriber_id, list_name, consent)


def set_status(
    conn: Connection,
    subscriber_id: str,
    list_name: str,
    status: str,
    *,
    consent: Mapping[str, str] | None = None,
) -> bool:
    """Change an existing subscription's status; False when there is no such subscription."""
    _check_status(status)
    result = conn.execute(
        subscriptions.update()
        .where(subscriptions.c.subscriber_id == subscriber_id)
        .where(subscriptions.c.list_name == list_name)
        .values(status=status, updated_at=_now())
    )
    if result.rowcount == 0:
        return False
    if consent is not None:
        record_consent(conn, subscriber_id, list_name, consent)
    return True


def suppress(conn: Connection, address_hash: str, reason: str) -> bool:
    """Add an address hash to the suppression list; False if it was already there (the first
    reason and time are kept)."""
    statement = upsert_statement(conn, suppressions).values(
        address_hash=address_hash, reason=reason, created_at=_now()
    )
    # RETURNING, not rowcount: drivers need not report a row count for INSERT (psycopg gives -1).
    added = conn.execute(
        statement.on_conflict_do_nothing(index_elements=["address_hash"]).returning(
            suppressions.c.address_hash
        )
    )
    return added.first() is not None


def is_suppressed(conn: Connection, address_hash: str) -> bool:
    found = conn.execute(
        select(suppressions.c.address_hash).where(suppressions.c.address_hash == address_hash)
    )
    return found.first() is not None


def count_subscriptions(conn: Connection, list_name: str, status: str | None = None) -> int:
    query = select(func.count()).select_from(subscriptions)
    query = query.where(subscriptions.c.list_name == list_name)
    if status is not None:
        query = query.where(subscriptions.c.status == status)
    return int(conn.execute(query).scalar_one())


def on_cadence(cadence: str, named_cadences: Collection[str]) -> ColumnElement[bool]:
    """The subscriptions that get the digests of ``cadence``: those who chose it; for the list's
    own schedule (""), also those whose choice is none of the list's ``named_cadences`` (one
    since removed from config.toml), who would otherwise get nothing at all."""
    if cadence:
        return subscriptions.c.cadence == cadence
    if not named_cadences:
        return true()
    return subscriptions.c.cadence.not_in(sorted(named_cadences))


def audience(
    list_name: str,
    cadence: str | None,
    named_cadences: Collection[str],
    *,
    after: str | None = None,
) -> list[ColumnElement[bool]]:
    """The conditions on subscriptions that pick a send's audience (after subscriber ``after``):
    the list's confirmed subscriptions that get the digests of ``cadence`` (see ``on_cadence``;
    None: whatever their cadence). The one definition: the ledger adds a send's rows by it,
    ``iter_confirmed`` reads and ``count_audience`` counts by it."""
    conditions = [subscriptions.c.list_name == list_name, subscriptions.c.status == "confirmed"]
    if cadence is not None:
        conditions.append(on_cadence(cadence, named_cadences))
    if after is not None:
        conditions.append(subscriptions.c.subscriber_id > after)
    return conditions


def iter_confirmed(
    conn: Connection,
    list_name: str,
    *,
    secret: bytes,
    batch: int = 1000,
    cadence: str | None = None,
    named_cadences: Collection[str] = (),
) -> Iterator[Subscriber]:
    """The ``audience`` of the list's ``cadence`` (None: every confirmed subscriber) once each,
    in id order, less the suppressed, whom the senders skip (store.ledger's ``screen``).

    Keyset paging (id > the last one seen), never OFFSET: each page is an index range scan, and a
    row added or removed meanwhile cannot shift a page and cause a skip or a repeat. Suppressions
    hold hashes, so ``secret`` is needed to match them; each page is checked with one query.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    hashed: AddressHasher | None = None  # made at the first page: an empty list needs no key
    people = (
        select(subscribers.c.id, subscribers.c.email, subscribers.c.name)
        .join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
        .order_by(subscriptions.c.subscriber_id)
        .limit(batch)
    )
    last = ""
    while True:
        rows = conn.execute(
            people.where(*audience(list_name, cadence, named_cadences, after=last))
        ).all()
        if not rows:
            return
        hashed = hashed or AddressHasher(secret)
        hashes = {row.id: hashed(row.email) for row in rows}
        suppressed = set(
            conn.execute(
                select(suppressions.c.address_hash).where(
                    suppressions.c.address_hash.in_(hashes.values())
                )
            ).scalars()
        )
        for row in rows:
            if hashes[row.id] not in suppressed:
                yield Subscriber(id=row.id, email=row.email, name=row.name)
        last = rows[-1].id


def count_audience(
    conn: Connection,
    list_name: str,
    cadence: str,
    named_cadences: Collection[str],
    *,
    secret: bytes,
    batch: int = 1000,
) -> int:
    """How many people a send of the list's ``cadence`` would go to now (``iter_confirmed``)."""
    readers = iter_confirmed(
        conn,
        list_name,
        secret=secret,
        batch=batch,
        cadence=cadence,
        named_cadences=named_cadences,
    )
    return sum(1 for _ in readers)
