"""An editor's work on the subscribers: add, remove, import, export, count, show, erase.

An editor may add an address that has consented, but never one that is suppressed or that has
left the list: only the person can subscribe again (by the sign-up form). Removing someone
from their last list also suppresses the address, as the readers' unsubscribe page does.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TextIO

from speakerfeed.actions.database import Store
from speakerfeed.config import Settings
from speakerfeed.errors import (
    AddressError,
    SuppressedAddressError,
    TransportError,
    UnsubscribedAddressError,
)
from speakerfeed.mail.addresses import mailable_address, smtputf8_allowed
from speakerfeed.models import Batch, Outcome, Subscriber
from speakerfeed.store import memberships, people
from speakerfeed.store import subscribers as repo
from speakerfeed.store import suppressions as suppression_records
from speakerfeed.store.importer import ImportReport, Progress, import_csv
from speakerfeed.subscriptions import confirmation, membership
from speakerfeed.transports.base import Transport

# Who is asking, in the consent records of an editor's changes.
EDITOR = membership.Visitor(ip="", user_agent="speakerfeed CLI")
EDITOR_FORM = "cli"

JsonValue = str | int | float | bool | None
Record = Mapping[str, JsonValue]


class Status(StrEnum):
    """A subscription's status."""

    PENDING = "pending"  # waiting for the person's confirmation (double opt-in)
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"


def checked_address(email: str) -> str:
    """The address to look up as stored, or AddressError: in mail.addresses' spelling (so
    ``ann@bücher.example`` finds ``ann@xn--bcher-kva.example``) when it is one the mailer can
    send, else as store.subscribers.normalise_email spells it, so an address stored before the
    stricter check came can still be shown, removed or erased."""
    try:
        return mailable_address(email, smtputf8=True)
    except AddressError as refused:
        why = refused  # the strict check says what is wrong more precisely
    try:
        return repo.normalise_email(email)
    except ValueError:
        raise why from None


def _as_stored(store: Store, email: str) -> str:
    """checked_address's spelling; or, when only that is on file, the one an older sign-up stored
    (an IDN domain as typed, which the mailer could never send to: a pending row)."""
    address = checked_address(email)
    try:
        legacy = repo.normalise_email(email)
    except ValueError:
        return address
    if legacy == address:
        return address
    with store.engine.connect() as conn:
        if repo.find_by_email(conn, address) is None and repo.find_by_email(conn, legacy):
            return legacy
    return address


def new_address(settings: Settings, email: str) -> str:
    """The address to subscribe, as stored and sent, or AddressError: the one check that sign-up
    and import use too (mail.addresses), with SMTPUTF8 as the configured transport allows."""
    return mailable_address(email, smtputf8=smtputf8_allowed(settings.delivery))


@dataclass(frozen=True, slots=True)
class Subscribed:
    address: str
    list_name: str
    status: Status


def add_subscriber(
    settings: Settings,
    store: Store,
    list_name: str,
    email: str,
    *,
    name: str = "",
    confirmed: bool = False,
) -> Subscribed:
    """Subscribe the address to the list: pending (double opt-in) unless ``confirmed`` or
    confirmed already. SuppressedAddressError or UnsubscribedAddressError, and nothing
    stored, when the address may not be subscribed."""
    settings.require_list(list_name)
    address = new_address(settings, email)
    with store.engine.begin() as conn:
        if repo.is_suppressed(conn, repo.address_hash(store.secret, address)):
            raise SuppressedAddressError(address, list_name)
        subscriber_id = repo.add_subscriber(conn, address, name=name)
        current = memberships.status_of(conn, subscriber_id, list_name)
        if current == Status.UNSUBSCRIBED:
            raise UnsubscribedAddressError(address, list_name)
        status = Status.CONFIRMED if confirmed or current == Status.CONFIRMED else Status.PENDING
        consent = {"action": "added", "form": EDITOR_FORM}
        repo.subscribe(conn, subscriber_id, list_name, status=status.value, consent=consent)
    return Subscribed(address, list_name, status)


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    address: str
    list_name: str
    on_list: bool  # it had a subscription to the list (of any status); False: nothing changed
    suppressed: bool  # the address is suppressed now (it left its last list, or was before)


