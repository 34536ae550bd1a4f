"""The feeds index page: accessible, keyboard-usable, escaped and narrow-screen safe, in Chromium
and as parsed HTML. (Each feed's own page, which replaced the XSL stylesheet, is tested in
tests/web/test_feeds_browser.py.)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from lxml import html

from speakerfeed.feeds.build import Builder
from speakerfeed.render.pages import (
    FeedSetLink,
    render_feeds_index,
    text_direction,
)
from tests.support.browser import (
    PageFactory,
    StaticServer,
    assert_no_axe_violations,
    check_skip_link,
    horizontal_overflow,
)
from tests.support.project import make_project, project_settings

REPOSITORY = Path(__file__).resolve().parents[2]
LONG_WORD = "Supercalifragilisticexpialidocious" * 4

VIEWS = [
    pytest.param(375, "light", id="375-light"),
    pytest.param(1024, "light", id="1024-light"),
    pytest.param(375, "dark", id="375-dark"),
    pytest.param(1024, "dark", id="1024-dark"),
]


def feed_set_links() -> list[FeedSetLink]:
    return [
        FeedSetLink("The Speaker", ""),
        FeedSetLink("The Speaker: politics", "tags/politics/"),
        FeedSetLink("The Speaker: <b>hostile</b> &amp; co", "tags/hostile/"),
        FeedSetLink(f"The Speaker: {LONG_WORD}", "tags/long-reads/"),
    ]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("public")
    index = render_feeds_index(project_settings(), feed_set_links())
    (root / "index.html").write_bytes(index)
    return root


@pytest.fixture
def served(site: Path, static_server: Callable[[Path], StaticServer]) -> StaticServer:
    return static_server(site)


# ------------------------------------------------------------------------------ browser helpers


def _open(open_page: PageFactory, url: str, width: int, scheme: str = "light") -> Any:
    page = open_page(width=width, color_scheme="dark" if scheme == "dark" else "light")
    response = page.goto(url)
    assert response is not None and response.ok, f"{url}: {response and response.status}"
    return page


# ------------------------------------------------------------------------------ browser tests


@pytest.mark.browser
@pytest.mark.parametrize(("width", "scheme"), VIEWS)
def test_index_page_is_accessible(
    open_page: PageFactory, served: StaticServer, width: int, scheme: str
) -> None:
    page = _open(open_page, served.url("index.html"), width, scheme)
    assert page.title() == "Feeds – The Speaker"
    assert page.locator("main a[href='rss.xml']").count() == 1
    assert_no_axe_violations(page)
    assert horizontal_overflow(page) == 0
    check_skip_link(page)
    assert open_page.errors == [] and open_page.dialogs == []


@pytest.mark.browser
def test_index_page_with_long_and_hostile_titles_fits_375(
    open_page: PageFactory, served: StaticServer
) -> None:
    page = _open(open_page, served.url("index.html"), 375)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    assert page.get_by_role("heading", name="<b>hostile</b> &amp; co").count() == 1
    assert page.evaluate("() => document.querySelectorAll('main b, script').length") == 0


# --------------------------------------------------------------------- the real build's output


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's articles built by the real build, two items a page so archives exist."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPOSITORY / "articles", root / "articles")
    settings = make_project(root, feeds={"items": 2})
    report = Builder(settings, fetch_upstreams=False).build()
    assert report.errors == [], report.errors
    return settings.output_dir


@pytest.mark.browser
def test_built_index_links_to_every_feed(
    open_page: PageFactory, static_server: Callable[[Path], StaticServer], built_site: Path
) -> None:
    server = static_server(built_site)
    page = _open(open_page, server.url("index.html"), 375)
    hrefs = page.eval_on_selector_all(
        "link[rel=alternate], main a[type]", "els => els.map(e => e.href)"
    )
    feed_sets = 1 + len(list((built_site / "tags").iterdir()))  # the main feed and each tag's
    assert len(hrefs) == 2 * 3 * feed_sets  # each format: in <head> and in the page
    for href in hrefs:
        response = page.request.get(href)
        assert response.ok, href
    assert_no_axe_violations(page)
    check_skip_link(page)


# ------------------------------------------------------------------------------ the index page


def _index_tree(links: Sequence[FeedSetLink] | None = None, **site: Any) -> Any:
    settings = project_settings(site=site) if site else project_settings()
    data = render_feeds_index(settings, feed_set_links() if links is None else links)
    return _parse_html(data)


def _parse_html(data: bytes) -> Any:
    return html.document_fromstring(data)


def test_index_has_autodiscovery_links_for_every_feed() -> None:
    tree = _index_tree()
    links = tree.xpath("/html/head/link[@rel='alternate']")
    found = [(link.get("type"), link.get("href"), link.get("title")) for link in links]
    formats = (
        ("application/rss+xml", "rss.xml", "RSS"),
        ("application/atom+xml", "atom.xml", "Atom"),
        ("application/feed+json", "feed.json", "JSON Feed"),
    )
    assert found == [
        (media_type, f"{feed.path}{filename}", f"{feed.title} ({label})")
        for feed in feed_set_links()
        for media_type, filename, label in formats
    ]
    # The same documents are linked from the page; each link's text names its format and feed.
    body_links = [(a.get("href"), a.text_content()) for a in tree.xpath("//main//a")]
    assert body_links == [
        (f"{feed.path}{filename}", f"{label} ({feed.title})")
        for feed in feed_set_links()
        for _, filename, label in formats
    ]


def test_index_page_structure() -> None:
    tree = _index_tree()
    root = tree.getroottree().getroot()
    assert root.get("lang") == "en-GB" and root.get("dir") == "ltr"
    assert tree.xpath("//meta[@name='viewport']/@content") == [
        "width=device-width, initial-scale=1"
    ]
    body = tree.xpath("/html/body")[0]
    first_link = body.xpath(".//a")[0]
    assert first_link.text_content() == "Skip to content" and first_link.get("href") == "#main"
    assert tree.xpath("//main/@id") == ["main"] and tree.xpath("//main/@tabindex") == ["-1"]
    assert len(tree.xpath("//header")) == 1 and len(tree.xpath("//footer")) == 1
    assert [h.text_content() for h in tree.xpath("//h1")] == ["Feeds"]
    assert [h.text_content() for h in tree.xpath("//main//h3")] == [
        "politics",
        "<b>hostile</b> &amp; co",
        LONG_WORD,
    ]


def test_index_escapes_titles() -> None:
    data = render_feeds_index(project_settings(), [FeedSetLink("<script>alert(1)</script>", "")])
    assert b"<script>" not in data
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in data
    tree = _parse_html(data)
    assert tree.xpath("//script") == []
    assert tree.xpath("//link[@rel='alternate']/@title")[0] == "<script>alert(1)</script> (RSS)"


def test_index_without_tag_feeds_has_no_topics_section() -> None:
    tree = _index_tree([FeedSetLink("The Speaker", "")])
    assert len(tree.xpath("//link[@rel='alternate']")) == 3
    assert tree.xpath("//*[@id='topics-heading']") == []


def test_index_right_to_left_language() -> None:
    tree = _index_tree(language="ar")
    root = tree.getroottree().getroot()
    assert (root.get("lang"), root.get("dir")) == ("ar", "rtl")


@pytest.mark.parametrize(
    ("language", "direction"),
    [
        ("en-GB", "ltr"),
        ("ar", "rtl"),
        ("he-IL", "rtl"),
        ("fa", "rtl"),
        ("fr", "ltr"),
        ("FA", "rtl"),
    ],
)
def test_text_direction(language: str, direction: str) -> None:
    assert text_direction(language) == direction


@pytest.mark.parametrize(
    "path", ["/", "/tags/x/", "tags/x", "../x/", "tags/../x/", "tags//x/", "tags\\x\\", "./"]
)
def test_feed_set_link_rejects_paths_outside_the_output(path: str) -> None:
    with pytest.raises(ValueError, match="feed set path"):
        FeedSetLink("A feed", path)


def test_feed_set_link_needs_a_title() -> None:
    with pytest.raises(ValueError, match="title"):
        FeedSetLink("  ", "")


def test_templates_dir_can_be_overridden(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "feeds_index.html").write_text(
        "{% for feed in feeds %}{{ feed.title }}|{% endfor %}{{ lang }}", encoding="utf-8"
    )
    data = render_feeds_index(
        project_settings(), [FeedSetLink("A & B", "")], templates_dir=tmp_path
    )
    assert data == b"A &amp; B|en-GB\n"


def test_missing_templates_dir_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="templates folder not found"):
        render_feeds_index(project_settings(), [], templates_dir=missing)


def test_undefined_template_variables_are_errors(tmp_path: Path) -> None:
    import jinja2

    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "feeds_index.html").write_text("{{ no_such_name }}", encoding="utf-8")
    with pytest.raises(jinja2.UndefinedError):
        render_feeds_index(project_settings(), [], templates_dir=tmp_path)
