"""Rate-limit windows in the database, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from speakerfeed.store import rate_limits
from speakerfeed.store.engine import upgrade
from speakerfeed.store.schema import rate_limits as table

START = datetime(2026, 11, 24, 19, 59, 50, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_a_window_starts_at_the_first_hit_not_on_the_clock(engine: Engine) -> None:
    upgrade(engine)
    name = rate_limits.bucket(b"k" * 16, "mail", "ann@example.org")
    assert "ann" not in name
    with engine.begin() as conn:
        first = rate_limits.hit(conn, name, limit=1, window=HOUR, now=START)
        # Across the hour boundary: still the same window, so still refused.
        second = rate_limits.hit(
            conn, name, limit=1, window=HOUR, now=START + timedelta(seconds=20)
        )
        later = rate_limits.hit(conn, name, limit=1, window=HOUR, now=START + HOUR)
    assert first.allowed and first.retry_after == 3600
    assert not second.allowed and second.retry_after == 3580
    assert later.allowed  # a new window


def test_ended_windows_are_forgotten(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        rate_limits.hit(conn, "ip:old", limit=5, window=HOUR, now=START - 2 * HOUR)
        rate_limits.hit(conn, "ip:new", limit=5, window=HOUR, now=START)
        assert rate_limits.forget_before(conn, START - HOUR) == 1
        left = conn.execute(select(table.c.bucket)).scalars().all()
        assert left == ["ip:new"]
        assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 1
