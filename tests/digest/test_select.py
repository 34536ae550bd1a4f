"""Choosing a digest's articles."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from speakerfeed.config import ListSettings
from speakerfeed.digest.select import candidates, digest_id, next_digest, select_articles
from speakerfeed.errors import ConfigError
from speakerfeed.models import Article
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


def ids(articles: tuple[Article, ...] | list[Article]) -> list[str]:
    return [a.title.split()[1] for a in articles]


def test_a_first_digest_holds_the_newest_whatever_their_age() -> None:
    years_later = NOW + timedelta(days=800)
    chosen = select_articles(ARTICLES, DAILY, now=years_later, included=None)
    assert ids(chosen) == ["9", "8", "7"]
    # Once the list has had a digest, articles older than max_age_days are never sent.
    assert select_articles(ARTICLES, DAILY, now=years_later, included=frozenset()) == ()


def test_articles_already_in_a_digest_are_left_out_whatever_their_date() -> None:
    held = {ARTICLES[9].id, ARTICLES[7].id}
    chosen = select_articles(ARTICLES, DAILY, now=NOW, included=held)
    # The backdated article 6 comes after 8 as ever: what counts is whether it was held.
    assert ids(chosen) == ["8", "6", "5"]


def test_articles_older_than_max_age_days_are_not_candidates() -> None:
    week = DAILY.model_copy(update={"max_age_days": 2})
    now = ARTICLES[5].published + timedelta(days=2)
    assert ids(candidates(ARTICLES, week, now=now)) == ["9", "8", "7", "6", "5"]
    assert ids(select_articles(ARTICLES, week, now=now, included=frozenset())) == ["9", "8", "7"]
    assert DAILY.max_age_days == 7  # the default


def test_articles_scheduled_for_later_wait() -> None:
    until = ARTICLES[4].published
    chosen = select_articles(ARTICLES, DAILY, now=until, included=None)
    assert chosen[0].id == ARTICLES[4].id
    assert ids(candidates(ARTICLES, DAILY, now=until)) == ["4", "3", "2", "1", "0"]


def test_tags_filter_without_regard_to_case_and_drafts_never_go_out() -> None:
    articles = [*ARTICLES, replace(ARTICLES[1], id="draft", draft=True)]
    for included in (None, frozenset[str]()):
        chosen = select_articles(articles, POLITICS, now=NOW, included=included)
        assert chosen
        assert all("politics" in a.tags for a in chosen)
        assert "draft" not in {a.id for a in chosen}


def test_no_digest_when_nothing_is_new_unless_the_list_says_so() -> None:
    later = NOW + timedelta(days=1)
    every = {a.id for a in ARTICLES}
    assert next_digest(SETTINGS, DAILY, ARTICLES, included=every, now=later) is None
    empty = next_digest(SETTINGS, ALWAYS, ARTICLES, included=every, now=later)
    assert empty is not None
    assert empty.articles == ()


def test_digest_is_issued_in_the_list_time_zone() -> None:
    digest = next_digest(
        SETTINGS, DAILY, ARTICLES, included=None, now=datetime(2023, 7, 1, 6, tzinfo=UTC)
    )
    assert digest is not None
    assert digest.issued.utcoffset() == timedelta(hours=1)  # Europe/London in summer
    assert digest.id == "daily-2023-07-01-0700"
    assert digest.archive_path == "digests/daily/daily-2023-07-01-0700/"


def test_digest_id_is_url_safe() -> None:
    assert digest_id(ListSettings(name="a-b", title="T"), NOW) == "a-b-2023-01-03-1200"


def test_a_bad_max_age_days_is_reported_naming_the_list_and_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        project_settings(lists=[{"name": "daily", "title": "Daily", "max_age_days": 0}])
    message = str(caught.value)
    assert "max_age_days" in message and "lists" in message and "1" in message, message
