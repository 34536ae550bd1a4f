"""The feeds index page and the feeds' XSL stylesheet: accessible, keyboard-usable, escaped, and
narrow-screen safe, in Chromium and as plain HTML made by lxml's XSLT.

Browsers are removing XSLT, so the stylesheet's output is also checked on its own (lxml transforms
the feed, Chromium loads the resulting HTML). The sample feeds are written by feedgen, as the build
does; the XSL follows the RSS 2.0 and Atom 1.0 structures, so the tests do not need our renderer.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from feedgen.feed import FeedGenerator
from lxml import etree, html

from speakerfeed.feeds.build import Builder
from speakerfeed.render.pages import (
    DEFAULT_TEMPLATES_DIR,
    FeedSetLink,
    render_feeds_index,
    static_files,
    stylesheet_bytes,
    text_direction,
)
from tests.support.browser import (
    PageFactory,
    StaticServer,
    assert_no_axe_violations,
    check_skip_link,
    excluded_elements,
    horizontal_overflow,
)
from tests.support.project import make_project, project_settings

SITE_URL = "https://www.speakernews.co.uk/"
BASE_URL = "https://www.speakernews.co.uk/feeds/"
ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
REPOSITORY = Path(__file__).resolve().parents[2]
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

# Chromium 156 still runs XSLT for a feed opened directly, but puts its own deprecation banner,
# <xslt-warning-banner>, at the top of the page (its text and controls live in a shadow root). It is
# the browser's content, not ours, so axe leaves it out and the keyboard check tabs past it; each
# test shows that this selector covers the banner and nothing of the page.
BROWSER_BANNER = "xslt-warning-banner"

HOSTILE_TITLE = 'Breaking: <script>alert("title")</script> Tom &amp; Jerry'
HOSTILE_SUMMARY = "<img src=x onerror=alert(1)> Rates & taxes: a < b, c > d"
LONG_WORD = "Supercalifragilisticexpialidocious" * 4
LONG_TITLE = f"{LONG_WORD} and a headline that goes on and on past every line end " * 3

VIEWS = [
    pytest.param(375, "light", id="375-light"),
    pytest.param(1024, "light", id="1024-light"),
    pytest.param(375, "dark", id="375-dark"),
    pytest.param(1024, "dark", id="1024-dark"),
]

# ------------------------------------------------------------------------------ sample feeds


@dataclass(frozen=True, slots=True)
class SampleEntry:
    title: str
    slug: str
    summary: str
    published: datetime
    authors: tuple[str, ...] = ("Jo Bloggs",)
    tags: tuple[str, ...] = ("politics",)
    link: str | None = None  # default: the article's URL on the site

    @property
    def url(self) -> str:
        return self.link if self.link is not None else f"{SITE_URL}{self.slug}/"


@dataclass(frozen=True, slots=True)
class SampleFeed:
    folder: str  # relative to the output root: "", "tags/hostile/", "archive/"
    title: str
    entries: tuple[SampleEntry, ...]
    language: str = "en-GB"
    archive_page: int | None = None  # an RFC 5005 archive document, numbered from the oldest

    def path(self, fmt: str) -> str:
        if self.archive_page is not None:
            return f"{self.folder}archive/{fmt}/{self.archive_page}.xml"
        return f"{self.folder}{'rss.xml' if fmt == 'rss' else 'atom.xml'}"

    def subscription_url(self, fmt: str) -> str:
        return f"{BASE_URL}{self.folder}{'rss.xml' if fmt == 'rss' else 'atom.xml'}"


def _date(day: int) -> datetime:
    return datetime(2024, 3, 1, 9, 30, tzinfo=UTC) + timedelta(days=day)


MAIN = SampleFeed(
    "",
    "The Speaker",
    (
        SampleEntry(
            "Young voters turn out in record numbers",
            "young-voters",
            "Turnout among 18 to 24 year olds rose for the third election running.",
            _date(3),
            tags=("politics", "elections"),
        ),
        SampleEntry(
            "Inside the school that banned phones",
            "school-phones",
            "Pupils and teachers on a year without smartphones in class.",
            _date(2),
            authors=("Sam Lee", "Priya Shah"),
            tags=("education",),
        ),
        SampleEntry(
            "Five films to watch this spring",
            "spring-films",
            "Our critics pick the releases worth your money.",
            _date(1),
            tags=(),
        ),
    ),
)
ARCHIVE = SampleFeed(
    "",
    "The Speaker",
    (
        SampleEntry(
            "Our first article",
            "first-article",
            "Why we started a newspaper written by young people.",
            _date(0),
        ),
    ),
    archive_page=1,
)
HOSTILE = SampleFeed(
    "tags/hostile/",
    "The Speaker: <b>hostile</b> &amp; co",
    (
        SampleEntry(HOSTILE_TITLE, "hostile", HOSTILE_SUMMARY, _date(2), authors=("<i>Eve</i>",)),
        SampleEntry(
            "A link that is not a web address",
            "javascript-link",
            "Its heading must not be a link.",
            _date(1),
            link="javascript:alert(document.domain)",
        ),
    ),
)
LONG = SampleFeed(
    "tags/long-reads/",
    f"The Speaker: {LONG_WORD}",
    tuple(
        SampleEntry(f"{LONG_TITLE} {n}", f"long-{n}", f"{LONG_WORD} {LONG_WORD} summary", _date(n))
        for n in range(3)
    ),
    language="fr-CA",
)
SAMPLES = {"main": MAIN, "archive": ARCHIVE, "hostile": HOSTILE, "long": LONG}


def _relative_root(path: str) -> str:
    return "../" * path.count("/")


def feed_document(sample: SampleFeed, fmt: str, *, stylesheet: bool = True) -> bytes:
    """An RSS 2.0 or Atom 1.0 document written by feedgen, with the build's stylesheet line."""
    fg = FeedGenerator()
    fg.load_extension("dc")
    fg.id(sample.subscription_url("atom"))
    fg.title(sample.title)
    fg.subtitle("Independent news and analysis written by young journalists.")
    fg.language(sample.language)
    fg.author({"name": "The Speaker"})
    fg.link(href=BASE_URL + sample.path(fmt), rel="self")
    fg.link(href=SITE_URL, rel="alternate")  # last: feedgen's RSS <link>
    fg.updated(sample.entries[0].published)
    fg.lastBuildDate(sample.entries[0].published)
    for item in sample.entries:
        entry = fg.add_entry(order="append")
        entry.id(f"tag:www.speakernews.co.uk,2024:{item.slug}")
        entry.guid(f"tag:www.speakernews.co.uk,2024:{item.slug}", permalink=False)
        entry.title(item.title)
        entry.link(href=item.url)
        entry.summary(item.summary)
        entry.content(f"<p>{item.summary}</p><p>The full article.</p>", type="html")
        entry.published(item.published)
        entry.updated(item.published)
        for name in item.authors:
            entry.author(name=name)
            entry.dc.dc_creator(name)
        for tag in item.tags:
            entry.category(term=tag)
    xml: bytes = fg.rss_str(pretty=True) if fmt == "rss" else fg.atom_str(pretty=True)
    if sample.archive_page is not None:
        xml = _as_archive(xml, fmt, sample.subscription_url(fmt))
    if not stylesheet:
        return xml
    declaration, _, rest = xml.partition(b"\n")
    href = _relative_root(sample.path(fmt)) + "feed.xsl"
    return declaration + f'\n<?xml-stylesheet type="text/xsl" href="{href}"?>\n'.encode() + rest


