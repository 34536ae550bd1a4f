"""Merge articles from every source into one list: published only, one per id, newest first.

Pure functions: no I/O, so the rules are easy to test and to reason about.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from speakerfeed.errors import Problem
from speakerfeed.models import Article


@dataclass(slots=True)
class Collected:
    articles: list[Article] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    drafts: int = 0


def collect(*sources: Iterable[Article]) -> Collected:
    """Drafts out; the first article with an id or a URL wins and the repeat is reported."""
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
        result.articles.append(article)
    result.articles.sort(key=lambda a: (a.published, a.id), reverse=True)
    return result
