"""Crontab lines as APScheduler triggers, with cron's own meaning of the day of the week.

APScheduler 3 counts days of the week from Monday (0) where cron counts from Sunday (0 or 7),
so ``CronTrigger.from_crontab("0 8 * * 6")`` fires on Sundays, not on Saturdays as a crontab
line says. Numbers in the day-of-week field are turned into day names first. A line may also
have six fields, seconds first ("30 0 7 * * *"), for schedules finer than a minute.
"""

from __future__ import annotations

import re

from apscheduler.triggers.cron import CronTrigger

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# A number in the day-of-week field that is a day (not the step after "/").
_DAY_NUMBER = re.compile(r"(?<![/\d])\d+")


def cron_days(field: str) -> str:
    """The day-of-week field with cron's day numbers (0 or 7 Sunday ... 6 Saturday) as names."""

    def name(match: re.Match[str]) -> str:
        number = int(match.group())
        if number > 7:
            raise ValueError(f"day of week {number} is out of range (0-7, 0 and 7 are Sunday)")
        return _DAY_NAMES[number % 7]

    return _DAY_NUMBER.sub(name, field)


def crontab_trigger(line: str, timezone: object) -> CronTrigger:
    """The trigger of a five-field crontab line (or six, seconds first); ValueError if invalid."""
    fields = line.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ValueError(f"expected 5 fields (min hour dom mon dow), got {len(fields)}")
    second, minute, hour, day, month, day_of_week = fields
    return CronTrigger(
        second=second,
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=cron_days(day_of_week),
        timezone=timezone,
    )