def _as_archive(xml: bytes, fmt: str, current: str) -> bytes:
    """Add RFC 5005's archive marker and rel="current" link, which feedgen does not write."""
    root = etree.fromstring(xml, SAFE_PARSER)
    parent = root.find("channel") if fmt == "rss" else root
    assert parent is not None
    first = parent.find("item" if fmt == "rss" else f"{{{ATOM_NS}}}entry")
    assert first is not None
    first.addprevious(etree.Element(f"{{{ATOM_NS}}}link", rel="current", href=current))
    first.addprevious(etree.Element(f"{{{HISTORY_NS}}}archive"))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.fixture(scope="module")
def transform() -> etree.XSLT:
    return etree.XSLT(etree.fromstring(stylesheet_bytes(), SAFE_PARSER))


def xslt_html(transform: etree.XSLT, xml: bytes) -> bytes:
    return bytes(transform(etree.fromstring(xml, SAFE_PARSER)))


def lxml_page_path(sample: SampleFeed, fmt: str) -> str:
    return sample.path(fmt).removesuffix(".xml") + ".lxml.html"


def feed_set_links() -> list[FeedSetLink]:
    return [
        FeedSetLink("The Speaker", ""),
        FeedSetLink("The Speaker: politics", "tags/politics/"),
        FeedSetLink("The Speaker: <b>hostile</b> &amp; co", "tags/hostile/"),
        FeedSetLink(f"The Speaker: {LONG_WORD}", "tags/long-reads/"),
    ]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, transform: etree.XSLT) -> Path:
    """An output folder as the build writes it, plus each feed transformed by lxml into HTML."""
    root = tmp_path_factory.mktemp("public")
    files: dict[str, bytes] = {
        "index.html": render_feeds_index(project_settings(), feed_set_links()),
        **static_files(),
    }
    for sample in SAMPLES.values():
        for fmt in ("rss", "atom"):
            xml = feed_document(sample, fmt)
            files[sample.path(fmt)] = xml
            files[lxml_page_path(sample, fmt)] = xslt_html(transform, xml)
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
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


