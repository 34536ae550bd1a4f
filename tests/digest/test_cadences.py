"""Cadence digests: a list's other schedules (`cadences`), each with digests of its own for the
readers who chose it, on SQLite and PostgreSQL; the scheduler's job per cadence; `send --cadence`.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from speakerfeed import schedule
from speakerfeed.actions.database import Store
from speakerfeed.actions.schedules import list_schedules
from speakerfeed.config import Settings
from speakerfeed.digest import deliver as dispatch
from speakerfeed.digest.archive import write_digest_archive
from speakerfeed.digest.issue import Issued, NothingNew, Unfinished, open_send
from speakerfeed.digest.prepare import prepare
from speakerfeed.digest.select import digest_id, next_digest
from speakerfeed.errors import ConfigError
from speakerfeed.models import RenderedDigest
from speakerfeed.store import ledger
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import engine_for_url, upgrade
from speakerfeed.store.schedules import set_paused
from speakerfeed.store.schema import deliveries, sends
from speakerfeed.store.sends import unfinished_send
from speakerfeed.transports.memory import MemoryTransport
from tests.support.cli import run_speakerfeed
from tests.support.project import BASE_CONFIG, make_project, markdown_article

SECRET = "cadence-test-secret-key-0123456789"
EMAIL = {
    "from_address": "The Speaker <digest@speakernews.co.uk>",
    "postal_address": "The Speaker, 20 Example Street, London",
}
DAILY = {"name": "daily", "title": "The Speaker Daily", "schedule": "0 7 * * *"}
WEEKLY = "0 7 * * 1"  # Mondays at 7:00
ARTICLES: dict[str, str | bytes] = {
    "one.md": markdown_article("Story one", "2024-11-04 09:00"),  # a Monday
    "two.md": markdown_article("Story two", "2024-11-06 09:00"),
    "three.md": markdown_article("Story three", "2024-11-12 09:00"),
}
# Who chose what: "" is the list's own schedule.
READERS = {
    "ann@example.org": "",
    "bob@example.org": "",
    "cat@example.org": "weekly",
    "dan@example.org": "weekly",
}


def at(day: int) -> datetime:
    """7:00 on a day of November 2024 (Europe/London is on UTC then)."""
    return datetime(2024, 11, day, 7, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_project(
        tmp_path, ARTICLES, email=EMAIL, lists=[{**DAILY, "cadences": {"weekly": WEEKLY}}]
    )


def subscribe_readers(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        for address, cadence in READERS.items():
            subscriber = repo.add_subscriber(conn, address)
            repo.subscribe(
                conn,
                subscriber,
                "daily",
                status="confirmed",
                consent={"action": "test"},
                cadence=cadence,
            )
        # Chose weekly but never confirmed: no digest of any cadence.
        pending = repo.add_subscriber(conn, "eve@example.org")
        repo.subscribe(
            conn, pending, "daily", status="pending", consent={"action": "t"}, cadence="weekly"
        )


@pytest.fixture
def store(engine: Engine) -> Engine:
    subscribe_readers(engine)
    return engine


def readers_of(cadence: str) -> list[str]:
    return sorted(address for address, chosen in READERS.items() if chosen == cadence)


def send_now(engine: Engine, settings: Settings, day: int, cadence: str = "") -> str | None:
    """Record and run the digest of ``cadence`` due at 7:00 on ``day``; its id, or None when
    nothing was new."""
    opened = open_send(
        engine,
        settings,
        settings.lists[0],
        now=at(day),
        fetch_upstreams=False,
        cadence=cadence,
    )
    if isinstance(opened, NothingNew):
        return None
    assert isinstance(opened, Issued), opened
    transport = MemoryTransport()
    report = dispatch.run_send(
        engine, settings, opened.send_id, transport, secret=SECRET.encode(), now=at(day)
    )
    assert report.state == "done", report
    assert sorted(m.envelope_to for m in transport.sent) == readers_of(cadence)
    return opened.send_id


def archived(settings: Settings, send_id: str) -> dict[str, object]:
    path = settings.output_dir / "digests" / "daily" / send_id / "digest.json"
    record: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return record


def titles(settings: Settings, send_id: str) -> list[str]:
    articles = archived(settings, send_id)["articles"]
    assert isinstance(articles, list)
    return [str(article["title"]) for article in articles]


# ------------------------------------------------------------------------- selection and archive


def test_a_cadence_digest_has_an_id_of_its_own(settings: Settings) -> None:
    daily = settings.lists[0]
    assert digest_id(daily, at(11)) == "daily-2024-11-11-0700"  # the list's own, as ever
    assert digest_id(daily, at(11), "weekly") == "daily-weekly-2024-11-11-0700"
    digest = next_digest(settings, daily, [], included=None, now=at(11), cadence="weekly")
    assert digest is None  # nothing to send
    always = daily.model_copy(update={"send_when_empty": True})
    digest = next_digest(settings, always, [], included=None, now=at(11), cadence="weekly")
    assert digest is not None and digest.cadence == "weekly"
    assert digest.archive_path == "digests/daily/daily-weekly-2024-11-11-0700/"


def test_the_archive_names_each_digest_s_cadence(settings: Settings) -> None:
    always = settings.lists[0].model_copy(update={"send_when_empty": True})
    for day, cadence in ((11, "weekly"), (13, ""), (12, "")):
        digest = next_digest(settings, always, [], included=None, now=at(day), cadence=cadence)
        assert digest is not None
        write_digest_archive(settings, RenderedDigest(digest, f"Day {day}", "", "<p/>", "", ""))
    assert "cadence" not in archived(settings, "daily-2024-11-13-0700")
    assert archived(settings, "daily-weekly-2024-11-11-0700")["cadence"] == "weekly"
    index = (settings.output_dir / "digests" / "index.html").read_text(encoding="utf-8")
    assert index.count("<h3>") == 3  # the archive lists every issue, whatever its cadence


def test_an_unknown_cadence_is_refused_naming_the_list_s_cadences(
    settings: Settings, tmp_path: Path
) -> None:
    daily = settings.lists[0]
    nowhere = engine_for_url("sqlite://")  # refused before the database is asked
    with pytest.raises(ConfigError, match=r"no cadence 'monthly' \(cadences: weekly\)"):
        prepare(nowhere, settings, daily, fetch_upstreams=False, cadence="monthly")
    plain = make_project(tmp_path / "plain", email=EMAIL, lists=[DAILY])
    with pytest.raises(ConfigError, match=r"\(cadences: none are defined\)"):
        next_digest(plain, plain.lists[0], [], included=None, now=at(11), cadence="weekly")


# ---------------------------------------------------------------------------- sends, both engines


def test_each_cadence_reaches_only_the_readers_who_chose_it(
    store: Engine, settings: Settings
) -> None:
    with store.connect() as conn:
        weekly = repo.iter_confirmed(conn, "daily", secret=SECRET.encode(), cadence="weekly")
        assert sorted(s.email for s in weekly) == readers_of("weekly")
        own = repo.iter_confirmed(
            conn, "daily", secret=SECRET.encode(), cadence="", named_cadences=["weekly"]
        )
        assert sorted(s.email for s in own) == readers_of("")
    # send_now checks that each send reached exactly the readers of its cadence.
    assert send_now(store, settings, 11) == "daily-2024-11-11-0700"
    assert send_now(store, settings, 11, "weekly") == "daily-weekly-2024-11-11-0700"
    with store.connect() as conn:
        recorded = dict(conn.execute(select(sends.c.id, sends.c.cadence)).all())
    assert recorded == {"daily-2024-11-11-0700": "", "daily-weekly-2024-11-11-0700": "weekly"}


def test_a_cadence_digest_holds_what_is_new_since_its_own_last_digest(
    store: Engine, settings: Settings
) -> None:
    first_weekly = send_now(store, settings, 11, "weekly")
    assert first_weekly is not None
    assert titles(settings, first_weekly) == ["Story two", "Story one"]
    # The weekly digest did not move the daily one on: its first holds all three.
    first_daily = send_now(store, settings, 13)
    assert first_daily is not None
    assert titles(settings, first_daily) == ["Story three", "Story two", "Story one"]
    # Nor did the daily digest move the weekly one on: what is new since the last weekly.
    second_weekly = send_now(store, settings, 18, "weekly")
    assert second_weekly == "daily-weekly-2024-11-18-0700"
    assert titles(settings, second_weekly) == ["Story three"]
    assert send_now(store, settings, 19) is None  # nothing new since the last daily
    # The archive index lists them all, the weekly ones marked as such.
    index = (settings.output_dir / "digests" / "index.html").read_text("utf-8")
    assert index.count("Weekly edition") == 2
    assert f'href="daily/{first_daily}/"' in index


def test_an_unfinished_send_holds_back_only_its_own_cadence(
    store: Engine, settings: Settings
) -> None:
    daily = settings.lists[0]
    weekly = open_send(store, settings, daily, now=at(11), fetch_upstreams=False, cadence="weekly")
    assert isinstance(weekly, Issued)
    assert weekly.send_id == "daily-weekly-2024-11-11-0700"
    assert unfinished_send(store, "daily", "weekly") == weekly.send_id
    assert unfinished_send(store, "daily") is None
    own = open_send(store, settings, daily, now=at(11), fetch_upstreams=False)
    assert isinstance(own, Issued)
    assert own.send_id == "daily-2024-11-11-0700"
    again = open_send(store, settings, daily, now=at(12), fetch_upstreams=False, cadence="weekly")
    assert isinstance(again, Unfinished)
    assert again.send_id == weekly.send_id
    with pytest.raises(ConfigError, match="no cadence 'monthly'"):
        open_send(store, settings, daily, now=at(12), fetch_upstreams=False, cadence="monthly")


def test_a_digest_id_taken_by_another_list_is_refused(engine: Engine, tmp_path: Path) -> None:
    # A config can no longer hold both (see the test below), but one may follow the other:
    # list "daily-weekly", later renamed away, and list "daily" given a cadence "weekly".
    before = make_project(
        tmp_path / "before",
        ARTICLES,
        email=EMAIL,
        lists=[{"name": "daily-weekly", "title": "Another list"}],
    )
    upgrade(engine)
    other = open_send(engine, before, before.lists[0], now=at(11), fetch_upstreams=False)
    assert isinstance(other, Issued)
    assert other.send_id == "daily-weekly-2024-11-11-0700"
    after = make_project(
        tmp_path / "after", ARTICLES, email=EMAIL, lists=[{**DAILY, "cadences": {"weekly": WEEKLY}}]
    )
    with pytest.raises(ConfigError, match="already taken by a send of list daily-weekly"):
        open_send(
            engine, after, after.lists[0], now=at(11), fetch_upstreams=False, cadence="weekly"
        )
    assert not (after.output_dir / "digests" / "daily").exists()  # nothing published


# ------------------------------------------------------------------------------------- scheduler


def test_the_scheduler_has_a_job_per_cadence_and_drops_a_removed_one(
    engine: Engine, settings: Settings
) -> None:
    upgrade(engine)
    first = schedule.make_scheduler(settings, engine)
    try:
        job = first.get_job("digest:daily:weekly")
        assert job is not None and job.args == ("daily", "weekly")
        assert job.next_run_time.strftime("%A %H:%M") == "Monday 07:00"  # Europe/London
        assert first.get_job("digest:daily") is not None
    finally:
        first.shutdown(wait=False)
    # The cadence's crontab changed: its job follows.
    friday = make_project(
        settings.root, email=EMAIL, lists=[{**DAILY, "cadences": {"weekly": "0 9 * * 5"}}]
    )
    second = schedule.make_scheduler(friday, engine)
    try:
        job = second.get_job("digest:daily:weekly")
        assert job is not None
        assert job.next_run_time.strftime("%A %H:%M") == "Friday 09:00"
    finally:
        second.shutdown(wait=False)
    # The cadence left config.toml: so does its job.
    third = schedule.make_scheduler(make_project(settings.root, email=EMAIL, lists=[DAILY]), engine)
    try:
        assert {job.id for job in third.get_jobs()} == {
            "refresh",
            "housekeeping",
            "welcomes",
            "digest:daily",
        }
    finally:
        third.shutdown(wait=False)


def test_a_cadence_job_sends_to_its_readers_and_pausing_the_list_stops_it(
    store: Engine, settings: Settings
) -> None:
    woken: list[bool] = []
    schedule.install(
        schedule.JobContext(
            settings, store, refresh=lambda: None, wake_senders=lambda: woken.append(True)
        )
    )
    set_paused(store, "daily", True)
    runs = list_schedules(settings, Store(store, b""))
    assert [(run.job, run.schedule, run.paused) for run in runs] == [
        ("digest:daily", "0 7 * * *", True),
        ("digest:daily:weekly", WEEKLY, True),
    ]
    schedule.digest_job("daily", "weekly")
    schedule.digest_job("daily")
    with store.connect() as conn:
        assert conn.execute(select(sends.c.id)).first() is None
    assert not woken

    set_paused(store, "daily", False)
    schedule.digest_job("daily", "weekly")
    schedule.digest_job("daily", "monthly")  # a job left over from an old config: nothing done
    with store.begin() as conn:
        (send_id, cadence) = conn.execute(select(sends.c.id, sends.c.cadence)).one()
        # Its rows are added by the senders as they go: as they would be, all of them.
        named = settings.lists[0].cadences
        claimed = ledger.claim_audience(conn, send_id, worker="w", named_cadences=named, limit=1000)
        assert len(claimed.ids) == 2
        audience = conn.execute(select(deliveries.c.subscriber_id)).scalars().all()
        wanted = [repo.find_by_email(conn, address) for address in readers_of("weekly")]
    assert send_id.startswith("daily-weekly-") and cadence == "weekly"
    assert sorted(audience) == sorted(person.id for person in wanted if person is not None)
    assert woken
    runs = list_schedules(settings, Store(store, b""))
    weekly = runs[1]
    assert not weekly.paused and weekly.zone == "Europe/London"
    assert weekly.next_run is not None and weekly.next_run.strftime("%A %H:%M") == "Monday 07:00"


# ------------------------------------------------------------------------------------------- CLI


def run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_speakerfeed(folder, *args, secret=SECRET)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A project with the daily list and its weekly cadence, the outbox transport, and readers."""
    make_project(tmp_path, ARTICLES)
    (tmp_path / "config.toml").write_text(
        BASE_CONFIG
        + f"""
[email]
from_address = "{EMAIL["from_address"]}"
postal_address = "{EMAIL["postal_address"]}"

[[lists]]
name = "daily"
title = "The Speaker Daily"
schedule = "0 7 * * *"
cadences = {{ weekly = "{WEEKLY}" }}

[delivery]
transport = "outbox"
""",
        encoding="utf-8",
    )
    engine = engine_for_url(f"sqlite:///{tmp_path / 'var' / 'speakerfeed.sqlite3'}")
    try:
        subscribe_readers(engine)
    finally:
        engine.dispose()
    return tmp_path


