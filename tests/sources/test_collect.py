"""collect(): drafts out, one article per id and URL, newest first, and the embargo's one rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from speakerfeed.models import Article
from speakerfeed.sources.collect import collect, is_visible

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC)  # a second before the clocks go forward


def _article(name: str, published: datetime, *, draft: bool = False, **extra: str) -> Article:
    return Article(
        id=extra.get("id", f"tag:www.speakernews.co.uk,2026:{name}"),
        title=name.title(),
        url=extra.get("url", f"https://www.speakernews.co.uk/{name}/"),
        published=published,
        content_html="<p>Text.</p>",
        summary="Text.",
        source=f"{name}.md",
        slug=name,
        draft=draft,
    )


def test_an_article_is_visible_from_its_moment_in_any_zone() -> None:
    at_two_bst = _article("spring", datetime(2026, 3, 29, 2, 0, tzinfo=LONDON))  # 01:00 UTC
    assert not is_visible(at_two_bst, NOW)
    assert is_visible(at_two_bst, NOW + timedelta(seconds=1))


def test_future_articles_are_held_back_soonest_first_and_still_checked() -> None:
    past = _article("past", NOW - timedelta(days=2))
    later = _article("later", NOW + timedelta(days=3))
    sooner = _article("sooner", NOW + timedelta(minutes=5))
    clash = _article("clash", NOW - timedelta(days=1), id=later.id)
    future_draft = _article("draft", NOW + timedelta(hours=1), draft=True)
    result = collect([past, later, sooner], [clash, future_draft], now=NOW)
    assert result.articles == [past]
    assert result.embargoed == [sooner, later]
    assert result.drafts == 1  # a draft is a draft, whatever its date
    # The clash with an embargoed article is reported now, not when it is published.
    assert [str(p) for p in result.problems] == [
        f"clash.md: same id as later.md ({later.id}); left out"
    ]
    # Without a time (a caller that filters by its own), nothing is held back.
    assert collect([past, later, sooner]).articles == [later, sooner, past]