def _assert_banner_is_all_excluded(page: Any) -> None:
    excluded = excluded_elements(page, [BROWSER_BANNER])
    assert len(excluded) <= 1, excluded
    for element in excluded:
        assert element.tag == BROWSER_BANNER
        # Its content is in its shadow root: nothing of the page sits inside it.
        assert element.child_elements == 0 and not element.text.strip(), element


def _assert_feed_page(page: Any, sample: SampleFeed, fmt: str, *, banner: bool) -> None:
    """The page is the stylesheet's output for this feed, and passes every check."""
    assert page.locator("main#main[tabindex='-1']").count() == 1, page.content()[:500]
    assert page.locator("h1").inner_text() == sample.title
    assert page.locator("html").get_attribute("lang") == sample.language
    assert page.locator(".feed-url code").inner_text() == sample.subscription_url(fmt)
    assert page.locator("article").count() == len(sample.entries)
    exclude = [BROWSER_BANNER] if banner else []
    if banner:
        _assert_banner_is_all_excluded(page)
    assert_no_axe_violations(page, exclude=exclude)
    assert horizontal_overflow(page) == 0
    check_skip_link(page, skip_past=exclude)


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
@pytest.mark.parametrize("fmt", ["rss", "atom"])
@pytest.mark.parametrize("name", ["main", "archive"])
@pytest.mark.parametrize(("width", "scheme"), VIEWS)
def test_feed_page_in_chromium(
    open_page: PageFactory, served: StaticServer, fmt: str, name: str, width: int, scheme: str
) -> None:
    """The feed opened directly: Chromium applies the stylesheet the feed names."""
    sample = SAMPLES[name]
    page = _open(open_page, served.url(sample.path(fmt)), width, scheme)
    _assert_feed_page(page, sample, fmt, banner=True)
    assert open_page.errors == [] and open_page.dialogs == []


@pytest.mark.browser
@pytest.mark.parametrize("fmt", ["rss", "atom"])
@pytest.mark.parametrize("name", ["main", "archive"])
@pytest.mark.parametrize(("width", "scheme"), VIEWS)
def test_feed_page_from_lxml(
    open_page: PageFactory, served: StaticServer, fmt: str, name: str, width: int, scheme: str
) -> None:
    """The stylesheet's output on its own, for the day browsers stop running XSLT."""
    sample = SAMPLES[name]
    page = _open(open_page, served.url(lxml_page_path(sample, fmt)), width, scheme)
    assert page.locator(BROWSER_BANNER).count() == 0
    _assert_feed_page(page, sample, fmt, banner=False)
    assert open_page.errors == [] and open_page.dialogs == []


