"""actions.welcomes on SQLite and PostgreSQL: the back-off the README promises, giving up, a
claim a dead process left, the reader's cadence and zone, and what a transport's outcome means."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from speakerfeed.actions.welcomes import (
    MAX_ATTEMPTS,
    STALE_CLAIM,
    WelcomeOutcome,
    owe_welcome,
    retry_delay,
    send_owed_welcomes,
)
from speakerfeed.config import Settings
from speakerfeed.models import Outcome
from speakerfeed.store import memberships, welcomes
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import upgrade
from speakerfeed.store.schedules import set_paused
from speakerfeed.transports.memory import MemoryTransport
from tests.support.project import make_project
from tests.support.webapp import EMAIL, LISTS, SECRET

NOW = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)  # a Thursday


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_project(tmp_path, email=EMAIL, lists=LISTS, build={"output_dir": "public"})


def _reader(engine: Engine, settings: Settings, list_name: str = "daily", **profile: str) -> str:
    upgrade(engine)
    with engine.begin() as conn:
        reader = repo.add_subscriber(conn, "ann@example.org", name="Ann", **profile)
        repo.subscribe(conn, reader, list_name, status="confirmed", consent={"action": "test"})
        assert owe_welcome(conn, settings, reader, list_name, now=NOW)
    return reader


def _state(engine: Engine, reader: str, list_name: str = "daily") -> str | None:
    with engine.connect() as conn:
        return welcomes.state_of(conn, reader, list_name)


def test_the_delays_double_from_a_minute_to_at_most_six_hours() -> None:
    minutes = [retry_delay(n) / timedelta(minutes=1) for n in range(1, MAX_ATTEMPTS)]
    assert minutes == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert retry_delay(20) == timedelta(hours=6)


def test_a_deferring_server_is_tried_with_back_off_then_given_up(
    engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    reader = _reader(engine, settings)
    deferring = MemoryTransport({"ann@example.org": Outcome.DEFERRED})
    moment, tries = NOW, []
    while _state(engine, reader) == "owed":
        # Just before it is due: nothing is tried.
        early = send_owed_welcomes(
            engine, settings, SECRET, lambda: deferring, now=moment - timedelta(seconds=1)
        )
        assert early == {}
        outcome = send_owed_welcomes(engine, settings, SECRET, lambda: deferring, now=moment)
        tries.append(moment)
        assert outcome in ({WelcomeOutcome.RETRY: 1}, {WelcomeOutcome.FAILED: 1})
        moment += retry_delay(len(tries))
    assert len(tries) == MAX_ATTEMPTS
    assert _state(engine, reader) == "failed"
    assert f"given up after {MAX_ATTEMPTS} tries" in caplog.text
    assert deferring.sent == []


def test_a_refusal_for_good_is_not_retried_and_unknown_counts_as_sent(
    engine: Engine, settings: Settings
) -> None:
    reader = _reader(engine, settings)
    refusing = MemoryTransport({"ann@example.org": Outcome.FAILED})
    assert send_owed_welcomes(engine, settings, SECRET, lambda: refusing, now=NOW) == {
        WelcomeOutcome.FAILED: 1
    }
    with engine.begin() as conn:
        welcomes.owe(conn, reader, "daily", now=NOW)
    broken = MemoryTransport({"ann@example.org": Outcome.UNKNOWN})
    assert send_owed_welcomes(engine, settings, SECRET, lambda: broken, now=NOW) == {
        WelcomeOutcome.SENT: 1
    }
    assert _state(engine, reader) == "sent"


def test_a_claim_a_dead_process_left_is_counted_as_sent_never_sent_twice(
    engine: Engine, settings: Settings
) -> None:
    reader = _reader(engine, settings)
    with engine.begin() as conn:  # the process claimed it, perhaps sent it, and died
        assert welcomes.claim(conn, reader, "daily", now=NOW) == 0
    transport = MemoryTransport()
    soon = NOW + STALE_CLAIM - timedelta(seconds=1)
    assert send_owed_welcomes(engine, settings, SECRET, lambda: transport, now=soon) == {}
    assert _state(engine, reader) == "sending"
    later = NOW + STALE_CLAIM + timedelta(seconds=1)
    assert send_owed_welcomes(engine, settings, SECRET, lambda: transport, now=later) == {}
    assert _state(engine, reader) == "sent" and transport.sent == []


def test_a_reader_who_left_before_the_retry_gets_nothing(
    engine: Engine, settings: Settings
) -> None:
    reader = _reader(engine, settings)
    with engine.begin() as conn:
        repo.set_status(conn, reader, "daily", "unsubscribed", consent={"action": "test"})
    transport = MemoryTransport()
    assert send_owed_welcomes(engine, settings, SECRET, lambda: transport, now=NOW) == {
        WelcomeOutcome.DROPPED: 1
    }
    assert transport.sent == [] and _state(engine, reader) == "dropped"


def test_the_next_issue_follows_the_readers_cadence_in_their_zone(
    engine: Engine, settings: Settings
) -> None:
    reader = _reader(engine, settings, "weekly", timezone="Australia/Sydney")
    with engine.begin() as conn:
        memberships.set_cadence(conn, reader, "weekly", "monthly")  # "0 8 1 * *", London
    transport = MemoryTransport()
    assert send_owed_welcomes(engine, settings, SECRET, lambda: transport, now=NOW) == {
        WelcomeOutcome.SENT: 1
    }
    (message,) = [sent.parsed() for sent in transport.sent]
    body = message.get_body(("plain",))
    assert body is not None
    text = " ".join(str(body.get_content()).split())
    first = datetime(2027, 1, 1, 8, 0, tzinfo=ZoneInfo("Europe/London"))
    assert first.astimezone(ZoneInfo("Australia/Sydney")).hour == 19
    assert "planned for Friday 1 January 2027 at 19:00 (Australia/Sydney)." in text


def test_a_paused_list_promises_no_date(engine: Engine, settings: Settings) -> None:
    reader = _reader(engine, settings)
    set_paused(engine, "daily", True)
    transport = MemoryTransport()
    send_owed_welcomes(engine, settings, SECRET, lambda: transport, now=NOW)
    (message,) = [sent.parsed() for sent in transport.sent]
    body = message.get_body(("plain",))
    assert body is not None and "No issue is planned just now" in str(body.get_content())
    assert _state(engine, reader) == "sent"
