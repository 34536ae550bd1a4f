"""Articles from upstream feeds (RSS, Atom, JSON Feed): fetched safely, parsed, sanitised.

Everything here is untrusted input. The bytes come from ``safe_http``; XML that declares entities
is refused before feedparser sees it; every HTML field goes through an allow-list sanitiser; every
link must be http or https. A JSON state file remembers, per upstream, the validators and entries
of the last good fetch, so a 304 or a failure still serves that upstream's articles, and the time
each entry was first seen, which dates undated entries the same way on every run.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import os
import re
import tempfile
import time
import xml.sax
import xml.sax.handler
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import defusedxml
import defusedxml.sax
import feedparser
import httpx
import nh3
from slugify import slugify

from speakerfeed.config import FetchSettings, Settings, UpstreamSettings
from speakerfeed.errors import FetchError, Problem
from speakerfeed.models import Article, Image
from speakerfeed.sources import safe_http
from speakerfeed.sources.base import plain_text, summarize

STATE_VERSION = 1

# What an article may contain. Anything else is removed, keeping its text (or, for the
# CONTENT_DROPPED tags, without it).
ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dl", "dt",
        "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
        "li", "ol", "p", "pre", "q", "s", "small", "strong", "sub", "sup", "table", "tbody",
        "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES: Mapping[str, frozenset[str]] = {
    "a": frozenset({"href", "title"}),
    "abbr": frozenset({"title"}),
    "blockquote": frozenset({"cite"}),
    "img": frozenset({"src", "alt", "title", "width", "height"}),
    "ol": frozenset({"start"}),
    "q": frozenset({"cite"}),
    "td": frozenset({"colspan", "rowspan"}),
    "th": frozenset({"colspan", "rowspan", "scope"}),
}
CONTENT_DROPPED = frozenset(
    {"script", "style", "iframe", "object", "embed", "noscript", "template", "svg", "math"}
)
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer"

# Characters XML 1.0 forbids: they would make every feed we write invalid.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# "<!ENTITY" as it appears in the encodings an XML parser detects without a declaration.
_ENTITY_MARKERS = tuple("<!ENTITY".encode(c) for c in ("utf-8", "utf-16-le", "utf-16-be"))


@dataclass(frozen=True, slots=True)
class UpstreamResult:
    articles: list[Article]
    problems: list[Problem]


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry as parsed and sanitised: what the state file keeps, so a 304 reuses it."""

    id: str
    title: str
    link: str
    published: datetime | None
    updated: datetime | None
    authors: tuple[str, ...]
    tags: tuple[str, ...]
    content_html: str  # sanitised
    summary: str  # plain text
    image_url: str  # "" when none


@dataclass(slots=True)
class UpstreamState:
    url: str = ""  # the validators belong to this URL only
    etag: str | None = None
    last_modified: str | None = None
    entries: list[Entry] = field(default_factory=list)
    first_seen: dict[str, datetime] = field(default_factory=dict)


class UnreadableFeedError(Exception):
    """The body is not a feed we will read; the message says why in one line."""


def refresh_upstreams(settings: Settings, state_path: Path, now: datetime) -> UpstreamResult:
    """Fetch every configured upstream; a failing one is reported and its last good copy served."""
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    now = now.astimezone(UTC)
    states, problems = load_state(state_path)
    articles: list[Article] = []
    kept: dict[str, UpstreamState] = {}
    for upstream in settings.upstream:
        old = states.get(upstream.name, UpstreamState())
        state, upstream_problems = _refresh(upstream, settings.fetch, old, now)
        kept[upstream.name] = state
        problems += upstream_problems
        articles += upstream_articles(upstream, state, now)
    try:
        save_state(state_path, kept)
    except OSError as exc:
        problems.append(Problem(str(state_path), f"cannot save upstream state: {exc.strerror}"))
    return UpstreamResult(articles, problems)


