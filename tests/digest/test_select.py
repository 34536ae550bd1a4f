"""Choosing a digest's articles."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from speakerfeed.config import ListSettings
from speakerfeed.digest.select import digest_id, next_digest, select_articles
from tests.render.test_feeds import _article
from tests.support.project import project_settings

SETTINGS = project_settings(
    email={"from_address": "The Speaker <digest@example.org>"},
    lists=[
        {"name": "daily", "title": "Daily", "max_items": 3},
        {"name": "politics", "title": "Politics", "tags": ["Politics"]},
        {"name": "always", "title": "Always", "send_when_empty": True},
    ],
)
DAILY, POLITICS, ALWAYS = SETTINGS.lists
NOW = datetime(2023, 1, 3, 12, tzinfo=UTC)
ARTICLES = [_article(n) for n in range(10)]  # hourly from 2023-01-01 09:00 UTC


def test_newest_first_cut_at_the_maximum() -> None:
    chosen = select_articles(ARTICLES, DAILY, since=None, until=NOW)
    assert [a.title.split()[1] for a in chosen] == ["9", "8", "7"]


def test_only_articles_since_the_last_digest() -> None:
    since = ARTICLES[7].published
    chosen = select_articles(ARTICLES, DAILY, since=since, until=NOW)
    assert [a.id for a in chosen] == [ARTICLES[9].id, ARTICLES[8].id]


def test_articles_scheduled_for_later_wait() -> None:
    until = ARTICLES[4].published
    chosen = select_articles(ARTICLES, DAILY, since=None, until=until)
    assert chosen[0].id == ARTICLES[4].id


def test_tags_filter_without_regard_to_case_and_drafts_never_go_out() -> None:
    articles = [*ARTICLES, replace(ARTICLES[1], id="draft", draft=True)]
    chosen = select_articles(articles, POLITICS, since=None, until=NOW)
    assert chosen
    assert all("politics" in a.tags for a in chosen)
    assert "draft" not in {a.id for a in chosen}


def test_no_digest_when_nothing_is_new_unless_the_list_says_so() -> None:
    later = NOW + timedelta(days=1)
    assert next_digest(SETTINGS, DAILY, ARTICLES, since=NOW, now=later) is None
    empty = next_digest(SETTINGS, ALWAYS, ARTICLES, since=NOW, now=later)
    assert empty is not None
    assert empty.articles == ()


def test_digest_is_issued_in_the_list_time_zone() -> None:
    digest = next_digest(
        SETTINGS, DAILY, ARTICLES, since=None, now=datetime(2023, 7, 1, 6, tzinfo=UTC)
    )
    assert digest is not None
    assert digest.issued.utcoffset() == timedelta(hours=1)  # Europe/London in summer
    assert digest.id == "daily-2023-07-01-0700"
    assert digest.archive_path == "digests/daily/daily-2023-07-01-0700/"


def test_digest_id_is_url_safe() -> None:
    assert digest_id(ListSettings(name="a-b", title="T"), NOW) == "a-b-2023-01-03-1200"