def remove_subscriber(settings: Settings, store: Store, list_name: str, email: str) -> Unsubscribed:
    """Unsubscribe the address from the list; leaving the last list also suppresses it
    (reason "unsubscribed")."""
    settings.require_list(list_name)
    address = _as_stored(store, email)
    with store.engine.begin() as conn:
        person = repo.find_by_email(conn, address)
        on_list = person is not None and membership.unsubscribe(
            conn,
            secret=store.secret,
            subscriber_id=person.id,
            list_name=list_name,
            visitor=EDITOR,
            form=EDITOR_FORM,
        )
        suppressed = repo.is_suppressed(conn, repo.address_hash(store.secret, address))
    return Unsubscribed(address, list_name, on_list, suppressed)


@dataclass(frozen=True, slots=True)
class Resent:
    """One confirmation an editor asked to send again, and what became of it."""

    address: str
    outcome: str  # "sent", "failed", or a membership.Resend value other than "send"
    detail: str = ""

    @property
    def sent(self) -> bool:
        return self.outcome == "sent"


def resend_confirmations(
    settings: Settings,
    store: Store,
    list_name: str,
    transport: Transport,
    *,
    emails: Sequence[str] = (),
    pending_for: timedelta | None = None,
    now: datetime | None = None,
) -> list[Resent]:
    """Send the confirmation email again to the list's pending ``emails``, or (with
    ``pending_for``) to everyone pending on the list for at least that long, by the sign-up's
    rules (subscriptions.membership.request_resend): never to a suppressed address, and within
    the per-address limit. Each is recorded (a consent record with the Message-ID) before it
    is sent; one failure does not stop the others."""
    list_settings = settings.require_list(list_name)
    moment = now or datetime.now(UTC)
    # (subscriber id, or None for an address no one holds; the address as messages show it)
    targets: list[tuple[str | None, str]] = []
    with store.engine.connect() as conn:
        if pending_for is not None:
            for subscriber_id in memberships.pending_before(conn, list_name, moment - pending_for):
                targets.append((subscriber_id, ""))
        else:
            for email in emails:
                person = repo.find_by_email(conn, checked_address(email))
                targets.append((None if person is None else person.id, checked_address(email)))
    limit = confirmation.mail_limit(settings)
    results: list[Resent] = []
    with transport:
        for target, shown in targets:
            message_id = confirmation.new_message_id(settings)
            with store.engine.begin() as conn:
                address = None if target is None else membership.email_of(conn, target)
                if target is None or address is None:  # no one holds it (or erased meanwhile)
                    results.append(Resent(shown, "not-pending", "no subscriber has the address"))
                    continue
                outcome = membership.request_resend(
                    conn,
                    secret=store.secret,
                    subscriber_id=target,
                    list_name=list_name,
                    visitor=EDITOR,
                    form=EDITOR_FORM,
                    message_id=message_id,
                    limit=limit,
                    now=moment,
                )
                profile = memberships.profile(conn, target)
            if outcome is not membership.Resend.SEND or profile is None:
                results.append(Resent(address, outcome.value))
                continue
            url = confirmation.confirm_url(settings, store.secret, target, list_name)
            batch = confirmation.confirmation_batch(
                settings, list_settings, Subscriber(target, address, profile.name), url, message_id
            )
            results.append(_deliver(transport, batch, address))
    return results


def _deliver(transport: Transport, batch: Batch, address: str) -> Resent:
    try:
        (result,) = transport.send(batch)
    except TransportError as exc:
        return Resent(address, "failed", str(exc))
    if result.outcome is not Outcome.SENT:
        return Resent(address, "failed", f"{result.outcome.value}: {result.detail}".strip())
    return Resent(address, "sent")


