"""The scheduled jobs of `speakerfeed serve` (APScheduler 3): rebuild the feeds every few minutes,
and one job per list on the list's crontab, in the list's time zone, that puts the next digest
into the delivery ledger, plus one per cadence of the list (``digest:<list>:<cadence>``) on the
cadence's crontab, in the same zone, for the readers who chose it. Pausing a list pauses all of
its jobs. Sending itself is done by every process's send loop (service.py).

The jobs live in APScheduler's job store in the store's own database, so a restart knows when
each last ran: a run missed while the service was down fires once when it comes back
(``coalesce``), or not at all when it is older than ``sending.max_lateness_minutes`` (the
misfire grace time, and the ledger cancels such a send too). A list's digest id comes from its
scheduled time, so a run that fires twice records one send.

The ``welcomes`` job, every minute, retries the welcome emails that could not be sent when the
reader confirmed (speakerfeed.actions.welcomes).

One more job, ``embargo``, is a single run at the moment the soonest embargoed article (one dated
in the future) becomes visible: the service re-plans it after every build (service.py), and, being
in the job store, it still fires after a restart. It rebuilds like the refresh, so the WebSub hub
hears of the feeds it changes.

Job functions are module-level and take only a list name (and a cadence): the job store keeps a
reference to the function, not the function, and the process that runs it finds the service in
``_service``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, assert_never

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from speakerfeed.actions.schedules import digest_job_id, list_trigger
from speakerfeed.config import Settings
from speakerfeed.digest.issue import Blocked, Issued, NothingNew, Unfinished, open_send
from speakerfeed.digest.select import list_cadences
from speakerfeed.store import rate_limits
from speakerfeed.store.schedules import is_paused

log = logging.getLogger(__name__)

REFRESH_JOB = "refresh"
HOUSEKEEPING_JOB = "housekeeping"
EMBARGO_JOB = "embargo"
WELCOME_JOB = "welcomes"
JOB_TABLE = "apscheduler_jobs"


def last_fire_time(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The latest time at or before ``now`` the trigger fires (within the last 35 days)."""
    moment = trigger.get_next_fire_time(None, now - timedelta(days=35))
    found = None
    while moment is not None and moment <= now:
        found = moment
        moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
    return found


@dataclass
class JobContext:
    """What the jobs of this process need."""

    settings: Settings
    engine: Engine
    refresh: Callable[[], None]  # rebuild the feeds
    wake_senders: Callable[[], None] = field(default=lambda: None)
    send_owed_welcomes: Callable[[], None] = field(default=lambda: None)


_service: JobContext | None = None


def install(context: JobContext) -> None:
    global _service
    _service = context


def _context() -> JobContext:
    if _service is None:
        raise RuntimeError("no scheduler context: speakerfeed.schedule.install() was not called")
    return _service


def refresh_job() -> None:
    _context().refresh()


def embargo_job() -> None:
    log.info("an embargo ends: rebuilding")
    _context().refresh()


def plan_embargo(scheduler: BackgroundScheduler, moment: datetime | None) -> None:
    """One rebuild at ``moment`` (the next embargo's end), replacing any planned before; none
    when nothing is embargoed."""
    existing = scheduler.get_job(EMBARGO_JOB)
    if moment is None:
        if existing is not None:
            scheduler.remove_job(EMBARGO_JOB)
        return
    if existing is not None and existing.next_run_time == moment:
        return  # already planned: no write to the job store on every refresh
    scheduler.add_job(
        embargo_job,
        DateTrigger(run_date=moment, timezone=UTC),
        id=EMBARGO_JOB,
        name=EMBARGO_JOB,
        replace_existing=True,
        # However late (the service was down), the articles must still appear: run it.
        misfire_grace_time=None,
    )
    log.info("next embargo ends at %s: rebuild planned", moment.isoformat())


def housekeeping_job() -> None:
    """Forget rate-limit windows that have ended: they would otherwise pile up for ever."""
    context = _context()
    signup = context.settings.signup
    longest = max(signup.per_ip_window_minutes, signup.per_address_window_minutes)
    with context.engine.begin() as conn:
        gone = rate_limits.forget_before(conn, datetime.now(UTC) - timedelta(minutes=longest))
    if gone:
        log.info("housekeeping: %d ended rate-limit windows forgotten", gone)


