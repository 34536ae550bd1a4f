"""The HTTP rules of the output folder: media types, content negotiation, conditional requests
and Cache-Control, as pure functions of a path or a header (web.feeds applies them).

Media types: each feed gets its own (application/rss+xml, application/atom+xml,
application/feed+json), archive pages too. A person's browser opening a feed is the exception: a
request whose Accept header prefers text/html to the feed's type gets the feed's HTML page, built
next to it (rss.html for rss.xml, render.feed_pages), and both answers carry `Vary: Accept`, so
caches keep the two apart. Feed readers (a feed type first, "*/*", or no Accept) get the feed.
"""

from __future__ import annotations

import functools
import mimetypes
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath

from speakerfeed.render.feeds import FORMATS

_SUBSCRIPTION_TYPES = {fmt.filename: fmt.media_type for fmt in FORMATS.values()}
# Subscription document -> the HTML page a browser is shown instead, in the same folder (so the
# page's relative links work at either URL).
_PAGES = {fmt.filename: fmt.page for fmt in FORMATS.values()}
# The files whose answer depends on Accept: the subscription documents and their pages.
NEGOTIATED = frozenset(_PAGES) | frozenset(_PAGES.values())
_ARCHIVE_EXTENSIONS = {name: fmt.extension for name, fmt in FORMATS.items()}

# Cache-Control. Every response carries a strong ETag, so a cache that revalidates gets a cheap 304.
# - HTML pages (the feeds index, the digests' pages) change whenever a feed or digest is added:
#   "no-cache", i.e. a cache may keep them but asks each time.
# - Feeds and everything else: five minutes, well under any sensible polling interval, so a
#   CDN or proxy absorbs bursts of readers while a new article shows within minutes.
# - An archive page with a newer page after it is full and does not change (RFC 5005, plan.py),
#   only an edit of an old article rewrites it: a day. The newest archive page gets its
#   next-archive link when the next page appears, so it keeps the feeds' five minutes.
CACHE_HTML = "no-cache"
CACHE_FEED = "public, max-age=300"
CACHE_FULL_ARCHIVE = "public, max-age=86400"

# Below about one TCP segment gzip saves no round trip; skipping it keeps tiny files simple.
MIN_GZIP_BYTES = 1400
_COMPRESSIBLE_SUFFIXES = ("+xml", "+json", "/xml", "/json", "/javascript")


def media_type_for(relative: str) -> str | None:
    """The feed media type of an output path, or None to let the file name decide."""
    path = PurePosixPath(relative)
    if path.name in _SUBSCRIPTION_TYPES:
        return _SUBSCRIPTION_TYPES[path.name]
    # archive/<format>/<n>.<ext>
    if len(path.parts) >= 3 and path.parts[-3] == "archive" and path.parts[-2] in FORMATS:
        return FORMATS[path.parts[-2]].media_type
    return None


def page_for(relative: str) -> str | None:
    """The output path of the HTML page shown to a browser for this file, if it is a feed that
    has one (a subscription document; archive pages have none)."""
    folder, _, name = relative.rpartition("/")
    page = _PAGES.get(name)
    if page is None:
        return None
    return f"{folder}/{page}" if folder else page


def negotiated(relative: str) -> bool:
    """Whether the answer for this output path depends on the Accept header."""
    return relative.rpartition("/")[2] in NEGOTIATED


@functools.lru_cache(maxsize=256)
def wants_html(accept: str, media_type: str = "application/xml") -> bool:
    """True when the request prefers text/html to ``media_type`` (RFC 9110 12.5.1: the most
    specific range that matches gives a type its q): a person's browser, which sends
    "text/html,...,application/xml;q=0.9,*/*;q=0.8". A tie goes to the feed, so "*/*" or
    "text/html, application/rss+xml" (a feed reader being polite) still gets the feed."""
    ranges = _media_ranges(accept)
    html = _quality(ranges, "text/html")
    return html > 0 and html > _quality(ranges, media_type.lower())


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for item in accept.split(","):
        media_range, _, parameters = item.partition(";")
        q = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(value.strip())))
                except ValueError:
                    q = 0.0
        if media_range.strip():
            ranges.append((media_range.strip().lower(), q))
    return ranges


def _quality(ranges: list[tuple[str, float]], media_type: str) -> float:
    main = media_type.split("/", 1)[0]
    best, specificity = 0.0, -1
    for media_range, q in ranges:
        if media_range == media_type:
            level = 2
        elif media_range == f"{main}/*":
            level = 1
        elif media_range == "*/*":
            level = 0
        else:
            continue
        if level > specificity:
            best, specificity = q, level
    return best


@functools.lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (RFC 9110 12.5.3): "gzip" or "*" with q > 0;
    an explicit "gzip;q=0" refuses it whatever "*" says."""
    gzip_q: float | None = None
    any_q: float | None = None
    for item in accept_encoding.split(","):
        coding, _, parameters = item.partition(";")
        coding = coding.strip().lower()
        q = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if coding in ("gzip", "x-gzip"):
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            any_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return any_q is not None and any_q > 0


@functools.lru_cache(maxsize=256)
def http_date_seconds(value: str) -> int | None:
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def none_match(header: str, etag: str) -> bool:
    """If-None-Match with the weak comparison RFC 9110 13.1.2 asks for: W/"x" matches "x"."""
    if header == etag:
        return True
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def content_type_for(relative: str) -> tuple[str, str]:
    """(the media type, the Content-Type value) of a file in the output folder."""
    media_type = media_type_for(relative)
    if media_type is not None:
        return media_type, f"{media_type}; charset=utf-8"
    guessed = mimetypes.guess_type(relative)[0] or "application/octet-stream"
    if guessed.startswith("text/"):
        return guessed, f"{guessed}; charset=utf-8"
    return guessed, guessed


def compressible(media_type: str) -> bool:
    return media_type.startswith("text/") or media_type.endswith(_COMPRESSIBLE_SUFFIXES)


def cache_control(full_path: str, relative: str) -> str:
    if relative.endswith((".html", ".htm")):
        return CACHE_HTML
    path = PurePosixPath(relative)
    parts = path.parts
    if len(parts) >= 3 and parts[-3] == "archive" and parts[-2] in _ARCHIVE_EXTENSIONS:
        extension = _ARCHIVE_EXTENSIONS[parts[-2]]
        number = path.name.removesuffix(extension)
        if path.name.endswith(extension) and number.isdigit():
            newer = Path(full_path).with_name(f"{int(number) + 1}{extension}")
            if newer.is_file():
                return CACHE_FULL_ARCHIVE
    return CACHE_FEED