@pytest.mark.browser
@pytest.mark.parametrize("fmt", ["rss", "atom"])
@pytest.mark.parametrize("how", ["chromium", "lxml"])
def test_hostile_text_is_shown_not_run(
    open_page: PageFactory, served: StaticServer, fmt: str, how: str
) -> None:
    path = HOSTILE.path(fmt) if how == "chromium" else lxml_page_path(HOSTILE, fmt)
    page = _open(open_page, served.url(path), 1024)
    assert page.locator("h1").inner_text() == HOSTILE.title
    headings = page.locator("article h3")
    assert headings.nth(0).inner_text() == HOSTILE_TITLE  # "<script>" and "&amp;" as written
    assert headings.nth(0).locator("a").get_attribute("href") == f"{SITE_URL}hostile/"
    # A javascript: URL is no link at all.
    assert headings.nth(1).locator("a").count() == 0
    assert headings.nth(1).inner_text() == "A link that is not a web address"
    summary = page.locator("article .summary").nth(0).inner_text()
    if fmt == "rss":  # an RSS description with markup is HTML: shown as its text
        assert summary == "Rates & taxes: a < b, c > d"
    else:  # an Atom summary without type="html" is text: shown as written
        assert summary == HOSTILE_SUMMARY
    assert "<i>Eve</i>" in page.locator("article .meta").nth(0).inner_text()
    # Nothing from the feed became an element.
    assert page.evaluate("() => document.querySelectorAll('script, img, b, i').length") == 0
    page.wait_for_timeout(100)
    assert open_page.dialogs == [] and open_page.errors == []
    exclude = [BROWSER_BANNER] if how == "chromium" else []
    assert_no_axe_violations(page, exclude=exclude)


@pytest.mark.browser
@pytest.mark.parametrize("fmt", ["rss", "atom"])
@pytest.mark.parametrize("how", ["chromium", "lxml"])
def test_long_titles_fit_a_narrow_screen(
    open_page: PageFactory, served: StaticServer, fmt: str, how: str
) -> None:
    path = LONG.path(fmt) if how == "chromium" else lxml_page_path(LONG, fmt)
    page = _open(open_page, served.url(path), 375)
    assert page.locator("article").count() == 3
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    # French feed, English explanations: each says which language it is in.
    assert page.locator("html").get_attribute("lang") == "fr-CA"
    assert page.locator("#subscribe-heading").evaluate("e => e.closest('[lang]').lang") == "en"
    exclude = [BROWSER_BANNER] if how == "chromium" else []
    assert_no_axe_violations(page, exclude=exclude)


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


BUILT_FEEDS = [
    "rss.xml",
    "atom.xml",
    "archive/rss/1.xml",
    "archive/atom/1.xml",
    "tags/politics/rss.xml",
    "tags/politics/atom.xml",
]


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 1024])
@pytest.mark.parametrize("path", BUILT_FEEDS)
def test_built_feeds_in_chromium(
    open_page: PageFactory,
    static_server: Callable[[Path], StaticServer],
    built_site: Path,
    path: str,
    width: int,
) -> None:
    feed = etree.parse(str(built_site / path), SAFE_PARSER).getroot()
    title = feed.findtext("channel/title") or feed.findtext(f"{{{ATOM_NS}}}title")
    page = _open(open_page, static_server(built_site).url(path), width)
    assert page.locator("h1").inner_text() == title
    assert page.locator("article").count() == len(feed.findall("channel/item")) + len(
        feed.findall(f"{{{ATOM_NS}}}entry")
    )
    assert page.locator("article time[datetime]").count() == page.locator("article").count()
    _assert_banner_is_all_excluded(page)
    assert_no_axe_violations(page, exclude=[BROWSER_BANNER])
    assert horizontal_overflow(page) == 0
    check_skip_link(page, skip_past=[BROWSER_BANNER])
    assert open_page.errors == [] and open_page.dialogs == []


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


def test_static_files_are_the_stylesheet() -> None:
    files = static_files()
    assert files == {"feed.xsl": (DEFAULT_TEMPLATES_DIR / "feeds" / "feed.xsl").read_bytes()}
    assert files["feed.xsl"] == stylesheet_bytes()
    stylesheet = etree.fromstring(files["feed.xsl"], SAFE_PARSER)
    # Firefox ignores disable-output-escaping; every value must be right as escaped text.
    assert stylesheet.xpath("//@disable-output-escaping") == []
    assert stylesheet.xpath("//*[local-name() = 'output']/@method") == ["html"]


def test_templates_dir_can_be_overridden(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "feeds").mkdir()
    (tmp_path / "web" / "feeds_index.html").write_text(
        "{% for feed in feeds %}{{ feed.title }}|{% endfor %}{{ lang }}", encoding="utf-8"
    )
    (tmp_path / "feeds" / "feed.xsl").write_bytes(b"<xsl/>")
    data = render_feeds_index(
        project_settings(), [FeedSetLink("A & B", "")], templates_dir=tmp_path
    )
    assert data == b"A &amp; B|en-GB\n"
    assert static_files(templates_dir=tmp_path) == {"feed.xsl": b"<xsl/>"}