def outbox(folder: Path) -> list[str]:
    """The recipients of the messages in the outbox, which is emptied."""
    found = []
    for path in (folder / "var" / "outbox").glob("*.eml"):
        found.append(str(message_from_bytes(path.read_bytes(), policy=policy.default)["To"]))
        path.unlink()
    return sorted(found)


def test_send_reaches_the_list_s_own_readers_and_cadence_the_readers_who_chose_it(
    site: Path,
) -> None:
    dry = run(site, "send", "daily", "--cadence", "weekly", "--dry-run", "--no-fetch")
    assert dry.returncode == 0, dry.stderr
    assert re.search(r"^daily-weekly-\S+: 3 articles$", dry.stdout, re.MULTILINE), dry.stdout
    assert "would go to 2 confirmed subscribers who chose weekly" in dry.stdout
    own_dry = run(site, "send", "daily", "--dry-run", "--no-fetch")
    assert "would go to 2 confirmed subscribers through" in own_dry.stdout

    test = run(
        site, "send", "daily", "--cadence", "weekly", "--no-fetch", "--test-to", "ed@example.org"
    )
    assert test.returncode == 0, test.stderr
    assert test.stdout.startswith("daily-weekly-")
    assert outbox(site) == ["ed@example.org"]

    weekly = run(site, "send", "daily", "--cadence", "weekly", "--no-fetch", "-q")
    assert weekly.returncode == 0, weekly.stderr
    assert re.search(r"daily-weekly-\S+: done \(2 sent\)", weekly.stdout), weekly.stdout
    assert outbox(site) == readers_of("weekly")
    # The weekly digest moved the weekly cadence on, not the list's own schedule.
    own = run(site, "send", "daily", "--no-fetch", "-q")
    assert own.returncode == 0, own.stderr
    assert re.search(r"daily-\d{4}-\S+: done \(2 sent\)", own.stdout), own.stdout
    assert outbox(site) == readers_of("")
    again = run(site, "send", "daily", "--cadence", "weekly", "--no-fetch")
    assert again.stdout == "daily (weekly): no new articles since the last digest, so no digest.\n"
    assert outbox(site) == []


