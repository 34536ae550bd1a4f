"""Which articles go into a list's next digest: pure functions, no I/O.

A digest holds the list's published articles (by its tags) that no earlier digest of the list
held and that are not older than its ``max_age_days``, newest first, cut at its ``max_items``;
its first digest holds its newest articles whatever their age. Which articles earlier digests
held is the store's record (store.inclusions), passed in. When nothing is new there is no
digest, unless the list says to send anyway.

A list may also have cadences: other schedules its readers may choose. Each cadence has digests
of its own, with ids of their own, and a record of its own of what they held.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from datetime import UTC, datetime, timedelta
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


def candidates(
    articles: Sequence[Article], list_settings: ListSettings, *, now: datetime
) -> list[Article]:
    """The list's articles that a digest as of ``now`` may hold, if no digest held them yet:
    published (not a draft, not after ``now``: an embargoed article waits), with one of the
    list's tags, and not older than its ``max_age_days``; newest first."""
    try:
        oldest = now - timedelta(days=list_settings.max_age_days)
    except OverflowError:  # a clock near year 1 (a test's, a preview's): nothing is too old
        oldest = datetime.min.replace(tzinfo=UTC)
    published = _published(articles, list_settings, now)
    return [article for article in published if article.published >= oldest]


def select_articles(
    articles: Sequence[Article],
    list_settings: ListSettings,
    *,
    now: datetime,
    included: Container[str] | None,
) -> tuple[Article, ...]:
    """The articles of the list's next digest as of ``now``, newest first, at most its
    ``max_items``: the candidates not ``included`` in an earlier digest of its cadence; or, for
    its first digest (``included`` None), its newest articles whatever their age."""
    if included is None:
        chosen = _published(articles, list_settings, now)
    else:
        chosen = [a for a in candidates(articles, list_settings, now=now) if a.id not in included]
    return tuple(chosen[: list_settings.max_items])


def _published(
    articles: Sequence[Article], list_settings: ListSettings, now: datetime
) -> list[Article]:
    wanted = {tag.casefold() for tag in list_settings.tags}
    chosen = [
        article
        for article in articles
        if article.published <= now
        and not article.draft
        and (not wanted or any(tag.casefold() in wanted for tag in article.tags))
    ]
    chosen.sort(key=lambda article: (article.published, article.id), reverse=True)
    return chosen


def digest_id(list_settings: ListSettings, issued: datetime, cadence: str = OWN_SCHEDULE) -> str:
    """Unique per list, cadence and minute, readable, and safe in a URL path."""
    prefix = f"{list_settings.name}-{cadence}" if cadence else list_settings.name
    return f"{prefix}-{issued:%Y-%m-%d-%H%M}"


def next_digest(
    settings: Settings,
    list_settings: ListSettings,
    articles: Sequence[Article],
    *,
    included: Container[str] | None,
    now: datetime,
    cadence: str = OWN_SCHEDULE,
) -> Digest | None:
    """The next digest of the list's ``cadence`` as of ``now``, or None when there is nothing to
    send. ``included``: the articles already in one of that cadence's digests (None: it has had
    none, and this is its first)."""
    cadence_schedule(list_settings, cadence)  # an unknown cadence is refused
    chosen = select_articles(articles, list_settings, now=now, included=included)
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
