"""store.memberships on SQLite and PostgreSQL: one person's profile and subscriptions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, select

from speakerfeed.store import memberships
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import upgrade
from speakerfeed.store.schema import consent_records

CONSENT = {"action": "subscribed", "form": "test"}


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    upgrade(engine)
    with engine.begin() as connection:
        yield connection


def _person(conn: Connection, email: str = "ann@example.org", **statuses: str) -> str:
    subscriber_id = repo.add_subscriber(conn, email, name="Ann", timezone="Europe/Paris")
    for list_name, status in statuses.items():
        repo.subscribe(conn, subscriber_id, list_name, status=status, consent=CONSENT)
    return subscriber_id


def test_profile_and_email_of_a_person(conn: Connection) -> None:
    ann = _person(conn)
    assert memberships.profile(conn, ann) == memberships.Profile(
        email="ann@example.org", name="Ann", timezone="Europe/Paris"
    )
    assert memberships.email_of(conn, ann) == "ann@example.org"
    assert memberships.profile(conn, "nobody") is None
    assert memberships.email_of(conn, "nobody") is None


def test_memberships_of_a_person_in_every_status(conn: Connection) -> None:
    ann = _person(conn, daily="confirmed", weekly="pending", news="unsubscribed")
    _person(conn, "bob@example.org", daily="confirmed")
    repo.subscribe(conn, ann, "daily", status="confirmed", consent=CONSENT, cadence="weekly")
    found = sorted(memberships.memberships_of(conn, ann), key=lambda m: m.list_name)
    assert found == [
        memberships.Membership("daily", "confirmed", "weekly"),
        memberships.Membership("news", "unsubscribed", ""),
        memberships.Membership("weekly", "pending", ""),
    ]
    assert memberships.memberships_of(conn, "nobody") == []


def test_status_and_cadence_of_one_subscription(conn: Connection) -> None:
    ann = _person(conn, daily="pending")
    repo.subscribe(conn, ann, "news", status="confirmed", consent=CONSENT, cadence="weekly")
    assert memberships.status_of(conn, ann, "daily") == "pending"
    assert memberships.status_of(conn, ann, "news") == "confirmed"
    assert memberships.status_of(conn, ann, "other") is None
    assert memberships.cadence_of(conn, ann, "daily") == ""
    assert memberships.cadence_of(conn, ann, "news") == "weekly"
    assert memberships.cadence_of(conn, ann, "other") is None


def test_has_status_in_looks_only_at_the_person(conn: Connection) -> None:
    ann = _person(conn, daily="unsubscribed", news="pending")
    bob = _person(conn, "bob@example.org", daily="confirmed")
    assert memberships.has_status_in(conn, ann, ("pending", "confirmed"))
    assert not memberships.has_status_in(conn, ann, ("confirmed",))
    assert memberships.has_status_in(conn, bob, ("confirmed",))
    assert not memberships.has_status_in(conn, "nobody", ("pending", "confirmed", "unsubscribed"))


def test_lists_not_left(conn: Connection) -> None:
    ann = _person(conn, daily="confirmed", weekly="pending", news="unsubscribed")
    _person(conn, "bob@example.org", other="confirmed")
    assert sorted(memberships.lists_not_left(conn, ann)) == ["daily", "weekly"]
    assert memberships.lists_not_left(conn, "nobody") == []


def test_set_profile_changes_name_and_zone_only(conn: Connection) -> None:
    ann = _person(conn)
    bob = _person(conn, "bob@example.org")
    memberships.set_profile(conn, ann, name="Ann B.", timezone="")
    assert memberships.profile(conn, ann) == memberships.Profile("ann@example.org", "Ann B.", "")
    assert memberships.profile(conn, bob) == memberships.Profile(
        "bob@example.org", "Ann", "Europe/Paris"
    )
    memberships.set_profile(conn, "nobody", name="X", timezone="UTC")  # no error, no row


def test_set_cadence_changes_one_subscription_and_records_no_consent(conn: Connection) -> None:
    ann = _person(conn, daily="confirmed", news="confirmed")
    before = conn.execute(select(consent_records.c.id)).all()
    memberships.set_cadence(conn, ann, "daily", "weekly")
    memberships.set_cadence(conn, ann, "absent", "weekly")  # nothing to change
    assert memberships.cadence_of(conn, ann, "daily") == "weekly"
    assert memberships.cadence_of(conn, ann, "news") == ""
    assert memberships.status_of(conn, ann, "daily") == "confirmed"
    assert memberships.cadence_of(conn, ann, "absent") is None
    assert conn.execute(select(consent_records.c.id)).all() == before