def test_an_unknown_cadence_is_a_clear_error(site: Path) -> None:
    for extra in ([], ["--dry-run"], ["--test-to", "ed@example.org"]):
        result = run(site, "send", "daily", "--cadence", "monthly", "--no-fetch", *extra)
        assert result.returncode == 1
        assert "no cadence 'monthly' (cadences: weekly)" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (site / "var" / "outbox").exists()
    preview = run(site, "digest", "preview", "daily", "--cadence", "monthly", "--no-fetch")
    assert preview.returncode == 1 and "Traceback" not in preview.stderr


def test_schedule_commands_show_and_pause_cadence_jobs(site: Path) -> None:
    listed = run(site, "schedule", "list")
    assert listed.returncode == 0, listed.stderr
    own, weekly = listed.stdout.splitlines()
    assert own.startswith("digest:daily ") and "next: " in own
    assert weekly.startswith("digest:daily:weekly") and WEEKLY in weekly
    assert "next: Mon" in weekly and "Europe/London" in weekly
    paused = run(site, "schedule", "pause", "daily")
    assert paused.stdout == "daily: scheduled digests paused (its cadences too: weekly)\n"
    assert all(
        line.endswith("paused") for line in run(site, "schedule", "list").stdout.splitlines()
    )
    assert run(site, "schedule", "resume", "daily").returncode == 0
    assert "paused" not in run(site, "schedule", "list").stdout


def test_readers_of_a_cadence_removed_from_config_get_the_lists_own_digest(
    store: Engine, tmp_path: Path
) -> None:
    without_weekly = make_project(tmp_path / "later", ARTICLES, email=EMAIL, lists=[DAILY])
    opened = open_send(
        store, without_weekly, without_weekly.lists[0], now=at(12), fetch_upstreams=False
    )
    assert isinstance(opened, Issued)
    transport = MemoryTransport()
    report = dispatch.run_send(
        store, without_weekly, opened.send_id, transport, secret=SECRET.encode(), now=at(12)
    )
    assert report.state == "done"
    assert sorted(m.envelope_to for m in transport.sent) == sorted(READERS)


def test_lists_and_cadences_whose_digest_ids_would_clash_are_refused(tmp_path: Path) -> None:
    clashing = [
        {**DAILY, "cadences": {"weekly": WEEKLY}},
        {"name": "daily-weekly", "title": "Another list"},
    ]
    with pytest.raises(ConfigError, match="same ids"):
        make_project(tmp_path, ARTICLES, email=EMAIL, lists=clashing)
