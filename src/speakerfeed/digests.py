"""Which articles go into a list's next digest: pure functions, no I/O.

A digest holds the articles published since the list's last successful digest, newest first,
filtered by the list's tags and cut at its maximum. When nothing is new there is no digest, unless
the list says to send anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from speakerfeed.config import ListSettings, Settings
from speakerfeed.models import Article, Digest


def list_zone(settings: Settings, list_settings: ListSettings) -> ZoneInfo:
    return ZoneInfo(list_settings.timezone or settings.site.timezone)


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


def digest_id(list_settings: ListSettings, issued: datetime) -> str:
    """Unique per list and minute, readable, and safe in a URL path."""
    return f"{list_settings.name}-{issued:%Y-%m-%d-%H%M}"


def next_digest(
    settings: Settings,
    list_settings: ListSettings,
    articles: Sequence[Article],
    *,
    since: datetime | None,
    now: datetime,
) -> Digest | None:
    """The list's next digest as of ``now``, or None when there is nothing to send."""
    chosen = select_articles(articles, list_settings, since=since, until=now)
    if not chosen and not list_settings.send_when_empty:
        return None
    issued = now.astimezone(list_zone(settings, list_settings))
    return Digest(
        id=digest_id(list_settings, issued),
        list_name=list_settings.name,
        list_title=list_settings.title,
        articles=chosen,
        issued=issued,
    )