def _refresh(
    upstream: UpstreamSettings, fetch_settings: FetchSettings, old: UpstreamState, now: datetime
) -> tuple[UpstreamState, list[Problem]]:
    label = f"upstream {upstream.name!r}"
    same_url = old.url == upstream.url
    try:
        result = safe_http.fetch(
            upstream.url,
            fetch_settings,
            etag=old.etag if same_url else None,
            last_modified=old.last_modified if same_url else None,
        )
        if result.status == 304:
            return old, []
        entries, skipped = parse_feed(result.body, result.content_type, result.final_url)
    except (FetchError, UnreadableFeedError) as exc:
        # Keep the old state whole: saving new validators would turn the next fetch into a 304
        # and hide the failure.
        count = min(len(old.entries), upstream.max_items)
        fallback = (
            f"serving {count} {'article' if count == 1 else 'articles'} from the last good fetch"
            if count
            else "no earlier articles to serve"
        )
        return old, [Problem(upstream.name, f"{label}: {exc}; {fallback}")]
    first_seen = {e.id: old.first_seen.get(e.id, now) for e in entries}
    state = UpstreamState(upstream.url, result.etag, result.last_modified, entries, first_seen)
    return state, [Problem(upstream.name, f"{label}: {why}", warning=True) for why in skipped]


def upstream_articles(
    upstream: UpstreamSettings, state: UpstreamState, now: datetime
) -> list[Article]:
    """The upstream's newest ``max_items`` entries as Articles."""
    articles = [_article(e, upstream, state.first_seen.get(e.id, now)) for e in state.entries]
    articles.sort(key=lambda a: (a.published, a.id), reverse=True)
    return articles[: upstream.max_items]


def _article(entry: Entry, upstream: UpstreamSettings, first_seen: datetime) -> Article:
    published = entry.published or entry.updated or first_seen
    updated = entry.updated if entry.updated and entry.updated != published else None
    slug = slugify(entry.title, max_length=80) or "item-" + _digest(entry.id)
    return Article(
        id=entry.id,
        title=entry.title,
        url=entry.link,
        published=published,
        content_html=entry.content_html,
        summary=entry.summary,
        source=f"upstream:{upstream.name}",
        slug=slug,
        updated=updated,
        authors=entry.authors,
        tags=tuple(dict.fromkeys([*entry.tags, *upstream.tags])),
        image=Image(entry.image_url, entry.title) if entry.image_url else None,
    )


# --- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RawEntry:
    """An entry as the feed gave it, before any checking: RSS, Atom and JSON Feed alike."""

    id: str
    title: str
    title_is_html: bool
    link: str
    published: datetime | None
    updated: datetime | None
    authors: list[str]
    tags: list[str]
    content_html: str
    summary_html: str
    image_url: str


class _SkippedEntryError(Exception):
    pass


def parse_feed(body: bytes, content_type: str, feed_url: str) -> tuple[list[Entry], list[str]]:
    """Entries of an RSS, Atom or JSON feed, deduplicated; and why any entry was skipped.

    Raises UnreadableFeedError when the body as a whole cannot or must not be read.
    """
    raws = (
        _json_feed(body) if _looks_like_json(body, content_type) else _xml_feed(body, content_type)
    )
    entries: list[Entry] = []
    skipped: list[str] = []
    for raw in raws:
        try:
            entries.append(_checked(raw, feed_url))
        except _SkippedEntryError as exc:
            skipped.append(str(exc))
    return _deduplicated(entries), skipped


def _looks_like_json(body: bytes, content_type: str) -> bool:
    return "json" in content_type.lower() or body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def _xml_feed(body: bytes, content_type: str) -> list[_RawEntry]:
    _refuse_entities(body)
    try:
        # A stream, never the bytes themselves: feedparser.parse() opens a bytes argument as a
        # file path when it can, so a body reading "/etc/passwd" would be read from our disk.
        # sanitize_html=False: nh3 is the one sanitiser, with our allow-list.
        headers = {"content-type": content_type} if content_type else {}
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=False)
    except Exception as exc:  # untrusted input can trip any parser bug; report, don't crash
        raise UnreadableFeedError(f"feedparser failed: {type(exc).__name__}") from None
    if not parsed.entries:
        if parsed.get("bozo"):
            raise UnreadableFeedError(
                f"not a readable feed: {_one_line(parsed.get('bozo_exception'))}"
            )
        if not parsed.get("version"):
            raise UnreadableFeedError("not an RSS, Atom or JSON feed")
    return [_from_feedparser(entry) for entry in parsed.entries]


