"""A fetched upstream body to checked Entries: read it, vet each entry's links, sanitise, dedupe.

Everything here is untrusted input: every HTML field goes through the shared allow-list
(``speakerfeed.sources.sanitize``), every text field loses XML-illegal characters, and an entry
whose link is not http(s) is skipped with a reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urljoin

import httpx

from speakerfeed.sources.base import plain_text, summarize, xml_safe
from speakerfeed.sources.jsonfeed import looks_like_json, read_json_feed
from speakerfeed.sources.sanitize import clean_html, relative_url_count
from speakerfeed.sources.upstream_entry import Entry, RawEntry, UnreadableFeedError
from speakerfeed.sources.xmlfeed import read_xml_feed


class _SkippedEntryError(Exception):
    pass


def parse_feed(
    body: bytes, content_type: str, feed_url: str, *, max_chars: int
) -> tuple[list[Entry], list[str]]:
    """Entries of an RSS, Atom or JSON feed, deduplicated; and why any entry was skipped.

    Raises UnreadableFeedError when the body as a whole cannot or must not be read, or when its
    entries hold more than ``max_chars`` characters of text in all.
    """
    raws = (
        read_json_feed(body)
        if looks_like_json(body, content_type)
        else read_xml_feed(body, content_type)
    )
    _refuse_oversized(raws, max_chars, feed_url)
    entries: list[Entry] = []
    skipped: list[str] = []
    for raw in raws:
        try:
            entries.append(_checked(raw, feed_url))
        except _SkippedEntryError as exc:
            skipped.append(str(exc))
    return _deduplicated(entries), skipped


def _refuse_oversized(raws: list[RawEntry], max_chars: int, feed_url: str) -> None:
    # The body's size cap does not bound what parsing makes of it: entities, relative URLs made
    # absolute against a long xml:base (by feedparser) or a long entry link (by the sanitiser,
    # counted here before it runs: 400 KB of links under a 20,000-character path would become
    # 400,000,000 characters). So the parsed text, and what sanitising will add, are capped too.
    total = 0
    for raw in raws:
        total += sum(map(len, (raw.id, raw.title, raw.link, raw.content_html, raw.summary_html)))
        total += sum(map(len, (*raw.authors, *raw.tags, raw.image_url)))
        base = len(raw.link) + len(feed_url)  # the longest the entry's absolute link can be
        total += base * relative_url_count(raw.content_html or raw.summary_html)
        if total > max_chars:
            raise UnreadableFeedError(
                f"refused: the entries hold over {max_chars} characters of text once parsed"
            )


def _checked(raw: RawEntry, feed_url: str) -> Entry:
    title = _text(plain_text(raw.title) if raw.title_is_html else raw.title)
    link = _http_url(raw.link, feed_url)
    if not link:
        shown = title or "(untitled)"
        raise _SkippedEntryError(
            f"skipped entry {shown!r}: link {_text(raw.link)!r} is not an http(s) URL"
        )
    content = clean_html(raw.content_html or raw.summary_html, base_url=link).strip()
    summary = summarize(_text(plain_text(raw.summary_html or raw.content_html)))
    return Entry(
        id=_text(raw.id) or link,
        title=title or summarize(summary, 80) or link,
        link=link,
        published=raw.published,
        updated=raw.updated,
        authors=tuple(dict.fromkeys(a for a in map(_text, raw.authors) if a)),
        tags=tuple(dict.fromkeys(t for t in map(_text, raw.tags) if t)),
        content_html=content,
        summary=summary,
        image_url=_http_url(raw.image_url, link),
    )


def _http_url(value: str, base: str) -> str:
    """``value`` made absolute against ``base`` and normalised; "" unless a valid http(s) URL."""
    value = _text(value)
    if not value:
        return ""
    try:
        url = httpx.URL(urljoin(base, value))
    except (ValueError, httpx.InvalidURL):
        return ""
    return str(url) if url.scheme in ("http", "https") and url.host else ""


def _deduplicated(entries: Iterable[Entry]) -> list[Entry]:
    """One entry per id (which falls back to the link): the most recently updated wins."""
    kept: dict[str, Entry] = {}
    oldest = datetime.min.replace(tzinfo=UTC)
    for entry in entries:
        earlier = kept.get(entry.id)
        stamp = entry.updated or entry.published or oldest
        if earlier is None or stamp > (earlier.updated or earlier.published or oldest):
            kept[entry.id] = entry
    return list(kept.values())


def _text(value: str) -> str:
    """Plain text, XML-safe, whitespace collapsed."""
    return " ".join(xml_safe(value).split())
