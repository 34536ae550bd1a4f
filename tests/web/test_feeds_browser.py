"""A feed opened in Chromium, as a person does: through the app (`serve` negotiates on Accept) and
as the static files nginx or a CDN serves (rss.html beside rss.xml). A readable page with the
feed's items, dates and summaries, its address to copy and its other formats; no XSLT and so no
deprecation banner; axe finds nothing at 375 and 1280 px; the skip link works; no JavaScript."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from playwright.sync_api import Browser
from sqlalchemy import create_engine

from speakerfeed.feeds.build import Builder
from speakerfeed.web.app import create_app
from tests.support.asgi_server import running
from tests.support.browser import (
    PageFactory,
    StaticServer,
    assert_no_axe_violations,
    check_skip_link,
    horizontal_overflow,
)
from tests.support.feedcheck import ATOM, HTML_DATETIME
from tests.support.project import make_project, markdown_article

REPOSITORY = Path(__file__).resolve().parents[2]
FEEDS_URL = "https://www.speakernews.co.uk/feeds/"
BANNER = "xslt-warning-banner"  # what Chromium 156 paints over a feed styled by XSLT
HOSTILE_TITLE = 'Breaking: <script>alert("title")</script> Tom &amp; Jerry'
LONG_WORD = "Supercalifragilisticexpialidocious" * 4

# path opened -> (the feed file it stands for, the page file beside it)
FEEDS = {
    "/rss.xml": ("rss.xml", "rss.html"),
    "/atom.xml": ("atom.xml", "atom.html"),
    "/feed.json": ("feed.json", "feed.html"),
    "/tags/politics/rss.xml": ("tags/politics/rss.xml", "tags/politics/rss.html"),
    "/tags/politics/atom.xml": ("tags/politics/atom.xml", "tags/politics/atom.html"),
}


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's articles plus messy ones (markup in titles, an unbroken long word, a
    summary with ampersands and angle brackets), built by the real build."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPOSITORY / "articles", root / "articles")
    messy = {
        "hostile.md": markdown_article(
            HOSTILE_TITLE,
            "2026-03-04 09:30:15.123456",
            "Rates & taxes: a < b, c > d. <img src=x onerror=alert(1)>",
            tags="[politics]",
            summary="'Rates & taxes: a < b, c > d <img src=x onerror=alert(1)>'",
        ),
        "long.md": markdown_article(
            f"{LONG_WORD} and a headline that goes on past every line end",
            "2026-03-03 08:00",
            f"{LONG_WORD} {LONG_WORD}",
            tags="[politics, long reads]",
        ),
    }
    for name, text in messy.items():
        (root / "articles" / name).write_text(text, encoding="utf-8")
    settings = make_project(root, feeds={"items": 5})
    report = Builder(settings, fetch_upstreams=False).build()
    assert report.errors == [], report.errors
    return settings.output_dir


@pytest.fixture(scope="module")
def app_url(public: Path) -> Iterator[str]:
    """The real app (create_app: readers' pages, then the output folder), under uvicorn."""
    settings = make_project(public.parent)
    app = create_app(
        settings,
        engine=create_engine("sqlite://"),
        secret=b"feed-pages-browser-test-secret-key",
        transport=lambda: pytest.fail("no mail is sent here"),
    )
    with running(app) as url:
        yield url


def _feed_items(public: Path, feed: str) -> list[str]:
    """The titles in the feed document, newest first, read from the feed itself."""
    data = (public / feed).read_bytes()
    if feed.endswith(".json"):
        return [item["title"] for item in json.loads(data)["items"]]
    root = etree.fromstring(data)
    if root.tag == f"{ATOM}feed":
        return [e.findtext(f"{ATOM}title") or "" for e in root.findall(f"{ATOM}entry")]
    return [item.findtext("title") or "" for item in root.iter("item")]


def _open(
    open_page: PageFactory,
    url: str,
    width: int,
    scheme: str = "light",
) -> Any:
    page = open_page(width=width, color_scheme="dark" if scheme == "dark" else "light")
    response = page.goto(url)
    assert response is not None and response.ok, url
    assert response.headers["content-type"] == "text/html; charset=utf-8", url
    return page


def _assert_readable_feed_page(page: Any, public: Path, feed: str) -> None:
    titles = _feed_items(public, feed)
    assert titles, f"{feed} has no items to show"
    assert page.locator(BANNER).count() == 0
    assert page.evaluate("() => document.querySelectorAll('script').length") == 0
    assert page.locator("html").get_attribute("lang") == "en-GB"
    h1 = page.locator("h1").inner_text()
    assert h1 == ("The Speaker" if "/" not in feed else "politics")
    assert page.title().startswith("The Speaker")
    # The items as the feed holds them, each with its date and (where it has one) summary.
    shown = page.locator("main article h3").all_inner_texts()
    assert shown == titles
    datetimes = page.locator("main article time").evaluate_all(
        "els => els.map(e => e.getAttribute('datetime'))"
    )
    assert len(datetimes) == len(titles)
    for value in datetimes:
        assert HTML_DATETIME.match(value) and "." not in value, value
    # The address to copy is the feed's own, in a labelled field; the other formats are links.
    field = page.get_by_label(re.compile(r"^Feed address"))
    assert field.input_value() == FEEDS_URL + feed
    assert field.get_attribute("readonly") is not None
    others = page.locator("main ul.formats a").evaluate_all("els => els.map(e => e.href)")
    assert len(others) == 2 and FEEDS_URL + feed not in others
    assert page.locator("head link[rel=alternate]").count() == 3


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("path", list(FEEDS))
def test_a_feed_opened_through_the_app_is_a_readable_accessible_page(
    open_page: PageFactory, public: Path, app_url: str, path: str, width: int
) -> None:
    feed, _ = FEEDS[path]
    page = _open(open_page, app_url + path, width)
    assert page.url == app_url + path  # the feed's own address: no redirect
    _assert_readable_feed_page(page, public, feed)
    assert_no_axe_violations(page)
    assert horizontal_overflow(page) == 0
    check_skip_link(page)
    assert open_page.errors == [] and open_page.dialogs == []


@pytest.mark.browser
@pytest.mark.parametrize(("width", "scheme"), [(375, "light"), (1280, "dark")])
@pytest.mark.parametrize("path", ["/rss.xml", "/feed.json", "/tags/politics/atom.xml"])
def test_the_static_page_beside_the_feed_is_the_same_page(
    open_page: PageFactory,
    public: Path,
    static_server: Callable[[Path], StaticServer],
    path: str,
    width: int,
    scheme: str,
) -> None:
    """What nginx or a CDN serves for a browser (the README's rule): the file beside the feed."""
    feed, page_file = FEEDS[path]
    page = _open(open_page, static_server(public).url(page_file), width, scheme)
    _assert_readable_feed_page(page, public, feed)
    assert_no_axe_violations(page)
    assert horizontal_overflow(page) == 0
    check_skip_link(page)
    # Its relative link to the feeds index works from the folder it sits in.
    index = page.get_by_role("link", name="All feeds of The Speaker")
    assert page.request.get(index.evaluate("a => a.href")).ok


@pytest.mark.browser
def test_hostile_text_is_shown_as_written_and_nothing_runs(
    open_page: PageFactory, public: Path, app_url: str
) -> None:
    page = _open(open_page, app_url + "/tags/politics/rss.xml", 375)
    headings = page.locator("main article h3")
    assert HOSTILE_TITLE in headings.all_inner_texts()
    assert page.evaluate("() => document.querySelectorAll('main img, main script').length") == 0
    summaries = page.locator("main article").all_inner_texts()
    assert any("Rates & taxes: a < b, c > d" in text for text in summaries)
    page.wait_for_timeout(100)
    assert open_page.dialogs == [] and open_page.errors == []
    assert horizontal_overflow(page) == 0  # the unbroken long word wraps


@pytest.mark.browser
def test_the_page_works_without_javascript(chromium: Browser, public: Path, app_url: str) -> None:
    context = chromium.new_context(
        java_script_enabled=False, viewport={"width": 375, "height": 800}
    )
    try:
        page = context.new_page()
        response = page.goto(app_url + "/atom.xml")
        assert response is not None and response.ok
        assert page.locator("main article").count() == len(_feed_items(public, "atom.xml"))
        assert page.get_by_label(re.compile(r"^Feed address")).input_value() == (
            FEEDS_URL + "atom.xml"
        )
        # The field can be focused and its address selected with the keyboard alone.
        page.keyboard.press("Tab")  # the skip link
        page.get_by_label(re.compile(r"^Feed address")).focus()
        page.keyboard.press("Control+A")
        assert page.evaluate("() => document.activeElement.id") == "feed-url"
    finally:
        context.close()
