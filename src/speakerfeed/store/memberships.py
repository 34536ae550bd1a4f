"""One subscriber's memberships, as the readers' pages and the webhooks read and change them:
who they are (address, name, time zone) and, per list, a status and a cadence.

Each function takes a ``Connection``: the caller owns the transaction, so a page can read and
change a person's subscriptions atomically. The rules (which status follows which, when an
address is suppressed) are speakerfeed.subscriptions'; these only run the statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, select

from speakerfeed.store.schema import subscribers, subscriptions


@dataclass(frozen=True, slots=True)
class Profile:
    email: str
    name: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Membership:
    list_name: str
    status: str
    cadence: str  # "" is the list's own schedule


def profile(conn: Connection, subscriber_id: str) -> Profile | None:
    person = conn.execute(
        select(subscribers.c.email, subscribers.c.name, subscribers.c.timezone).where(
            subscribers.c.id == subscriber_id
        )
    ).first()
    if person is None:
        return None
    return Profile(email=person.email, name=person.name, timezone=person.timezone)


def memberships_of(conn: Connection, subscriber_id: str) -> list[Membership]:
    """Every subscription of the person, whatever its status."""
    rows = conn.execute(
        select(subscriptions.c.list_name, subscriptions.c.status, subscriptions.c.cadence).where(
            subscriptions.c.subscriber_id == subscriber_id
        )
    ).all()
    return [Membership(row.list_name, row.status, row.cadence) for row in rows]


def email_of(conn: Connection, subscriber_id: str) -> str | None:
    found = conn.execute(select(subscribers.c.email).where(subscribers.c.id == subscriber_id))
    email = found.scalar()
    return None if email is None else str(email)


def status_of(conn: Connection, subscriber_id: str, list_name: str) -> str | None:
    """The subscription's status; None when the person has no subscription to ``list_name``."""
    return _subscription_value(conn, subscriptions.c.status, subscriber_id, list_name)


def cadence_of(conn: Connection, subscriber_id: str, list_name: str) -> str | None:
    """The subscription's cadence; None when the person has no subscription to ``list_name``."""
    return _subscription_value(conn, subscriptions.c.cadence, subscriber_id, list_name)


def _subscription_value(
    conn: Connection, column: ColumnElement[str], subscriber_id: str, list_name: str
) -> str | None:
    found = conn.execute(
        select(column)
        .where(subscriptions.c.subscriber_id == subscriber_id)
        .where(subscriptions.c.list_name == list_name)
    ).scalar()
    return None if found is None else str(found)


def has_status_in(conn: Connection, subscriber_id: str, statuses: Sequence[str]) -> bool:
    """Whether any of the person's subscriptions has one of ``statuses``."""
    found = conn.execute(
        select(subscriptions.c.list_name)
        .where(subscriptions.c.subscriber_id == subscriber_id)
        .where(subscriptions.c.status.in_(statuses))
        .limit(1)
    ).first()
    return found is not None


def lists_not_left(conn: Connection, subscriber_id: str) -> list[str]:
    """The lists the person is subscribed to in any status but "unsubscribed"."""
    lists = conn.execute(
        select(subscriptions.c.list_name)
        .where(subscriptions.c.subscriber_id == subscriber_id)
        .where(subscriptions.c.status != "unsubscribed")
    ).scalars()
    return [str(name) for name in lists]


def set_profile(conn: Connection, subscriber_id: str, *, name: str, timezone: str) -> None:
    """Change the person's name and time zone (nothing happens to an unknown id)."""
    conn.execute(
        subscribers.update()
        .where(subscribers.c.id == subscriber_id)
        .values(name=name, timezone=timezone)
    )


def set_cadence(conn: Connection, subscriber_id: str, list_name: str, cadence: str) -> None:
    """Change an existing subscription's cadence (nothing happens without one)."""
    conn.execute(
        subscriptions.update()
        .where(subscriptions.c.subscriber_id == subscriber_id)
        .where(subscriptions.c.list_name == list_name)
        .values(cadence=cadence)
    )


def pending_before(conn: Connection, list_name: str, before: datetime) -> list[str]:
    """The ids of the list's pending subscribers whose subscription last changed (sign-up or
    confirmation sent) before ``before``, oldest first."""
    ids = conn.execute(
        select(subscriptions.c.subscriber_id)
        .where(subscriptions.c.list_name == list_name)
        .where(subscriptions.c.status == "pending")
        .where(subscriptions.c.updated_at < before)
        .order_by(subscriptions.c.updated_at, subscriptions.c.subscriber_id)
    ).scalars()
    return [str(subscriber_id) for subscriber_id in ids]