def _refuse_entities(body: bytes) -> None:
    """Refuse XML that declares any entity (billion laughs; XXE reading local files or URLs)."""
    try:
        # SAX with a no-op handler checks the whole document without building a tree.
        # forbid_entities refuses every <!ENTITY>, internal or SYSTEM/PUBLIC. An external DTD
        # reference alone (RSS 0.91's Netscape DOCTYPE) is let through: it declares nothing
        # here, and neither this parser nor feedparser ever fetches it (external_ges is off).
        defusedxml.sax.parseString(
            body, xml.sax.handler.ContentHandler(), forbid_entities=True, forbid_external=False
        )
    except defusedxml.DefusedXmlException as exc:
        raise UnreadableFeedError(
            f"refused: the XML declares entities ({type(exc).__name__})"
        ) from None
    except xml.sax.SAXException:
        # Not well-formed: feedparser's lenient parser may still read it, unless a declaration
        # could be hiding behind the error.
        if any(marker in body for marker in _ENTITY_MARKERS):
            raise UnreadableFeedError("refused: malformed XML that declares entities") from None


def _from_feedparser(entry: Any) -> _RawEntry:
    title_type = str((entry.get("title_detail") or {}).get("type", "text/plain"))
    content = entry.get("content") or []
    main = next((c for c in content if "html" in str(c.get("type", ""))), None) or (
        content[0] if content else None
    )
    return _RawEntry(
        id=_str(entry.get("id")),
        title=_str(entry.get("title")),
        title_is_html="html" in title_type,
        link=_str(entry.get("link")),
        # dict.get: FeedParserDict.get would fall back from updated to published, with a warning.
        published=_from_struct(dict.get(entry, "published_parsed")),
        updated=_from_struct(dict.get(entry, "updated_parsed")),
        authors=[_str(a.get("name") or a.get("email")) for a in entry.get("authors") or []],
        tags=[_str(t.get("term") or t.get("label")) for t in entry.get("tags") or []],
        content_html=_detail_html(main),
        summary_html=_detail_html(entry.get("summary_detail")),
        image_url=_feedparser_image(entry),
    )


def _detail_html(detail: Any) -> str:
    """The HTML of a feedparser text construct; plain text is escaped."""
    if not detail:
        return ""
    value = _str(detail.get("value"))
    return value if "html" in _str(detail.get("type")) else html.escape(value)


def _feedparser_image(entry: Any) -> str:
    for thumbnail in entry.get("media_thumbnail") or []:
        if thumbnail.get("url"):
            return _str(thumbnail["url"])
    for media in entry.get("media_content") or []:
        if media.get("medium") == "image" or _str(media.get("type")).startswith("image/"):
            return _str(media.get("url"))
    for enclosure in entry.get("enclosures") or []:
        if _str(enclosure.get("type")).startswith("image/"):
            return _str(enclosure.get("href"))
    return ""


def _from_struct(value: Any) -> datetime | None:
    # feedparser's *_parsed are UTC struct_times.
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except ValueError:
        return None


def _json_feed(body: bytes) -> list[_RawEntry]:
    # feedparser 6 does not read JSON Feed (https://www.jsonfeed.org/version/1.1/).
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise UnreadableFeedError(f"invalid JSON: {_one_line(exc)}") from None
    version = data.get("version") if isinstance(data, dict) else None
    items = data.get("items") if isinstance(data, dict) else None
    if not _str(version).startswith("https://jsonfeed.org/version/") or not isinstance(items, list):
        raise UnreadableFeedError("not a JSON Feed (no jsonfeed.org version or no items)")
    return [_from_json_item(item) for item in items if isinstance(item, dict)]


def _from_json_item(item: dict[str, Any]) -> _RawEntry:
    authors = item.get("authors")
    if not isinstance(authors, list):
        authors = [item.get("author")]  # JSON Feed 1.0
    tags = item.get("tags")
    raw_id = item.get("id")
    return _RawEntry(
        id=str(raw_id) if isinstance(raw_id, str | int) else "",
        title=_str(item.get("title")),
        title_is_html=False,
        link=_str(item.get("url")) or _str(item.get("external_url")),
        published=_from_iso(item.get("date_published")),
        updated=_from_iso(item.get("date_modified")),
        authors=[_str(a.get("name")) for a in authors if isinstance(a, dict)],
        tags=[_str(t) for t in tags] if isinstance(tags, list) else [],
        content_html=_str(item.get("content_html")) or html.escape(_str(item.get("content_text"))),
        summary_html=html.escape(_str(item.get("summary"))),
        image_url=_str(item.get("image")) or _str(item.get("banner_image")),
    )


