"""An editor's work on the suppression list: list it, show one address, lift a suppression.

A suppression means "never mail this address". An editor may lift one only on the person's
word, and says so: every lift needs a consent note and is recorded (who, when, why) for
`suppressions show`. Unsubscribed and manual suppressions are lifted on that note alone;
bounced, complained and erased ones also need ``force``: the mailbox refused mail, its owner
reported it as spam, or the person asked to be forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from speakerfeed.actions.database import Store
from speakerfeed.actions.subscribers import checked_address
from speakerfeed.config import Settings
from speakerfeed.errors import SpeakerfeedError
from speakerfeed.store import suppressions as repo
from speakerfeed.store.subscribers import address_hash
from speakerfeed.store.suppressions import LiftRecord

REASONS = repo.REASONS
# Lifted on a consent note alone: the person left, or an editor blocked the address.
LIFTABLE = ("unsubscribed", "manual")
MAX_NOTE = 2_000


class LiftRefusedError(SpeakerfeedError):
    """A lift the rules do not allow (or nothing to lift); nothing was changed."""


@dataclass(frozen=True, slots=True)
class Suppressed:
    address_hash: str
    email: str | None  # None when no subscriber holds the address any more (say, erased)
    reason: str
    since: datetime


def list_suppressions(
    settings: Settings, store: Store, *, reason: str | None = None
) -> list[Suppressed]:
    """The suppressions (of one reason, or all), newest first, with the address where a
    subscriber still holds it."""
    if reason is not None and reason not in REASONS:
        raise ValueError(f"expected a reason in {REASONS}, got {reason!r}")
    with store.engine.connect() as conn:
        found = repo.list_all(conn, reason)
        emails = repo.stored_addresses(conn, [item.address_hash for item in found], store.secret)
    return [
        Suppressed(item.address_hash, emails.get(item.address_hash), item.reason, item.created_at)
        for item in found
    ]


@dataclass(frozen=True, slots=True)
class SuppressionHistory:
    email: str
    address_hash: str
    reason: str | None  # None: not suppressed now
    since: datetime | None
    lifts: tuple[LiftRecord, ...]  # oldest first


def show_suppression(settings: Settings, store: Store, email: str) -> SuppressionHistory:
    """Whether the address is suppressed (why, since when) and every lift of its suppressions."""
    address = checked_address(email)
    hashed = address_hash(store.secret, address)
    with store.engine.connect() as conn:
        current = repo.suppression_of(conn, hashed)
        lifts = repo.lifts_of(conn, hashed)
    return SuppressionHistory(
        email=address,
        address_hash=hashed,
        reason=None if current is None else current.reason,
        since=None if current is None else current.created_at,
        lifts=tuple(lifts),
    )


def lift_suppression(
    settings: Settings,
    store: Store,
    email: str,
    *,
    consent_note: str,
    lifted_by: str,
    force: bool = False,
) -> LiftRecord:
    """Lift the address's suppression and record it; LiftRefusedError, and nothing changed,
    when it is not suppressed, the note is empty, or the reason needs ``force``."""
    address = checked_address(email)
    note = " ".join(consent_note.split())
    if not note:
        raise LiftRefusedError(
            f"{address}: a consent note is needed (--consent-note): say how the person asked "
            "to be mailed again"
        )
    if len(note) > MAX_NOTE:
        raise LiftRefusedError(f"{address}: the consent note is longer than {MAX_NOTE} characters")
    hashed = address_hash(store.secret, address)
    with store.engine.begin() as conn:
        current = repo.suppression_of(conn, hashed)
        if current is None:
            raise LiftRefusedError(f"{address} is not suppressed; nothing to lift")
        if current.reason not in LIFTABLE and not force:
            raise LiftRefusedError(
                f"{address} is suppressed as {current.reason!r}; lifting that needs --force "
                f"(only {' and '.join(LIFTABLE)} suppressions are lifted on a consent note alone)"
            )
        lifted = repo.lift_recorded(
            conn,
            hashed,
            lifted_by=lifted_by,
            consent_note=note,
            forced=current.reason not in LIFTABLE,
        )
    assert lifted is not None  # found above, in the same transaction
    return lifted