def import_subscribers(
    settings: Settings,
    store: Store,
    list_name: str,
    path: Path,
    *,
    confirmed: bool = False,
    update: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the CSV file at ``path`` (an email column; name and timezone optional; comma,
    semicolon or tab between fields) into the list: pending unless ``confirmed``; suppressed or
    unsubscribed addresses are left alone; each bad row is a problem with its line, and the
    others are imported. Stored names and time zones are kept unless ``update``; ``dry_run``
    reports what would happen and writes nothing."""
    settings.require_list(list_name)
    return import_csv(
        store.engine,
        path,
        list_name,
        secret=store.secret,
        confirmed=confirmed,
        update=update,
        dry_run=dry_run,
        progress=progress,
        smtputf8=smtputf8_allowed(settings.delivery),
    )


def export_subscribers(
    settings: Settings,
    store: Store,
    list_name: str,
    stream: TextIO,
    *,
    status: Status | None = None,
) -> int:
    """Write the list's subscribers (of one status, or all) to ``stream`` as CSV (email, name,
    timezone, status), a form import reads; how many rows. Open a file with newline=""."""
    settings.require_list(list_name)
    writer = csv.DictWriter(stream, fieldnames=people.EXPORT_COLUMNS)
    writer.writeheader()
    rows = 0
    with store.engine.connect() as conn:
        for row in people.export_rows(conn, list_name, _status(status)):
            writer.writerow(row)
            rows += 1
    return rows


def count_subscribers(
    settings: Settings, store: Store, list_name: str, *, status: Status | None = None
) -> int:
    """The number of the list's subscriptions (of one status, or all)."""
    settings.require_list(list_name)
    with store.engine.connect() as conn:
        return repo.count_subscriptions(conn, list_name, _status(status))


@dataclass(frozen=True, slots=True)
class StoredPerson:
    """Everything stored about an address (a subject access request's answer)."""

    email: str
    subscriber: Record | None
    subscriptions: tuple[Record, ...]
    consent_records: tuple[Record, ...]
    suppression: Record | None

    def as_json(self) -> dict[str, object]:
        """As JSON would hold it, in this order."""
        return {
            "email": self.email,
            "subscriber": _plain(self.subscriber),
            "subscriptions": [dict(item) for item in self.subscriptions],
            "consent_records": [dict(item) for item in self.consent_records],
            "suppression": _plain(self.suppression),
        }


def show_subscriber(settings: Settings, store: Store, email: str) -> StoredPerson:
    """Everything stored about the address: subscriptions, consent, suppression."""
    address = _as_stored(store, email)
    with store.engine.connect() as conn:
        found = people.show(conn, address, store.secret)
    return StoredPerson(
        email=found["email"],
        subscriber=found["subscriber"],
        subscriptions=tuple(found["subscriptions"]),
        consent_records=tuple(found["consent_records"]),
        suppression=found["suppression"],
    )


@dataclass(frozen=True, slots=True)
class Erased:
    address: str
    found: bool  # False: no subscriber was stored under the address
    suppressed: bool  # its hash is now suppressed (reason "erased")


def erase_subscriber(
    settings: Settings, store: Store, email: str, *, block: bool = False
) -> Erased:
    """Delete the address and everything tied to it (its suppressions' lift records too),
    keeping only its hash, suppressed (reason "erased"), so it cannot be imported or subscribed
    again. An address no subscriber holds is left alone (a typo must not block a stranger)
    unless ``block``: then its hash is suppressed all the same."""
    address = _as_stored(store, email)
    with store.engine.begin() as conn:
        held = repo.find_by_email(conn, address) is not None
        if not held and not block:
            return Erased(address, found=False, suppressed=False)
        found = people.erase(conn, address, store.secret)
        suppression_records.forget_lifts(conn, repo.address_hash(store.secret, address))
    return Erased(address, found, suppressed=True)


def _status(status: Status | None) -> str | None:
    return None if status is None else status.value


def _plain(record: Record | None) -> dict[str, JsonValue] | None:
    return None if record is None else dict(record)
