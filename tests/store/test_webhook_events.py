"""store.webhook_events on SQLite and PostgreSQL: each event id is claimed once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from speakerfeed.store.engine import upgrade
from speakerfeed.store.schema import webhook_events
from speakerfeed.store.webhook_events import claim_event

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def test_an_event_id_is_claimed_once(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        assert claim_event(conn, "evt-1", NOW)
        assert not claim_event(conn, "evt-1", NOW + timedelta(minutes=1))
        assert claim_event(conn, "evt-2", NOW)
    with engine.begin() as conn:
        assert not claim_event(conn, "evt-2", NOW)  # in a later transaction too
        rows = conn.execute(
            select(webhook_events.c.event_id, webhook_events.c.received_at).order_by(
                webhook_events.c.event_id
            )
        ).all()
    # The first claim's time is kept.
    assert [(row.event_id, row.received_at) for row in rows] == [("evt-1", NOW), ("evt-2", NOW)]


def test_a_claim_rolled_back_with_its_transaction_can_be_made_again(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        with conn.begin() as transaction:
            assert claim_event(conn, "evt-1", NOW)
            transaction.rollback()
        with conn.begin():
            assert claim_event(conn, "evt-1", NOW)
