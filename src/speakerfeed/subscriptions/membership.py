"""What a reader can do to their subscriptions: sign up, confirm, change preferences, leave.

The web app's pages call these; each takes a ``Connection`` so the page decides the transaction
(the change is committed before the page answers). Every change appends a consent record with the
visitor's IP and user agent: the evidence of who asked for what, and when. The statements are the
store's (store.memberships, store.suppressions, store.subscribers); this module keeps the rules.

The rules:
- A sign-up never tells anyone whether the address is known. It sends a confirmation only when
  the subscription is not already confirmed, the address is not suppressed for a reason that
  forbids mail (bounced, complained, erased, manual), and the address has had fewer than the
  allowed number of emails in the current window.
- Leaving a list sets that subscription to unsubscribed; leaving the last one also adds the
  address to the suppression list (reason "unsubscribed"), so no import or editor's command can
  bring it back. Only the person can: a newly confirmed sign-up lifts that suppression.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection

from speakerfeed.store import memberships, rate_limits, suppressions
from speakerfeed.store import subscribers as repo

ACTIVE = ("pending", "confirmed")
# Suppressions a reader can lift by subscribing again; the others mean "never mail this address".
LIFTABLE = "unsubscribed"
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is asking, as consent evidence: the client's IP and user agent."""

    ip: str
    user_agent: str

    def consent(self, action: str, form: str, message_id: str = "") -> dict[str, str]:
        return {
            "action": action,
            "ip": self.ip[:45],
            "user_agent": self.user_agent[:500],
            "form": form,
            "confirmation_message_id": message_id,
        }


@dataclass(frozen=True, slots=True)
class MailLimit:
    """At most ``count`` emails to one address per ``window``."""

    count: int
    window: timedelta


def request_subscription(
    conn: Connection,
    *,
    secret: bytes,
    email: str,
    name: str,
    list_name: str,
    visitor: Visitor,
    message_id: str,
    limit: MailLimit,
    now: datetime | None = None,
) -> str | None:
    """Record a sign-up; the subscriber id to send the confirmation to, or None to send nothing.

    ``message_id`` is the confirmation's Message-ID, kept in the consent record. A new
    subscriber gets ``name``; a known one keeps theirs (a stranger must not rename them).
    """
    address = repo.normalise_email(email)
    suppression = suppressions.reason_of(conn, repo.address_hash(secret, address))
    if suppression is not None and suppression != LIFTABLE:
        return None
    subscriber_id = repo.add_subscriber(conn, address, name=name[:MAX_NAME].strip())
    if memberships.status_of(conn, subscriber_id, list_name) == "confirmed":
        return None
    if not _within_mail_limit(conn, secret, address, limit, now):
        return None
    consent = visitor.consent("subscribe-requested", "web:subscribe", message_id)
    repo.subscribe(
        conn,
        subscriber_id,
        list_name,
        status="pending",
        consent=consent,
        cadence=_cadence(conn, subscriber_id, list_name),
    )
    return subscriber_id


class Resend(StrEnum):
    """What became of an editor's request to send a confirmation again."""

    SEND = "send"  # recorded: send it now
    NOT_PENDING = "not-pending"  # no pending subscription to the list (confirmed, left, none)
    SUPPRESSED = "suppressed"  # the address must not be mailed
    LIMITED = "limited"  # the address had its share of emails in the current window


def request_resend(
    conn: Connection,
    *,
    secret: bytes,
    subscriber_id: str,
    list_name: str,
    visitor: Visitor,
    form: str,
    message_id: str,
    limit: MailLimit,
    now: datetime | None = None,
) -> Resend:
    """Record a new confirmation for a pending subscription, by the sign-up's rules: not to a
    suppressed address, and within the per-address limit (the same count a sign-up takes
    from). The subscription's updated_at becomes now, so "pending for N days" counts from the
    last confirmation sent."""
    if memberships.status_of(conn, subscriber_id, list_name) != "pending":
        return Resend.NOT_PENDING
    address = email_of(conn, subscriber_id)
    if address is None:
        return Resend.NOT_PENDING
    suppression = suppressions.reason_of(conn, repo.address_hash(secret, address))
    if suppression is not None and suppression != LIFTABLE:  # as a sign-up would
        return Resend.SUPPRESSED
    if not _within_mail_limit(conn, secret, address, limit, now):
        return Resend.LIMITED
    consent = visitor.consent("confirmation-resent", form, message_id)
    repo.set_status(conn, subscriber_id, list_name, "pending", consent=consent)
    return Resend.SEND


def _within_mail_limit(
    conn: Connection, secret: bytes, address: str, limit: MailLimit, now: datetime | None
) -> bool:
    """Count one email to the address; whether it is within the limit (see MailLimit)."""
    mail_bucket = rate_limits.bucket(secret, "mail", address)
    hit = rate_limits.hit(conn, mail_bucket, limit=limit.count, window=limit.window, now=now)
    return hit.allowed


