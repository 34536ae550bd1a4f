"""The lists' digest schedules as an editor sees and steers them: each digest job with its
crontab and next run, and pausing or resuming a list's (its cadences' too).

A list has one job for its own schedule (``digest:<list>``) and one per cadence
(``digest:<list>:<cadence>``), each on its crontab in the list's time zone; the scheduler
(speakerfeed.schedule) runs these same jobs and skips a paused list's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.triggers.cron import CronTrigger

from speakerfeed.actions.database import Store
from speakerfeed.config import ListSettings, Settings
from speakerfeed.config.crontab import crontab_trigger
from speakerfeed.digest.select import cadence_schedule, list_cadences, list_zone
from speakerfeed.store.schedules import is_paused, set_paused


def digest_job_id(list_name: str, cadence: str = "") -> str:
    """The scheduler's id of the list's ``cadence`` job ("": its own schedule)."""
    return f"digest:{list_name}:{cadence}" if cadence else f"digest:{list_name}"


def list_trigger(settings: Settings, list_settings: ListSettings, cadence: str = "") -> CronTrigger:
    """The crontab of the list's ``cadence`` ("": its own schedule), in the list's time zone."""
    line = cadence_schedule(list_settings, cadence)
    return crontab_trigger(line, list_zone(settings, list_settings))


@dataclass(frozen=True, slots=True)
class PlannedRun:
    job: str
    schedule: str
    zone: str
    next_run: datetime | None  # in the list's own time zone
    paused: bool


def list_schedules(
    settings: Settings, store: Store, *, now: datetime | None = None
) -> list[PlannedRun]:
    """Each list's jobs (its own schedule, then each cadence) and their next runs in the list's
    own time zone."""
    now = now or datetime.now(UTC)
    runs = []
    for item in settings.lists:
        zone = list_zone(settings, item)
        paused = is_paused(store.engine, item.name)  # a list's pause holds its cadences too
        for cadence in list_cadences(item):
            upcoming = list_trigger(settings, item, cadence).get_next_fire_time(None, now)
            runs.append(
                PlannedRun(
                    job=digest_job_id(item.name, cadence),
                    schedule=cadence_schedule(item, cadence),
                    zone=str(zone),
                    next_run=upcoming.astimezone(zone) if upcoming else None,
                    paused=paused,
                )
            )
    return runs


@dataclass(frozen=True, slots=True)
class ScheduleState:
    list_name: str
    paused: bool
    cadences: tuple[str, ...]  # the list's cadences, paused or resumed with it


def pause_schedule(settings: Settings, store: Store, list_name: str) -> ScheduleState:
    """Stop the list's scheduled digests, its cadences' too, until ``resume_schedule``: at
    once, in every process."""
    return _set_paused(settings, store, list_name, True)


def resume_schedule(settings: Settings, store: Store, list_name: str) -> ScheduleState:
    """Let the list's scheduled digests (its cadences' too) go out again, from the next
    scheduled time."""
    return _set_paused(settings, store, list_name, False)


def _set_paused(settings: Settings, store: Store, list_name: str, paused: bool) -> ScheduleState:
    cadences = tuple(settings.require_list(list_name).cadences)
    set_paused(store.engine, list_name, paused)
    return ScheduleState(list_name, paused, cadences)
