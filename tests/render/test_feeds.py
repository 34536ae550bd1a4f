"""Generated feeds against their specifications, and RFC 5005 archives walked end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from lxml import etree, html

from speakerfeed.config import Settings
from speakerfeed.feeds.plan import feed_sets, plan_documents
from speakerfeed.models import Article, Image
from speakerfeed.render.feeds import FORMATS, FeedDocument, render
from speakerfeed.sources.base import ReaderContext
from speakerfeed.sources.collect import collect
from speakerfeed.sources.folder import article_fingerprint
from speakerfeed.sources.plaintext import PlainTextReader
from tests.support.feedcheck import (
    ATOM,
    FH,
    check_atom,
    check_json_feed,
    check_namespaces,
    check_rss,
)
from tests.support.project import project_settings

ROOT = Path(__file__).resolve().parents[2]
CHECKS = {"rss": check_rss, "atom": check_atom, "json": check_json_feed}


def _article(number: int, **changes: object) -> Article:
    published = datetime(2023, 1, 1, 9, tzinfo=UTC) + timedelta(hours=number)
    fields: dict[str, object] = {
        "id": f"tag:www.speakernews.co.uk,2023-01-01:a{number}",
        "title": f"Article {number} – “quoted” & <escaped>",
        "url": f"https://www.speakernews.co.uk/a-{number}/",
        "published": published,
        "content_html": f"<p>Body of {number} with <a href='https://example.org'>a link</a>.</p>",
        "summary": f"Summary of article {number}.",
        "source": f"a{number}.md",
        "slug": f"a-{number}",
        "authors": ("Amelia Hart",),
        "tags": ("politics",) if number % 2 else ("economy", "World News"),
        "image": Image("https://example.org/i.jpg", "A picture") if number % 3 == 0 else None,
    }
    fields.update(changes)
    article = Article(**fields)  # type: ignore[arg-type]
    from dataclasses import replace

    return replace(article, fingerprint=article_fingerprint(article))


def _planned(settings: Settings, articles: list[Article]) -> list[FeedDocument]:
    collected = collect(articles)
    return plan_documents(settings, feed_sets(settings, collected.articles))


def _documents(settings: Settings, articles: list[Article]) -> list[FeedDocument]:
    """The feed documents (not the feeds' HTML pages)."""
    return [doc for doc in _planned(settings, articles) if not doc.is_page]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return project_settings(feeds={"items": 5, "websub_hub": "https://hub.example.org/"})


@pytest.fixture(scope="module")
def documents(settings: Settings) -> list[FeedDocument]:
    return _documents(settings, [_article(n) for n in range(23)])


def _content_type(doc: FeedDocument) -> str:
    return FORMATS[doc.format].media_type


def test_every_document_conforms_and_parses_without_bozo(documents: list[FeedDocument]) -> None:
    assert {d.format for d in documents} == {"rss", "atom", "json"}
    for doc in documents:
        data = render(doc)
        assert CHECKS[doc.format](data) == [], doc.path
        if doc.format == "json":
            continue  # feedparser 6 does not read JSON Feed; the schema check above does
        parsed = feedparser.parse(data, response_headers={"content-type": _content_type(doc)})
        assert parsed.bozo == 0, (doc.path, parsed.get("bozo_exception"))
        assert len(parsed.entries) == len(doc.items)


def test_rss_fields(documents: list[FeedDocument]) -> None:
    doc = next(d for d in documents if d.path == "rss.xml")
    root = etree.fromstring(render(doc))
    channel = root.find("channel")
    assert channel is not None
    assert channel.findtext("link") == "https://www.speakernews.co.uk/"
    self_links = [link for link in channel.findall(f"{ATOM}link") if link.get("rel") == "self"]
    assert [link.get("href") for link in self_links] == [
        "https://www.speakernews.co.uk/feeds/rss.xml"
    ]
    assert any(link.get("rel") == "hub" for link in channel.findall(f"{ATOM}link"))
    item = channel.find("item")
    assert item is not None
    assert item.findtext("description") == "Summary of article 22."
    encoded = item.findtext("{http://purl.org/rss/1.0/modules/content/}encoded")
    assert encoded is not None and encoded.startswith("<p>Body of 22")
    assert item.findtext("{http://purl.org/dc/elements/1.1/}creator") == "Amelia Hart"
    guid = item.find("guid")
    assert guid is not None and guid.get("isPermaLink") == "false"
    assert item.findtext("title") == "Article 22 – “quoted” & <escaped>"


def test_atom_fields(documents: list[FeedDocument]) -> None:
    doc = next(d for d in documents if d.path == "atom.xml")
    data = render(doc)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n")
    assert b"xml-stylesheet" not in data  # browsers get the feed's HTML page instead
    root = etree.fromstring(data)
    entry = root.find(f"{ATOM}entry")
    assert entry is not None
    assert entry.find(f"{ATOM}summary") is not None
    content = entry.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "html"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en-GB"


def test_json_feed_fields(documents: list[FeedDocument]) -> None:
    doc = next(d for d in documents if d.path == "feed.json")
    feed = json.loads(render(doc))
    assert feed["hubs"] == [{"type": "WebSub", "url": "https://hub.example.org/"}]
    item = feed["items"][1]  # article 21: image? 21 % 3 == 0
    assert item["image"] == "https://example.org/i.jpg"
    assert item["authors"] == [{"name": "Amelia Hart"}]
    assert item["tags"] == ["politics"]
    assert item["content_html"].startswith("<p>Body of 21")
    assert item["summary"] == "Summary of article 21."
    assert item["date_published"] == "2023-01-02T06:00:00+00:00"  # 9:00 + 21 h
    assert "date_modified" in item


def test_tag_feeds_exist_and_hold_only_their_articles(documents: list[FeedDocument]) -> None:
    paths = {d.path for d in documents}
    assert {"tags/politics/rss.xml", "tags/economy/atom.xml", "tags/world-news/feed.json"} <= paths
    politics = next(d for d in documents if d.path == "tags/politics/atom.xml")
    assert all("politics" in a.tags for a in politics.items)
    assert politics.meta.title == "The Speaker: politics"


@pytest.mark.parametrize("format_name", ["rss", "atom"])
def test_rfc5005_archives_walk_back_to_every_article(
    documents: list[FeedDocument], format_name: str
) -> None:
    by_url = {d.self_url: render(d) for d in documents if d.format == format_name}
    fmt = FORMATS[format_name]
    url: str | None = f"https://www.speakernews.co.uk/feeds/{fmt.filename}"
    seen: set[str] = set()
    visited = 0
    while url:
        root = etree.fromstring(by_url[url])
        container = root.find("channel") if format_name == "rss" else root
        assert container is not None
        links = {link.get("rel"): link.get("href") for link in container.findall(f"{ATOM}link")}
        is_archive = container.find(f"{FH}archive") is not None
        assert is_archive == (visited > 0)
        if is_archive:
            assert links["current"] == f"https://www.speakernews.co.uk/feeds/{fmt.filename}"
            assert links["self"] == url
        items = container.findall("item") if format_name == "rss" else root.findall(f"{ATOM}entry")
        for item in items:
            seen.add(item.findtext("guid") or item.findtext(f"{ATOM}id") or "")
        url = links.get("prev-archive")
        visited += 1
    assert seen == {f"tag:www.speakernews.co.uk,2023-01-01:a{n}" for n in range(23)}
    assert visited == 1 + (23 - 1) // 5  # subscription + 4 full archive pages


def test_json_feed_next_url_walks_back(documents: list[FeedDocument]) -> None:
    by_url = {d.self_url: json.loads(render(d)) for d in documents if d.format == "json"}
    url: str | None = "https://www.speakernews.co.uk/feeds/feed.json"
    ids: list[str] = []
    while url:
        page = by_url[url]
        assert page["feed_url"] == "https://www.speakernews.co.uk/feeds/feed.json"
        ids += [item["id"] for item in page["items"]]
        url = page.get("next_url")
    assert set(ids) == {f"tag:www.speakernews.co.uk,2023-01-01:a{n}" for n in range(23)}


def test_archive_pages_do_not_change_when_new_articles_arrive(settings: Settings) -> None:
    before = {d.path: render(d) for d in _documents(settings, [_article(n) for n in range(23)])}
    after = {d.path: render(d) for d in _documents(settings, [_article(n) for n in range(27)])}
    for page in ("archive/atom/1.xml", "archive/atom/3.xml", "archive/rss/3.xml"):
        assert before[page] == after[page], page
    # The newest archive page only gains its next-archive link; its entries stay the same.
    old, new = (etree.fromstring(d["archive/atom/4.xml"]) for d in (before, after))
    assert [e.findtext(f"{ATOM}id") for e in old.findall(f"{ATOM}entry")] == [
        e.findtext(f"{ATOM}id") for e in new.findall(f"{ATOM}entry")
    ]
    assert before["atom.xml"] != after["atom.xml"]
    assert "archive/atom/5.xml" in after and "archive/atom/5.xml" not in before


def test_rendering_is_deterministic(documents: list[FeedDocument]) -> None:
    for doc in documents[:9]:
        assert render(doc) == render(doc)


def test_seed_article_in_all_formats(settings: Settings) -> None:
    seed_path = ROOT / "articles" / "000_d49d9c5f78f68bb1.txt"
    seed = PlainTextReader().read(
        seed_path.name, seed_path.read_text(encoding="utf-8"), ReaderContext(site=settings.site)
    )
    for doc in _documents(settings, [seed]):
        if doc.format == "json":
            item = json.loads(render(doc))["items"][0]
            assert item["title"] == "What is happening in Kazakhstan?"
            assert item["date_published"] == "2023-11-29T13:06:00+00:00"
            continue
        parsed = feedparser.parse(
            render(doc), response_headers={"content-type": _content_type(doc)}
        )
        assert parsed.bozo == 0
        entry = parsed.entries[0]
        assert entry.title == "What is happening in Kazakhstan?"
        assert entry.published_parsed[:5] == (2023, 11, 29, 13, 6)


def test_hostile_text_is_escaped_and_control_characters_cannot_break_xml(
    settings: Settings,
) -> None:
    article = _article(1, title="<script>alert(1)</script> ]]> &amp;", summary="a ]]> b")
    for doc in _documents(settings, [article]):
        data = render(doc)
        assert CHECKS[doc.format](data) == []
        if doc.format == "json":  # plain-text title, JSON-escaped by the encoder
            assert json.loads(data)["items"][0]["title"] == article.title
        else:
            assert b"<script>alert" not in data


def test_atom_archive_links_use_the_documents_namespaces_not_a_stray_prefix(
    documents: list[FeedDocument],
) -> None:
    """The W3C feed validator warns "Avoid Namespace Prefix" on <ns0:link>."""
    archive = next(d for d in documents if d.path == "archive/atom/2.xml")
    data = render(archive)
    assert b"ns0:" not in data and b"xmlns:ns" not in data
    root = etree.fromstring(data)
    rels = {link.get("rel") for link in root.findall(f"{ATOM}link")}
    assert {"self", "current", "prev-archive", "next-archive"} <= rels
    assert root.find(f"{FH}archive") is not None
    assert check_namespaces(data) == []
    for doc in documents:
        if doc.format != "json":
            assert check_namespaces(render(doc)) == [], doc.path


def test_every_feed_set_and_format_has_its_page_beside_it(settings: Settings) -> None:
    planned = _planned(settings, [_article(n) for n in range(23)])
    feeds = {d.path for d in planned if not d.is_page and not d.archive}
    pages = {d.path: d for d in planned if d.is_page}
    expected = {
        d.path.removesuffix(FORMATS[d.format].filename) + FORMATS[d.format].page
        for d in planned
        if not d.is_page and not d.archive
    }
    assert set(pages) == expected and len(pages) == len(feeds)
    assert {"rss.html", "atom.html", "feed.html", "tags/politics/rss.html"} <= set(pages)
    for page in pages.values():
        assert page.subscription_url.endswith(FORMATS[page.format].filename)
        assert len(page.items) == 5


def _page_of(settings: Settings, articles: list[Article], path: str) -> FeedDocument:
    return next(d for d in _planned(settings, articles) if d.path == path)


def _html(data: bytes) -> Any:
    return html.document_fromstring(data)


def test_a_feed_page_shows_the_items_in_the_sites_time_zone_and_language() -> None:
    settings = project_settings(site={"language": "ar", "timezone": "Asia/Tokyo"})
    late = _article(1, published=datetime(2026, 3, 4, 23, 30, 15, 123456, tzinfo=UTC))
    tree = _html(render(_page_of(settings, [late], "tags/politics/atom.html")))
    root = tree.getroottree().getroot()
    assert (root.get("lang"), root.get("dir")) == ("ar", "rtl")
    # 23:30 UTC is the next morning in Tokyo; whole seconds only.
    assert tree.xpath("//main//time/@datetime") == ["2026-03-05T08:30:15+09:00"]
    assert tree.xpath("//main//time")[0].text_content() == "5 March 2026"
    assert tree.xpath("//h1")[0].text_content() == "politics"
    assert tree.xpath("//input[@id='feed-url']/@value") == [
        "https://www.speakernews.co.uk/feeds/tags/politics/atom.xml"
    ]
    assert tree.xpath("//main//a[@href='../../index.html']")


def test_a_feed_page_escapes_text_and_links_only_web_addresses(settings: Settings) -> None:
    hostile = _article(1, title="<script>alert(1)</script> & co", summary="a < b <img src=x>")
    scripted = _article(3, url="javascript:alert(document.domain)")
    data = render(_page_of(settings, [hostile, scripted], "rss.html"))
    tree = _html(data)
    assert tree.xpath("//script | //main//img") == []
    headings = [h.text_content() for h in tree.xpath("//main//article/h3")]
    assert headings == [scripted.title, "<script>alert(1)</script> & co"]
    assert tree.xpath("//main//article[1]/h3/a") == []  # a javascript: URL is no link
    assert b"javascript:" not in data


def test_an_empty_feed_page_says_so(settings: Settings) -> None:
    tree = _html(render(_page_of(settings, [], "feed.html")))
    assert tree.xpath("//main//article") == []
    assert "Nothing published here yet" in tree.xpath("//main")[0].text_content()
    others = tree.xpath("//ul[@class='formats']//a/@href")
    assert others == [
        "https://www.speakernews.co.uk/feeds/rss.xml",
        "https://www.speakernews.co.uk/feeds/atom.xml",
    ]