class Confirmation(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY = "already"  # confirmed before: the link was used twice
    NOT_PENDING = "not-pending"  # no such sign-up, or the person has left since


def confirm(
    conn: Connection, *, secret: bytes, subscriber_id: str, list_name: str, visitor: Visitor
) -> Confirmation:
    status = memberships.status_of(conn, subscriber_id, list_name)
    if status == "confirmed":
        return Confirmation.ALREADY
    if status != "pending":
        return Confirmation.NOT_PENDING
    repo.set_status(
        conn,
        subscriber_id,
        list_name,
        "confirmed",
        consent=visitor.consent("confirmed", "web:confirm"),
    )
    _lift_unsubscribed(conn, secret, subscriber_id)
    return Confirmation.CONFIRMED


def unsubscribe(
    conn: Connection,
    *,
    secret: bytes,
    subscriber_id: str,
    list_name: str,
    visitor: Visitor,
    form: str,
) -> bool:
    """Leave ``list_name``; False when the person or subscription no longer exists."""
    status = memberships.status_of(conn, subscriber_id, list_name)
    if status is None:
        return False
    if status != "unsubscribed":
        repo.set_status(
            conn,
            subscriber_id,
            list_name,
            "unsubscribed",
            consent=visitor.consent("unsubscribed", form),
        )
    _suppress_if_gone(conn, secret, subscriber_id)
    return True


@dataclass(frozen=True, slots=True)
class Preferences:
    email: str
    name: str
    timezone: str
    statuses: Mapping[str, str]  # list name -> status
    cadences: Mapping[str, str]  # list name -> cadence ("" is the list's own schedule)


def preferences(conn: Connection, subscriber_id: str) -> Preferences | None:
    person = memberships.profile(conn, subscriber_id)
    if person is None:
        return None
    rows = memberships.memberships_of(conn, subscriber_id)
    return Preferences(
        email=person.email,
        name=person.name,
        timezone=person.timezone,
        statuses={row.list_name: row.status for row in rows},
        cadences={row.list_name: row.cadence for row in rows},
    )


def save_preferences(
    conn: Connection,
    *,
    secret: bytes,
    subscriber_id: str,
    chosen: Mapping[str, str],
    offered: tuple[str, ...],
    name: str,
    timezone: str,
    visitor: Visitor,
) -> None:
    """Subscribe to the ``chosen`` lists (name -> cadence) and leave the other ``offered`` ones.

    The signed link proved the reader owns the address, so a list ticked here is confirmed at
    once, without another email.
    """
    current = preferences(conn, subscriber_id)
    if current is None:
        raise LookupError(subscriber_id)
    memberships.set_profile(conn, subscriber_id, name=name[:MAX_NAME].strip(), timezone=timezone)
    for list_name in offered:
        status = current.statuses.get(list_name)
        if list_name in chosen:
            cadence = chosen[list_name]
            if status != "confirmed":
                consent = visitor.consent("subscribed", "web:preferences")
                repo.subscribe(
                    conn,
                    subscriber_id,
                    list_name,
                    status="confirmed",
                    consent=consent,
                    cadence=cadence,
                )
            elif current.cadences.get(list_name, "") != cadence:
                memberships.set_cadence(conn, subscriber_id, list_name, cadence)
        elif status in ACTIVE:
            repo.set_status(
                conn,
                subscriber_id,
                list_name,
                "unsubscribed",
                consent=visitor.consent("unsubscribed", "web:preferences"),
            )
    if chosen:
        _lift_unsubscribed(conn, secret, subscriber_id)
    else:
        _suppress_if_gone(conn, secret, subscriber_id)


def email_of(conn: Connection, subscriber_id: str) -> str | None:
    """The person's address; None when no one has the id (any more)."""
    return memberships.email_of(conn, subscriber_id)


def _cadence(conn: Connection, subscriber_id: str, list_name: str) -> str:
    # A new subscription starts on the list's own schedule; a renewed one keeps its choice.
    return memberships.cadence_of(conn, subscriber_id, list_name) or ""


def _suppress_if_gone(conn: Connection, secret: bytes, subscriber_id: str) -> None:
    active = memberships.has_status_in(conn, subscriber_id, ACTIVE)
    email = email_of(conn, subscriber_id)
    if not active and email is not None:
        repo.suppress(conn, repo.address_hash(secret, email), "unsubscribed")


def _lift_unsubscribed(conn: Connection, secret: bytes, subscriber_id: str) -> None:
    email = email_of(conn, subscriber_id)
    if email is None:
        return
    suppressions.lift(conn, repo.address_hash(secret, email), LIFTABLE)
