"""The public web copies of digests and their archive index."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import html as lxml_html

from speakerfeed.config import Settings
from speakerfeed.digest.archive import archived_digests, web_copy, write_digest_archive
from speakerfeed.mail import placeholders
from speakerfeed.models import Digest, RenderedDigest
from tests.render.test_feeds import _article
from tests.support.browser import (
    PageFactory,
    StaticServer,
    assert_no_axe_violations,
    check_skip_link,
    horizontal_overflow,
)
from tests.support.project import make_project

HTML = (
    f"<!doctype html><html lang='en-GB'><body><p>Hello{placeholders.NAME},</p>"
    f"<a href='{placeholders.UNSUBSCRIBE_URL}'>Unsubscribe</a>"
    f"<a href='{placeholders.PREFERENCES_URL}'>Manage preferences</a></body></html>"
)


def _rendered(number: int, subject: str, when: datetime) -> RenderedDigest:
    articles = tuple(_article(n) for n in range(number))
    digest = Digest(
        id=f"daily-{when:%Y-%m-%d-%H%M}",
        list_name="daily",
        list_title="The Speaker Daily",
        articles=articles,
        issued=when,
    )
    return RenderedDigest(digest, subject, "preheader", HTML, "text", "https://x.example/")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_project(
        tmp_path,
        email={"from_address": "The Speaker <d@speakernews.co.uk>"},
        lists=[
            {"name": "daily", "title": "The Speaker Daily"},
            {"name": "weekly", "title": "The Speaker Weekly"},
        ],
    )


def test_web_copy_names_no_one(settings: Settings) -> None:
    page = web_copy(_rendered(2, "S", datetime(2024, 1, 2, 7, tzinfo=UTC)), settings).decode()
    assert "SFMARK" not in page
    assert "<p>Hello,</p>" in page
    assert "http://127.0.0.1:8080/unsubscribe/'" in page  # email.app_url unset: serve's address


def test_archive_lists_every_digest_newest_first(settings: Settings) -> None:
    first = _rendered(2, "Monday's news", datetime(2024, 1, 1, 7, tzinfo=UTC))
    second = _rendered(3, "Tuesday's <news> & more", datetime(2024, 1, 2, 7, tzinfo=UTC))
    write_digest_archive(settings, first)
    written = write_digest_archive(settings, second)
    assert written == [
        "digests/daily/daily-2024-01-02-0700/index.html",
        "digests/daily/daily-2024-01-02-0700/digest.json",
        "digests/index.html",
    ]
    index = (settings.output_dir / "digests" / "index.html").read_bytes()
    doc = lxml_html.document_fromstring(index)
    links = [(a.get("href"), a.text) for a in doc.iterfind(".//main//h3/a")]
    assert links == [
        ("daily/daily-2024-01-02-0700/", "Tuesday's <news> & more"),
        ("daily/daily-2024-01-01-0700/", "Monday's news"),
    ]
    assert b"&lt;news&gt; &amp; more" in index
    assert b"No digest yet." in index  # the weekly list
    record = json.loads(
        (settings.output_dir / second.digest.archive_path / "digest.json").read_text()
    )
    assert record["subject"] == "Tuesday's <news> & more"
    assert len(record["articles"]) == 3
    assert write_digest_archive(settings, second) == []  # nothing changed, nothing rewritten


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 1024])
def test_archive_index_is_accessible(
    settings: Settings, open_page: PageFactory, static_server: object, width: int
) -> None:
    write_digest_archive(settings, _rendered(2, "A digest", datetime(2024, 1, 1, 7, tzinfo=UTC)))
    assert callable(static_server)
    served: StaticServer = static_server(settings.output_dir)
    page = open_page(width=width)
    page.goto(served.url("digests/index.html"))
    assert_no_axe_violations(page)
    assert horizontal_overflow(page) == 0
    check_skip_link(page)


def test_what_archived_digests_held_is_read_back_and_foreign_files_are_not(
    settings: Settings,
) -> None:
    assert archived_digests(settings.output_dir) == []
    for day in (3, 1):
        when = datetime(2024, 1, day, 7, tzinfo=UTC)
        write_digest_archive(settings, _rendered(2, f"Day {day}", when))
    folder = settings.output_dir / "digests" / "daily"
    (folder / "junk").mkdir()
    (folder / "junk" / "digest.json").write_text('{"id": "x", "articles": "no"}', "utf-8")
    (folder / "half").mkdir()
    (folder / "half" / "digest.json").write_text('{"id": "daily-2024', "utf-8")
    found = sorted(archived_digests(settings.output_dir), key=lambda past: past.issued)
    assert [past.digest_id for past in found] == ["daily-2024-01-01-0700", "daily-2024-01-03-0700"]
    first = found[0]
    assert (first.list_name, first.cadence) == ("daily", "")
    assert first.issued == datetime(2024, 1, 1, 7, tzinfo=UTC)
    assert len(first.article_ids) == 2 and all(first.article_ids)


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 600])
def test_the_web_copy_of_a_real_digest_is_accessible(
    settings: Settings, open_page: PageFactory, static_server: object, width: int
) -> None:
    from speakerfeed.render.email import render_digest

    list_settings = settings.lists[0]
    digest = Digest(
        id="daily-2024-01-02-0700",
        list_name="daily",
        list_title=list_settings.title,
        articles=tuple(_article(n) for n in range(3)),
        issued=datetime(2024, 1, 2, 7, tzinfo=UTC),
    )
    rendered = render_digest(settings, list_settings, digest)
    write_digest_archive(settings, rendered)
    assert callable(static_server)
    served: StaticServer = static_server(settings.output_dir)
    page = open_page(width=width)
    page.goto(served.url(digest.archive_path))
    assert page.locator("main#main h2").count() == 3
    assert "SFMARK" not in page.content()
    assert_no_axe_violations(page)
    assert horizontal_overflow(page) == 0
    check_skip_link(page)
