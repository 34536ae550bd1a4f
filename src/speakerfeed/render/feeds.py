"""Feed documents -> bytes, one renderer per format: RSS 2.0 and Atom 1.0 through feedgen, JSON Feed
1.1 written directly (feedgen does not write it).

feedgen renders each entry once per build (FeedEntry.rss_entry / atom_entry) and each document's
feed-level part; the entries are spliced into the document. An article sits in the main feed and in
a feed per tag, so this renders a 10,000-article archive's 60,000 entries 20,000 times, not 60,000.

Every renderer is a pure function of its FeedDocument: the same document gives the same bytes, so an
unchanged feed is never rewritten and its ETag stays stable. Nothing here reads a clock.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from speakerfeed import __version__
from speakerfeed.models import Article

ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
MEDIA_NS = "http://search.yahoo.com/mrss/"
DC_NS = "http://purl.org/dc/elements/1.1/"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR_URI = "https://github.com/speakerfeed/speakerfeed"


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """What a feed says about itself; the same for every page of one feed."""

    id: str  # permanent: Atom feed id
    title: str
    description: str
    home_url: str  # the web page the feed belongs to
    language: str
    author: str
    author_email: str = ""
    hub: str = ""  # WebSub hub, announced with rel="hub"
    # For the feed's HTML page: the site it belongs to, and the time zone its dates are shown in.
    site_title: str = ""
    timezone: str = "UTC"
    # The page's header and sign-up call to action (render.pages): the sign-up form's URL ("":
    # none), whether there is a digest archive, and the site's icon as a data: URL.
    signup_url: str = ""
    archive: bool = False
    favicon: str = ""


@dataclass(frozen=True, slots=True)
class FeedDocument:
    """One file to write: a subscription document, one RFC 5005 archive document, or the HTML
    page a browser is shown for a subscription document (``page_version`` set)."""

    format: str  # a key of FORMATS
    path: str  # relative to the output folder, with / separators
    meta: FeedMeta
    items: tuple[Article, ...]  # newest first
    self_url: str
    subscription_url: str  # the feed's current document in this format (RFC 5005 "current")
    prev_archive_url: str | None = None  # the next older archive document
    next_archive_url: str | None = None  # the next newer archive document
    archive: bool = False
    full_content: bool = True
    # Set only for the HTML page of the feed in ``format`` (rss.html for rss.xml): a digest of its
    # templates, so an edited template changes the document's fingerprint and the page is rebuilt.
    page_version: str = ""
    templates_dir: Path | None = None  # the editor's overrides ([build] templates_dir), for a page

    @property
    def is_page(self) -> bool:
        return bool(self.page_version)

    @property
    def updated(self) -> datetime:
        """The newest change among its items: deterministic, unlike the time of the build."""
        if not self.items:
            return datetime.fromisoformat("2000-01-01T00:00:00+00:00")
        return max(item.last_modified for item in self.items)


@dataclass(frozen=True, slots=True)
class FeedFormat:
    name: str
    media_type: str
    filename: str  # of the subscription document
    extension: str  # of archive documents
    page: str  # the HTML page a browser is shown for the subscription document
    render: Callable[[FeedDocument, EntryCache | None], bytes]


class _HistoryExtension(BaseExtension):  # type: ignore[misc]
    """RFC 5005 links and <fh:archive/>, the hub link, and the extra namespaces, in both formats.

    feedgen writes only rel="self" into RSS, so every other link is added here for both formats.
    """

    def __init__(self) -> None:
        self.document: FeedDocument | None = None

    def extend_ns(self) -> dict[str, str]:
        return {"fh": HISTORY_NS, "media": MEDIA_NS, "dc": DC_NS}

    def _links(self) -> list[tuple[str, str, str]]:
        doc = self.document
        assert doc is not None
        media_type = FORMATS[doc.format].media_type
        links: list[tuple[str, str, str]] = []
        if doc.meta.hub and not doc.archive:
            links.append(("hub", doc.meta.hub, ""))
        if doc.archive:
            links.append(("current", doc.subscription_url, media_type))
        if doc.prev_archive_url:
            links.append(("prev-archive", doc.prev_archive_url, media_type))
        if doc.next_archive_url:
            links.append(("next-archive", doc.next_archive_url, media_type))
        return links

    def _extend(self, parent: Any, link_tag: str) -> None:
        assert self.document is not None
        # SubElement keeps the root's prefixes (atom:, fh:) instead of declaring a stray "ns0:",
        # which validators flag. feedgen writes Atom's elements without a namespace (the root's
        # xmlns is a plain attribute), so Atom links must be plain "link" elements too.
        for rel, href, media_type in self._links():
            link = etree.SubElement(parent, link_tag, href=href, rel=rel)
            if media_type:
                link.set("type", media_type)
        if self.document.archive:
            etree.SubElement(parent, f"{{{HISTORY_NS}}}archive")

    def extend_rss(self, feed: Any) -> Any:
        self._extend(feed[0], f"{{{ATOM_NS}}}link")
        return feed

    def extend_atom(self, feed: Any) -> Any:
        self._extend(feed, "link")
        return feed


class _ArticleExtension(BaseEntryExtension):  # type: ignore[misc]
    """Per entry: the image as Media RSS (with its alt text), and dc:creator in RSS, whose own
    <author> element must be an e-mail address."""

    def __init__(self) -> None:
        self.article: Article | None = None

    def _image(self, entry: Any) -> None:
        assert self.article is not None
        image = self.article.image
        if image is None:
            return
        media_type = mimetypes.guess_type(image.url)[0] or "image/jpeg"
        content = etree.SubElement(
            entry, f"{{{MEDIA_NS}}}content", url=image.url, medium="image", type=media_type
        )
        etree.SubElement(content, f"{{{MEDIA_NS}}}description", type="plain").text = image.alt

    def extend_rss(self, entry: Any) -> Any:
        assert self.article is not None
        for name in self.article.authors:
            etree.SubElement(entry, f"{{{DC_NS}}}creator").text = name
        self._image(entry)
        return entry

    def extend_atom(self, entry: Any) -> Any:
        self._image(entry)
        return entry


def _skeleton(doc: FeedDocument) -> FeedGenerator:
    """The document without its entries: feed-level elements only."""
    meta = doc.meta
    fg = FeedGenerator()
    fg.register_extension("speakerfeed", _HistoryExtension, _ArticleExtension)
    fg.speakerfeed.document = doc
    fg.id(meta.id)
    fg.title(meta.title)
    fg.subtitle(meta.description or meta.title)  # also RSS <description>, which is required
    fg.language(meta.language)
    author = {"name": meta.author, **({"email": meta.author_email} if meta.author_email else {})}
    fg.author(author)
    fg.link(href=doc.self_url, rel="self", type=FORMATS[doc.format].media_type)
    # Last, because feedgen uses the last link as RSS's <channel><link>: the web site.
    fg.link(href=meta.home_url, rel="alternate", type="text/html")
    fg.generator("speakerfeed", version=__version__, uri=GENERATOR_URI)
    fg.updated(doc.updated)
    fg.lastBuildDate(doc.updated)
    return fg


def _entry(article: Article, full_content: bool) -> FeedEntry:
    entry = FeedEntry()
    entry.register_extension("speakerfeed", _ArticleExtension)
    entry.speakerfeed.article = article
    # Sets the Atom id too; a tag: URI is no permalink, so isPermaLink="false".
    entry.guid(article.id, permalink=article.id == article.url)
    entry.title(article.title)
    entry.link(href=article.url, rel="alternate", type="text/html")
    entry.published(article.published)
    entry.updated(article.last_modified)
    entry.summary(article.summary or article.title)  # Atom summary, RSS description
    if full_content:
        entry.content(article.content_html, type="html")
    for name in article.authors:
        entry.author(name=name)
    for tag in article.tags:
        entry.category(term=tag)
    return entry


# Namespaces declared on the root of every RSS and Atom document we write (feedgen's and ours),
# so an entry rendered on its own can drop its copies of these declarations when spliced in.
_RSS_NAMESPACES = {"atom": ATOM_NS, "content": CONTENT_NS, "dc": DC_NS, "media": MEDIA_NS}
_ATOM_NAMESPACES = {"media": MEDIA_NS}
_XMLNS = re.compile(r' xmlns:(\w+)="([^"]*)"')


def render_entry(article: Article, format_name: str, full_content: bool) -> str:
    """One RSS <item> or Atom <entry>, indented for its place in the document."""
    entry = _entry(article, full_content)
    rss = format_name == "rss"
    element = entry.rss_entry() if rss else entry.atom_entry()
    namespaces = _RSS_NAMESPACES if rss else _ATOM_NAMESPACES
    # Give the elements the document's prefixes (content:, dc:, media:) instead of ns0, ns1.
    holder = etree.Element("holder", nsmap=namespaces)
    holder.append(element)
    etree.cleanup_namespaces(holder, top_nsmap=namespaces)
    etree.indent(element, space="  ", level=2 if rss else 1)
    text = etree.tostring(element, encoding="unicode")
    start_tag, rest = text.split(">", 1)
    start_tag = _XMLNS.sub(
        lambda m: "" if namespaces.get(m.group(1)) == m.group(2) else m.group(0), start_tag
    )
    indent = "    " if rss else "  "
    return f"{indent}{start_tag}>{rest}\n"


class EntryCache:
    """Entries rendered once per build and reused by every document that holds them (the main
    feed and each tag feed), each dropped after its last use so memory stays flat."""

    def __init__(self, documents: Iterable[FeedDocument] = ()) -> None:
        self._uses: Counter[tuple[str, str]] = Counter()
        self._entries: dict[tuple[str, str], str] = {}
        for doc in documents:
            if doc.is_page:  # a page renders its items itself, not from feed entries
                continue
            self._uses.update((doc.format, article.fingerprint) for article in doc.items)

    def get(self, article: Article, format_name: str, full_content: bool) -> str:
        key = (format_name, article.fingerprint)
        text = self._entries.get(key)
        if text is None:
            text = ENTRY_RENDERERS[format_name](article, format_name, full_content)
            if self._uses[key] > 1:
                self._entries[key] = text
        self._uses[key] -= 1
        if self._uses[key] <= 0:
            self._entries.pop(key, None)
        return text


def _splice(skeleton: bytes, closing: bytes, entries: Iterable[str]) -> bytes:
    head, found, tail = skeleton.rpartition(closing)
    if not found:
        raise ValueError(f"feedgen output without {closing!r}")
    body = "".join(entries).encode("utf-8")
    return head + body + found + tail


def _entries(doc: FeedDocument, cache: EntryCache | None) -> Iterable[str]:
    for article in doc.items:
        if cache is None:
            yield ENTRY_RENDERERS[doc.format](article, doc.format, doc.full_content)
        else:
            yield cache.get(article, doc.format, doc.full_content)


def render_rss(doc: FeedDocument, cache: EntryCache | None = None) -> bytes:
    skeleton: bytes = _skeleton(doc).rss_str(pretty=True, extensions=True)
    return _splice(skeleton, b"  </channel>", _entries(doc, cache))


def render_atom(doc: FeedDocument, cache: EntryCache | None = None) -> bytes:
    skeleton: bytes = _skeleton(doc).atom_str(pretty=True, extensions=True)
    return _splice(skeleton, b"</feed>", _entries(doc, cache))


def render_json_item(article: Article, format_name: str, full_content: bool) -> str:
    return json.dumps(_json_item(article, full_content), ensure_ascii=False, separators=(",", ":"))


def _json_item(article: Article, full_content: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"id": article.id, "url": article.url, "title": article.title}
    item["content_html"] = (
        article.content_html if full_content else f"<p>{_esc(article.summary)}</p>"
    )
    if article.summary:
        item["summary"] = article.summary
    if article.image is not None:
        item["image"] = article.image.url
    item["date_published"] = article.published.isoformat()
    item["date_modified"] = article.last_modified.isoformat()
    if article.authors:
        item["authors"] = [{"name": name} for name in article.authors]
    if article.tags:
        item["tags"] = list(article.tags)
    return item


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_json(doc: FeedDocument, cache: EntryCache | None = None) -> bytes:
    meta = doc.meta
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": meta.title,
        "home_page_url": meta.home_url,
        # feed_url identifies the feed, so every page of it names the subscription document.
        "feed_url": doc.subscription_url,
        "description": meta.description or meta.title,
        "language": meta.language,
        "authors": [{"name": meta.author}],
    }
    if doc.prev_archive_url:  # JSON Feed's next_url leads to older items
        feed["next_url"] = doc.prev_archive_url
    if meta.hub and not doc.archive:
        feed["hubs"] = [{"type": "WebSub", "url": meta.hub}]
    feed["items"] = []
    head = json.dumps(feed, ensure_ascii=False, separators=(",", ":"))
    items = ",".join(_entries(doc, cache))
    return (head[: -len("[]}")] + "[" + items + "]}").encode("utf-8")


FORMATS: dict[str, FeedFormat] = {
    "rss": FeedFormat("rss", "application/rss+xml", "rss.xml", ".xml", "rss.html", render_rss),
    "atom": FeedFormat(
        "atom", "application/atom+xml", "atom.xml", ".xml", "atom.html", render_atom
    ),
    "json": FeedFormat(
        "json", "application/feed+json", "feed.json", ".json", "feed.html", render_json
    ),
}


ENTRY_RENDERERS: dict[str, Callable[[Article, str, bool], str]] = {
    "rss": render_entry,
    "atom": render_entry,
    "json": render_json_item,
}


def render(doc: FeedDocument, cache: EntryCache | None = None) -> bytes:
    if doc.is_page:
        # Imported here: render.feed_pages builds on this module (FORMATS, FeedDocument).
        from speakerfeed.render.feed_pages import render_feed_page

        return render_feed_page(doc)
    return FORMATS[doc.format].render(doc, cache)
