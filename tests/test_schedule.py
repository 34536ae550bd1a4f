"""Scheduling pieces on SQLite and PostgreSQL: crontab meaning, the job store keeping missed
runs, leader election, and a digest job that fires twice recording one send."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from speakerfeed import schedule
from speakerfeed.actions.database import Store
from speakerfeed.actions.schedules import digest_job_id, list_schedules
from speakerfeed.config import Settings
from speakerfeed.config.crontab import cron_days, crontab_trigger
from speakerfeed.store import ledger
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import upgrade
from speakerfeed.store.leader import Leadership
from speakerfeed.store.schedules import set_paused
from speakerfeed.store.schema import deliveries, sends
from tests.support.cli import run_speakerfeed
from tests.support.project import make_project

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("6", "sat"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon-fri"),
        ("*/2", "*/2"),
        ("1,3", "mon,wed"),
    ],
)
def test_day_numbers_mean_what_cron_means(field: str, expected: str) -> None:
    assert cron_days(field) == expected


def test_a_saturday_schedule_fires_on_saturday_in_its_zone() -> None:
    trigger = crontab_trigger("0 8 * * 6", "Europe/London")
    fire = trigger.get_next_fire_time(None, datetime(2026, 11, 24, tzinfo=UTC))
    assert fire is not None and fire.strftime("%A %H:%M") == "Saturday 08:00"
    with pytest.raises(ValueError, match="out of range"):
        crontab_trigger("0 8 * * 9", "UTC")
    seconds = crontab_trigger("30 0 7 * * *", "UTC")
    assert seconds.get_next_fire_time(None, datetime(2026, 1, 1, tzinfo=UTC)) == datetime(
        2026, 1, 1, 7, 0, 30, tzinfo=UTC
    )


def test_last_fire_time() -> None:
    trigger = crontab_trigger("0 7 * * *", "UTC")
    now = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert schedule.last_fire_time(trigger, now) == datetime(2026, 11, 24, 7, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    shutil.copytree(ROOT / "articles", tmp_path / "articles")
    return make_project(
        tmp_path,
        email={
            "from_address": "The Speaker <digest@speakernews.co.uk>",
            "postal_address": "The Speaker, 20 Example Street, London",
        },
        lists=[{"name": "daily", "title": "The Speaker Daily", "schedule": "0 7 * * *"}],
    )


def test_the_job_store_keeps_the_next_run_across_restarts(
    engine: Engine, settings: Settings
) -> None:
    upgrade(engine)
    first = schedule.make_scheduler(settings, engine)
    job = first.get_job(digest_job_id("daily"))
    assert job is not None and {j.id for j in first.get_jobs()} == {
        "refresh",
        "housekeeping",
        "welcomes",
        "digest:daily",
    }
    planned = job.next_run_time
    first.shutdown(wait=False)
    # Started again (as after downtime): the job, and its next run time, come from the store.
    second = schedule.make_scheduler(settings, engine)
    again = second.get_job(digest_job_id("daily"))
    assert again is not None and again.next_run_time == planned
    assert again.misfire_grace_time == 180 * 60 and again.coalesce
    second.shutdown(wait=False)


def test_one_leader_at_a_time(engine: Engine) -> None:
    upgrade(engine)
    one = Leadership(engine, "scheduler", "host:1", ttl=timedelta(seconds=60))
    two = Leadership(engine, "scheduler", "host:2", ttl=timedelta(seconds=60))
    try:
        assert one.try_acquire()
        assert not two.try_acquire()
        assert one.try_acquire()  # keeping it
        one.release()
        assert two.try_acquire()
        assert not one.try_acquire()
    finally:
        one.release()
        two.release()


def test_a_digest_job_that_fires_twice_records_one_send(engine: Engine, settings: Settings) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        subscriber = repo.add_subscriber(conn, "ann@example.org")
        repo.subscribe(conn, subscriber, "daily", status="confirmed", consent={"action": "t"})
    woken: list[bool] = []
    schedule.install(
        schedule.JobContext(
            settings, engine, refresh=lambda: None, wake_senders=lambda: woken.append(True)
        )
    )
    schedule.digest_job("daily")
    schedule.digest_job("daily")
    schedule.housekeeping_job()
    with engine.connect() as conn:
        (send_id,) = conn.execute(select(sends.c.id)).one()
        # Its one reader is still to be added, once, by the senders.
        assert ledger.audience_left(conn, send_id, named_cadences=()) == 1
        assert conn.execute(select(func.count()).select_from(deliveries)).scalar_one() == 0
    assert woken

    set_paused(engine, "daily", True)
    (run,) = list_schedules(settings, Store(engine, b""))
    assert run.paused and run.zone == "Europe/London"
    set_paused(engine, "daily", False)
    (run,) = list_schedules(settings, Store(engine, b""))
    assert not run.paused and run.next_run is not None and run.next_run.hour == 7


def test_schedule_commands(tmp_path: Path) -> None:
    import subprocess

    (tmp_path / "config.toml").write_text(
        (ROOT / "config.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_speakerfeed(tmp_path, "--log-json", "schedule", *args, timeout=60)

    listed = run("list")
    assert listed.returncode == 0, listed.stderr
    daily, weekly = listed.stdout.splitlines()
    assert daily.startswith("digest:daily") and "0 7 * * *" in daily and "next: " in daily
    assert "Europe/London" in daily
    assert "next: Sat" in weekly  # "0 8 * * 6" is Saturday, as cron means
    assert run("pause", "daily").stdout == "daily: scheduled digests paused\n"
    assert "paused" in run("list").stdout.splitlines()[0]
    assert run("resume", "daily").returncode == 0
    assert "next: " in run("list").stdout.splitlines()[0]
    unknown = run("pause", "nope")
    assert unknown.returncode == 1 and "no list named 'nope'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_the_embargo_job_is_planned_at_its_moment_and_survives_a_restart(
    engine: Engine, settings: Settings
) -> None:
    upgrade(engine)
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1, minutes=7)
    first = schedule.make_scheduler(settings, engine)
    schedule.plan_embargo(first, moment)
    job = first.get_job(schedule.EMBARGO_JOB)
    assert job is not None and job.next_run_time == moment
    assert job.misfire_grace_time is None  # however late, the articles must appear
    sooner = moment - timedelta(hours=3)
    schedule.plan_embargo(first, sooner)  # a build found a sooner one: it replaces the first
    assert [j.next_run_time for j in first.get_jobs() if j.id == schedule.EMBARGO_JOB] == [sooner]
    first.shutdown(wait=False)
    # Restarted: the jobs made from config.toml are re-made, the embargo job is kept as it was.
    second = schedule.make_scheduler(settings, engine)
    again = second.get_job(schedule.EMBARGO_JOB)
    assert again is not None and again.next_run_time == sooner
    schedule.plan_embargo(second, None)  # nothing embargoed any more
    assert second.get_job(schedule.EMBARGO_JOB) is None
    second.shutdown(wait=False)
