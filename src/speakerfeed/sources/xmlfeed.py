"""RSS and Atom bodies to raw entries via feedparser, once XML declaring entities is refused.

The body's encoding is decided first, by feedparser's own rules (BOM, XML declaration, HTTP
charset, RFC 3023), and the document is transcoded to UTF-8 with a UTF-8 declaration. The entity
check and feedparser then both read those same UTF-8 bytes, so no encoding (UTF-32, EBCDIC, ...)
can show one of them a different document from the other.
"""

from __future__ import annotations

import html
import io
import re
import time
import xml.sax
import xml.sax.handler
from datetime import UTC, datetime
from typing import Any

import defusedxml
import defusedxml.sax
import feedparser
import feedparser.encodings

from speakerfeed.sources.upstream_entry import RawEntry, UnreadableFeedError, as_str, one_line

# An entity declaration in malformed XML, which feedparser's lenient parser may still honour;
# searched for in the decoded text, case-blind because that parser is.
_ENTITY_DECLARATION = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)


def read_xml_feed(body: bytes, content_type: str) -> list[RawEntry]:
    """The entries of an RSS or Atom feed; UnreadableFeedError when there is no feed to read."""
    utf8, headers = _as_utf8(body, content_type)
    _refuse_entities(utf8)
    try:
        # A stream, never the bytes themselves: feedparser.parse() opens a bytes argument as a
        # file path when it can, so a body reading "/etc/passwd" would be read from our disk.
        # sanitize_html=False: speakerfeed.sources.sanitize (nh3) is the one sanitiser, with our
        # allow-list.
        parsed = feedparser.parse(io.BytesIO(utf8), response_headers=headers, sanitize_html=False)
    except Exception as exc:  # untrusted input can trip any parser bug; report, don't crash
        raise UnreadableFeedError(f"feedparser failed: {type(exc).__name__}") from None
    if not parsed.entries:
        if parsed.get("bozo"):
            raise UnreadableFeedError(
                f"not a readable feed: {one_line(parsed.get('bozo_exception'))}"
            )
        if not parsed.get("version"):
            raise UnreadableFeedError("not an RSS, Atom or JSON feed")
    return [_from_feedparser(entry) for entry in parsed.entries]


def _as_utf8(body: bytes, content_type: str) -> tuple[bytes, dict[str, str]]:
    """The body in UTF-8 with a UTF-8 declaration, and the headers that make feedparser keep it.

    feedparser's own detection decides the encoding, so the document is read as it always was.
    """
    headers = {"content-type": content_type} if content_type else {}
    outcome: dict[str, Any] = {}
    try:
        utf8 = feedparser.encodings.convert_to_utf8(headers, body, outcome)
    except Exception as exc:  # untrusted input can trip any parser bug; report, don't crash
        raise UnreadableFeedError(f"cannot decode the feed: {type(exc).__name__}") from None
    if not outcome.get("encoding") or not isinstance(utf8, bytes):
        raise UnreadableFeedError("refused: cannot tell the document's character encoding")
    media_type = content_type.split(";", 1)[0].strip()
    return utf8, {"content-type": f"{media_type or 'application/xml'}; charset=utf-8"}


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
    except (xml.sax.SAXException, ValueError):
        # Not well-formed (expat raises ValueError for a declared encoding it cannot read, such
        # as UTF-32): feedparser's lenient parser may still read it, unless a declaration could
        # be hiding behind the error.
        if _ENTITY_DECLARATION.search(body):
            raise UnreadableFeedError("refused: malformed XML that declares entities") from None


def _from_feedparser(entry: Any) -> RawEntry:
    title_type = str((entry.get("title_detail") or {}).get("type", "text/plain"))
    content = entry.get("content") or []
    main = next((c for c in content if "html" in str(c.get("type", ""))), None) or (
        content[0] if content else None
    )
    return RawEntry(
        id=as_str(entry.get("id")),
        title=as_str(entry.get("title")),
        title_is_html="html" in title_type,
        link=as_str(entry.get("link")),
        # dict.get: FeedParserDict.get would fall back from updated to published, with a warning.
        published=_from_struct(dict.get(entry, "published_parsed")),
        updated=_from_struct(dict.get(entry, "updated_parsed")),
        authors=[as_str(a.get("name") or a.get("email")) for a in entry.get("authors") or []],
        tags=[as_str(t.get("term") or t.get("label")) for t in entry.get("tags") or []],
        content_html=_detail_html(main),
        summary_html=_detail_html(entry.get("summary_detail")),
        image_url=_feedparser_image(entry),
    )


def _detail_html(detail: Any) -> str:
    """The HTML of a feedparser text construct; plain text is escaped."""
    if not detail:
        return ""
    value = as_str(detail.get("value"))
    return value if "html" in as_str(detail.get("type")) else html.escape(value)


def _feedparser_image(entry: Any) -> str:
    for thumbnail in entry.get("media_thumbnail") or []:
        if thumbnail.get("url"):
            return as_str(thumbnail["url"])
    for media in entry.get("media_content") or []:
        if media.get("medium") == "image" or as_str(media.get("type")).startswith("image/"):
            return as_str(media.get("url"))
    for enclosure in entry.get("enclosures") or []:
        if as_str(enclosure.get("type")).startswith("image/"):
            return as_str(enclosure.get("href"))
    return ""


def _from_struct(value: Any) -> datetime | None:
    # feedparser's *_parsed are UTC struct_times.
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except ValueError:
        return None