def _from_iso(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(_str(value))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


# --- checking and sanitising --------------------------------------------------------------------


def _checked(raw: _RawEntry, feed_url: str) -> Entry:
    title = _text(plain_text(raw.title) if raw.title_is_html else raw.title)
    link = _http_url(raw.link, feed_url)
    if not link:
        shown = title or "(untitled)"
        raise _SkippedEntryError(
            f"skipped entry {shown!r}: link {_text(raw.link)!r} is not an http(s) URL"
        )
    content = sanitize_html(raw.content_html or raw.summary_html, base_url=link)
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


def sanitize_html(fragment: str, base_url: str) -> str:
    """Allow-listed HTML: relative URLs resolved against ``base_url``, links http(s)/mailto."""
    if not fragment.strip():
        return ""
    try:
        cleaned = _clean(fragment, ("rewrite_with_base", base_url))
    except ValueError:  # a base the sanitiser cannot parse: drop relative URLs instead
        cleaned = _clean(fragment, "deny")
    return _xml_safe(cleaned).strip()


def _clean(fragment: str, relative: nh3.UrlRelative) -> str:
    return nh3.clean(
        _xml_safe(fragment),
        tags=ALLOWED_TAGS,
        clean_content_tags=CONTENT_DROPPED,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
        url_relative=relative,
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


def _xml_safe(text: str) -> str:
    return _XML_ILLEGAL.sub("", text)


def _text(value: str) -> str:
    """Plain text, XML-safe, whitespace collapsed."""
    return " ".join(_xml_safe(value).split())


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _one_line(value: object) -> str:
    return " ".join(str(value).split())[:200] or type(value).__name__


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


# --- state file ---------------------------------------------------------------------------------


def load_state(path: Path) -> tuple[dict[str, UpstreamState], list[Problem]]:
    """Per-upstream state from ``path``; an unreadable file is a warning and a fresh start."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, ValueError) as exc:
        return {}, [_state_warning(path, exc)]
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return {}, [
            Problem(str(path), "unknown upstream state format; starting afresh", warning=True)
        ]
    try:
        return {name: _state_from_json(s) for name, s in data["upstreams"].items()}, []
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return {}, [_state_warning(path, exc)]


def _state_warning(path: Path, exc: Exception) -> Problem:
    return Problem(
        str(path), f"upstream state unreadable ({_one_line(exc)}); starting afresh", warning=True
    )


def save_state(path: Path, states: Mapping[str, UpstreamState]) -> None:
    """Write atomically: a crash mid-write leaves the old file, never half of a new one."""
    data = {
        "version": STATE_VERSION,
        "upstreams": {name: _state_to_json(state) for name, state in states.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False, indent=1)
            out.flush()
            os.fsync(out.fileno())
        temp.replace(path)  # os.replace: atomic within one file system
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _state_to_json(state: UpstreamState) -> dict[str, Any]:
    return {
        "url": state.url,
        "etag": state.etag,
        "last_modified": state.last_modified,
        "entries": [_entry_to_json(e) for e in state.entries],
        "first_seen": {key: moment.isoformat() for key, moment in state.first_seen.items()},
    }


def _state_from_json(data: dict[str, Any]) -> UpstreamState:
    return UpstreamState(
        url=str(data["url"]),
        etag=data["etag"],
        last_modified=data["last_modified"],
        entries=[_entry_from_json(e) for e in data["entries"]],
        first_seen={k: datetime.fromisoformat(v) for k, v in data["first_seen"].items()},
    )


def _entry_to_json(entry: Entry) -> dict[str, Any]:
    data = asdict(entry)
    for key in ("published", "updated"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


def _entry_from_json(data: dict[str, Any]) -> Entry:
    def moment(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return Entry(
        id=data["id"],
        title=data["title"],
        link=data["link"],
        published=moment(data["published"]),
        updated=moment(data["updated"]),
        authors=tuple(data["authors"]),
        tags=tuple(data["tags"]),
        content_html=data["content_html"],
        summary=data["summary"],
        image_url=data["image_url"],
    )
