"""Which articles go into a list's next digest: pure functions, no I/O.

A digest holds the articles published since the list's last successful digest, newest first,
filtered by the list's tags and cut at its maximum. When nothing is new there is no digest, unless
the list says to send anyway.

A list may also have cadences: other schedules its readers may choose. Each cadence has digests
of its own, with ids of their own, and each starts after that cadence's last digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from speakerfeed.config import ListSettings, Settings
from speakerfeed.errors import ConfigError, Problem
from speakerfeed.models import Article, Digest

OWN_SCHEDULE = ""  # the cadence of a list's own schedule


def list_zone(settings: Settings, list_settings: ListSettings) -> ZoneInfo:
    return ZoneInfo(list_settings.timezone or settings.site.timezone)


def list_cadences(list_settings: ListSettings) -> tuple[str, ...]:
    """Every cadence the list is sent on: its own schedule first, then its named cadences."""
    return (OWN_SCHEDULE, *list_settings.cadences)


def cadence_schedule(list_settings: ListSettings, cadence: str = OWN_SCHEDULE) -> str:
    """The crontab line of the list's ``cadence``; a ConfigError naming the list's cadences when
    it has no such cadence."""
    if cadence == OWN_SCHEDULE:
        return list_settings.schedule
    line = list_settings.cadences.get(cadence)
    if line is None:
        known = ", ".join(list_settings.cadences) or "none are defined"
        message = f"list {list_settings.name!r} has no cadence {cadence!r} (cadences: {known})"
        raise ConfigError([Problem("lists", message)])
    return line


def select_articles(
    articles: Sequence[Article],
    list_settings: ListSettings,
    *,
    since: datetime | None,
    until: datetime,
) -> tuple[Article, ...]:
    """Articles for the list published after ``since`` (all, the first time) and not after
    ``until`` (an article scheduled for later waits), newest first."""
    wanted = {tag.casefold() for tag in list_settings.tags}
    chosen = [
        article
        for article in articles
        if (since is None or article.published > since)
        and article.published <= until
        and not article.draft
        and (not wanted or any(tag.casefold() in wanted for tag in article.tags))
    ]
    chosen.sort(key=lambda article: (article.published, article.id), reverse=True)
    return tuple(chosen[: list_settings.max_items])


def digest_id(list_settings: ListSettings, issued: datetime, cadence: str = OWN_SCHEDULE) -> str:
    """Unique per list, cadence and minute, readable, and safe in a URL path."""
    prefix = f"{list_settings.name}-{cadence}" if cadence else list_settings.name
    return f"{prefix}-{issued:%Y-%m-%d-%H%M}"


def next_digest(
    settings: Settings,
    list_settings: ListSettings,
    articles: Sequence[Article],
    *,
    since: datetime | None,
    now: datetime,
    cadence: str = OWN_SCHEDULE,
) -> Digest | None:
    """The next digest of the list's ``cadence`` as of ``now``, or None when there is nothing to
    send. ``since`` is when that cadence's last digest was issued."""
    cadence_schedule(list_settings, cadence)  # an unknown cadence is refused
    chosen = select_articles(articles, list_settings, since=since, until=now)
    if not chosen and not list_settings.send_when_empty:
        return None
    issued = now.astimezone(list_zone(settings, list_settings))
    return Digest(
        id=digest_id(list_settings, issued, cadence),
        list_name=list_settings.name,
        list_title=list_settings.title,
        articles=chosen,
        issued=issued,
        cadence=cadence,
    )