def test_missing_templates_dir_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="templates folder not found"):
        stylesheet_bytes(templates_dir=missing)
    with pytest.raises(FileNotFoundError, match="templates folder not found"):
        render_feeds_index(project_settings(), [], templates_dir=missing)


def test_undefined_template_variables_are_errors(tmp_path: Path) -> None:
    import jinja2

    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "feeds_index.html").write_text("{{ no_such_name }}", encoding="utf-8")
    with pytest.raises(jinja2.UndefinedError):
        render_feeds_index(project_settings(), [], templates_dir=tmp_path)


# ----------------------------------------------------------------------------- the stylesheet alone


def _rss(
    items: str,
    channel: str = "<language>en-GB</language>",
    self_url: str = "https://example.org/rss.xml",
) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"'
        ' xmlns:fh="http://purl.org/syndication/history/1.0"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        "<title>Feed</title><link>https://example.org/</link><description>About</description>"
        f'<atom:link rel="self" href="{self_url}"/>{channel}{items}'
        "</channel></rss>"
    ).encode()


def _atom(entries: str, attributes: str = 'xml:lang="en-GB"') -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<feed xmlns="http://www.w3.org/2005/Atom" {attributes}>'
        "<title>Feed</title><id>urn:x</id><updated>2024-01-01T00:00:00Z</updated>"
        '<link rel="self" href="https://example.org/atom.xml"/>'
        f'<link rel="alternate" href="https://example.org/"/>{entries}</feed>'
    ).encode()


def _page(transform: etree.XSLT, xml: bytes) -> Any:
    return _parse_html(xslt_html(transform, xml))


@pytest.mark.parametrize(
    ("xml", "lang", "direction"),
    [
        (_rss("", "<language>fr-CA</language>"), "fr-CA", "ltr"),
        (_rss("", ""), "en", "ltr"),
        (_rss("", "<language>en GB&lt;x</language>"), "en", "ltr"),
        (_rss("", "<language>he</language>"), "he", "rtl"),
        (_atom("", 'xml:lang="de-DE"'), "de-DE", "ltr"),
        (_atom("", ""), "en", "ltr"),
    ],
)
def test_stylesheet_language(transform: etree.XSLT, xml: bytes, lang: str, direction: str) -> None:
    page = _page(transform, xml)
    root = page.getroottree().getroot()
    assert (root.get("lang"), root.get("dir")) == (lang, direction)
    english_parts = page.xpath("//body//*[@lang='en']")
    if lang.startswith("en"):
        assert english_parts == []
    else:  # the explanations are in English, whatever the feed's language
        assert page.xpath("//*[@id='subscribe-heading']/ancestor::*[@lang][1]/@lang") == ["en"]


@pytest.mark.parametrize(
    ("pub_date", "datetime_attribute", "shown"),
    [
        ("Mon, 02 Jan 2006 15:04:05 +0000", "2006-01-02T15:04:05+00:00", "2 January 2006"),
        ("2 Jan 2006 15:04 GMT", "2006-01-02T15:04:00Z", "2 January 2006"),
        ("Tue, 10 Jun 2003 04:00:00 EST", "2003-06-10T04:00:00-05:00", "10 June 2003"),
        ("Sat, 07 Sep 02 00:00:01 -0130", "2002-09-07T00:00:01-01:30", "7 September 2002"),
        ("  Sun, 31 DEC 2023  23:59:59  +0100 ", "2023-12-31T23:59:59+01:00", "31 December 2023"),
        ("07 Sep 2002", "2002-09-07", "7 September 2002"),
        ("Sat, 07 Sep 2002 00:00:01 XYZ", "2002-09-07", "7 September 2002"),
    ],
)
def test_stylesheet_rss_dates(
    transform: etree.XSLT, pub_date: str, datetime_attribute: str, shown: str
) -> None:
    page = _page(transform, _rss(f"<item><title>A</title><pubDate>{pub_date}</pubDate></item>"))
    (time,) = page.xpath("//article//time")
    assert (time.get("datetime"), time.text_content()) == (datetime_attribute, shown)


