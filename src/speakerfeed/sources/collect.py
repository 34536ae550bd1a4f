"""Merge articles from every source into one list: published only, one per id, newest first,
and none before its time (the embargo).

Pure functions: no I/O and no clock of their own (the time is passed in), so the rules are easy
to test and to reason about.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from speakerfeed.errors import Problem
from speakerfeed.models import Article

# What a build asks for the time: injectable, so that tests (and a preview of tomorrow) need not
# patch datetime.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def is_visible(article: Article, now: datetime) -> bool:
    """The one rule for "published yet": an article dated in the future is embargoed until then."""
    return article.published <= now


@dataclass(slots=True)
class Collected:
    articles: list[Article] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    drafts: int = 0
    embargoed: list[Article] = field(default_factory=list)  # soonest first


def collect(*sources: Iterable[Article], now: datetime | None = None) -> Collected:
    """Drafts out; the first article with an id or a URL wins and the repeat is reported; with
    ``now``, articles dated after it are held back in ``embargoed``.

    Embargoed articles still take part in the duplicate check, so that a clash is reported
    before their time, not when they are published."""
    result = Collected()
    by_id: dict[str, Article] = {}
    by_url: dict[str, Article] = {}
    for article in (a for source in sources for a in source):
        if article.draft:
            result.drafts += 1
            continue
        earlier = by_id.get(article.id) or by_url.get(article.url)
        if earlier is not None:
            what = "id" if earlier.id == article.id else "URL"
            value = article.id if what == "id" else article.url
            result.problems.append(
                Problem(article.source, f"same {what} as {earlier.source} ({value}); left out")
            )
            continue
        by_id[article.id] = article
        by_url[article.url] = article
        if now is None or is_visible(article, now):
            result.articles.append(article)
        else:
            result.embargoed.append(article)
    result.articles.sort(key=lambda a: (a.published, a.id), reverse=True)
    result.embargoed.sort(key=lambda a: (a.published, a.id))
    return result