def welcome_job() -> None:
    """Send the welcome emails a failed try left owed (speakerfeed.actions.welcomes), each when
    its back-off allows."""
    _context().send_owed_welcomes()


def digest_job(list_name: str, cadence: str = "") -> None:
    """Put the digest of the list's ``cadence`` ("": its own schedule) for the run just due into
    the ledger (the send loops send it)."""
    context = _context()
    settings = context.settings
    label = f"{list_name} ({cadence})" if cadence else list_name
    list_settings = settings.mailing_list(list_name)
    if list_settings is None or cadence not in list_cadences(list_settings):
        log.warning("digest job for %s: no longer in config.toml", label)
        return
    if is_paused(context.engine, list_name):
        log.info("digest job for %s: paused, nothing done", label)
        return
    now = datetime.now(UTC)
    scheduled = last_fire_time(list_trigger(settings, list_settings, cadence), now) or now
    opened = open_send(
        context.engine,
        settings,
        list_settings,
        now=scheduled,
        scheduled_at=scheduled,
        cadence=cadence,
    )
    match opened:
        case Issued(send_id):
            log.info("digest %s recorded for %s; sending", send_id, label)
            context.wake_senders()
        case Unfinished(send_id):
            log.warning("digest job for %s: send %s is unfinished", label, send_id)
            context.wake_senders()
        case Blocked(preview):
            findings = "; ".join(f.message for f in preview.findings if f.severity == "error")
            log.error("digest for %s blocked by the lint: %s", label, findings)
        case NothingNew():
            log.info("digest job for %s: nothing new since the last digest", label)
        case _:
            assert_never(opened)


class SharedEngineJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's SQLAlchemy job store, on the service's own engine, which it must not dispose
    of when the scheduler stops: that would orphan the connections the rest of the process has
    checked out (the PostgreSQL advisory lock's among them), left open until garbage collected."""

    def shutdown(self) -> None:
        pass


def make_scheduler(settings: Settings, engine: Engine) -> BackgroundScheduler:
    """A scheduler (started paused, then resumed) holding exactly the configured jobs."""
    grace = max(1, round(settings.sending.max_lateness_minutes * 60))
    scheduler = BackgroundScheduler(
        jobstores={"default": SharedEngineJobStore(engine=engine, tablename=JOB_TABLE)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
        timezone=UTC,
    )
    scheduler.start(paused=True)
    wanted: dict[str, tuple[Callable[..., Any], Any, list[str]]] = {
        REFRESH_JOB: (
            refresh_job,
            IntervalTrigger(minutes=settings.schedule.refresh_minutes, timezone=UTC),
            [],
        ),
        HOUSEKEEPING_JOB: (housekeeping_job, IntervalTrigger(hours=1, timezone=UTC), []),
        # Every minute: the shortest back-off; a run with nothing due is one small query.
        WELCOME_JOB: (welcome_job, IntervalTrigger(minutes=1, timezone=UTC), []),
    }
    for item in settings.lists:
        for cadence in list_cadences(item):
            wanted[digest_job_id(item.name, cadence)] = (
                digest_job,
                list_trigger(settings, item, cadence),
                # The list's own job keeps the arguments jobs were stored with before cadences.
                [item.name, cadence] if cadence else [item.name],
            )
    for job in scheduler.get_jobs():
        # The embargo job is planned by the builds, not by config.toml: it stays.
        if job.id not in wanted and job.id != EMBARGO_JOB:
            scheduler.remove_job(job.id)
    for job_id, (function, trigger, args) in wanted.items():
        existing = scheduler.get_job(job_id)
        if existing is None:
            scheduler.add_job(function, trigger, args=args, id=job_id, name=job_id)
        elif str(existing.trigger) != str(trigger):
            # A changed schedule starts afresh; an unchanged one keeps its next run time, so a
            # run missed while the service was down still fires (once) now.
            scheduler.reschedule_job(job_id, trigger=trigger)
    scheduler.resume()
    return scheduler