@pytest.mark.parametrize("pub_date", ["not a date", "Mon, 32 Jan 2006", "Mon, 02 Foo 2006"])
def test_stylesheet_unreadable_rss_date_is_shown_as_text(
    transform: etree.XSLT, pub_date: str
) -> None:
    page = _page(transform, _rss(f"<item><title>A</title><pubDate>{pub_date}</pubDate></item>"))
    assert page.xpath("//time") == []
    assert page.xpath("//article//*[@class='date']")[0].text_content() == pub_date


@pytest.mark.parametrize(
    ("entry", "datetime_attribute", "shown"),
    [
        ("<published>2024-03-05T10:00:00Z</published>", "2024-03-05T10:00:00Z", "5 March 2024"),
        (
            "<published>2024-03-05t10:00:00.5+05:30</published><updated>2025-01-01T00:00:00Z</updated>",
            "2024-03-05T10:00:00.5+05:30",
            "5 March 2024",
        ),
        (
            "<updated>2024-11-20T08:00:00Z</updated>",
            "2024-11-20T08:00:00Z",
            "Updated 20 November 2024",
        ),
    ],
)
def test_stylesheet_atom_dates(
    transform: etree.XSLT, entry: str, datetime_attribute: str, shown: str
) -> None:
    page = _page(transform, _atom(f"<entry><title>A</title><id>urn:a</id>{entry}</entry>"))
    (time,) = page.xpath("//article//time")
    assert (time.get("datetime"), time.text_content()) == (datetime_attribute, shown)


@pytest.mark.parametrize(
    ("description", "shown"),
    [
        ("Plain text: a &lt; b &amp; c &gt; d", "Plain text: a < b & c > d"),
        (
            "&lt;p&gt;One&lt;/p&gt;&lt;p&gt;Two &amp;amp; three&lt;br/&gt;four&lt;/p&gt;",
            "One Two & three four",
        ),
        ("&lt;p&gt;Un&lt;em&gt;believ&lt;/em&gt;able&lt;/p&gt;", "Unbelievable"),
        (
            "&lt;p&gt;Before&lt;/p&gt;&lt;SCRIPT type='x'&gt;evil(1 &lt; 2)&lt;/SCRIPT&gt;after",
            "Before after",
        ),
        (
            "&lt;p&gt;&amp;lt;tag&amp;gt; &amp;quot;q&amp;quot; &amp;#39;s&lt;/p&gt;",
            '<tag> "q" \'s',
        ),
    ],
)
def test_stylesheet_rss_summaries(transform: etree.XSLT, description: str, shown: str) -> None:
    page = _page(
        transform, _rss(f"<item><title>A</title><description>{description}</description></item>")
    )
    assert page.xpath("//article/p[@class='summary']")[0].text_content() == shown


def test_stylesheet_leaves_out_a_summary_that_repeats_the_title(transform: etree.XSLT) -> None:
    items = (
        "<item><title>Same words</title><description> Same  words </description></item>"
        "<item><title>Other</title><description>Different words</description></item>"
    )
    page = _page(transform, _rss(items))
    summaries = [p.text_content() for p in page.xpath("//article/p[@class='summary']")]
    assert summaries == ["Different words"]


def test_stylesheet_atom_html_summary_and_title(transform: etree.XSLT) -> None:
    entry = (
        '<entry><title type="html">Tom &amp;amp; &lt;em&gt;Jerry&lt;/em&gt;</title><id>urn:a</id>'
        '<summary type="html">&lt;p&gt;Hello &lt;b&gt;world&lt;/b&gt;&lt;/p&gt;</summary></entry>'
    )
    page = _page(transform, _atom(entry))
    assert page.xpath("//article/h3")[0].text_content() == "Tom & Jerry"
    assert page.xpath("//article/p[@class='summary']")[0].text_content() == "Hello world"


def test_stylesheet_shortens_long_summaries_at_a_word(transform: etree.XSLT) -> None:
    words = " ".join(f"word{n}" for n in range(300))
    page = _page(
        transform, _rss(f"<item><title>A</title><description>{words}</description></item>")
    )
    summary = page.xpath("//p[@class='summary']")[0].text_content()
    assert summary.endswith("…") and 560 <= len(summary) <= 620
    assert summary.removesuffix("…").split(" ")[-1] in words.split(" ")


@pytest.mark.parametrize(
    ("item", "href"),
    [
        ("<link>https://example.org/a</link>", "https://example.org/a"),
        ("<link> HTTP://example.org/b </link>", "HTTP://example.org/b"),
        ("<guid>https://example.org/c</guid>", "https://example.org/c"),
        ('<guid isPermaLink="true">https://example.org/d</guid>', "https://example.org/d"),
        ('<guid isPermaLink="false">https://example.org/e</guid>', None),
        ("<link>javascript:alert(1)</link>", None),
        ("<link>data:text/html,x</link>", None),
        ("<link>/relative/path</link>", None),
        ("<link>https:evil</link>", None),
    ],
)
def test_stylesheet_links_only_to_web_addresses(
    transform: etree.XSLT, item: str, href: str | None
) -> None:
    page = _page(transform, _rss(f"<item><title>Item</title>{item}</item>"))
    assert page.xpath("//article/h3/a/@href") == ([href] if href else [])
    assert page.xpath("//article/h3")[0].text_content() == "Item"


def test_stylesheet_archive_page(transform: etree.XSLT) -> None:
    xml = _rss(
        "<item><title>Old</title></item>",
        '<fh:archive/><atom:link rel="current" href="https://example.org/rss.xml"/>'
        '<atom:link rel="prev-archive" href="https://example.org/archive/rss/1.xml"/>'
        '<atom:link rel="next-archive" href="https://example.org/archive/rss/3.xml"/>',
        self_url="https://example.org/archive/rss/2.xml",
    )
    page = _page(transform, xml)
    assert (
        page.xpath("//p[@class='feed-url']/code")[0].text_content() == "https://example.org/rss.xml"
    )
    assert "archive" in page.xpath("//title")[0].text_content()
    nav = {a.text_content(): a.get("href") for a in page.xpath("//nav//a")}
    assert nav == {
        "Older items": "https://example.org/archive/rss/1.xml",
        "Newer items": "https://example.org/archive/rss/3.xml",
    }


def test_stylesheet_authors_and_topics(transform: etree.XSLT) -> None:
    rss = _rss(
        "<item><title>A</title><dc:creator>Ann</dc:creator><dc:creator>Bo</dc:creator>"
        "<category>politics</category><category>world</category></item>"
        "<item><title>B</title><author>ed@example.org (The Editor)</author></item>"
    )
    page = _page(transform, rss)
    metas = [m.text_content() for m in page.xpath("//article/p[@class='meta']")]
    assert metas == ["By Ann, Bo", "By The Editor"]
    assert page.xpath("//article/p[@class='tags']")[0].text_content() == "Topics: politics, world"
    atom = _atom(
        "<entry><title>A</title><id>urn:a</id><author><name>Ann</name></author>"
        '<category term="pol" label="Politics"/><category term="world"/></entry>'
    )
    page = _page(transform, atom)
    assert page.xpath("//article/p[@class='meta']")[0].text_content() == "By Ann"
    assert page.xpath("//article/p[@class='tags']")[0].text_content() == "Topics: Politics, world"


def test_stylesheet_empty_feed_and_not_a_feed(transform: etree.XSLT) -> None:
    page = _page(transform, _atom(""))
    assert "no items yet" in page.xpath("//main")[0].text_content()
    page = _page(transform, b"<opml version='2.0'><head/><body/></opml>")
    assert page.xpath("//h1")[0].text_content() == "Not a feed"


def test_stylesheet_output_is_well_formed_html5(transform: etree.XSLT) -> None:
    data = xslt_html(transform, feed_document(MAIN, "rss", stylesheet=False))
    assert data.startswith(b"<!DOCTYPE html")
    assert re.search(rb"<html lang=\"en-GB\" dir=\"ltr\">", data)
    page = _parse_html(data)
    assert page.xpath("/html/body/a[1]/@href") == ["#main"]
    assert [element.tag for element in page.xpath("/html/body/*")] == [
        "a",
        "header",
        "main",
        "footer",
    ]
    assert page.xpath("//main/@id") == ["main"] and page.xpath("//main/@tabindex") == ["-1"]
    assert page.xpath("//footer//a/@href") == [SITE_URL]
