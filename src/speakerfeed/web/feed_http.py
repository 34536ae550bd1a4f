"""The HTTP rules of the output folder: media types, content negotiation, conditional requests
and Cache-Control, as pure functions of a path or a header (web.feeds applies them).

Media types: each feed gets its own (application/rss+xml, application/atom+xml,
application/feed+json), archive pages too. A browser opening an RSS or Atom feed is the exception:
Chromium applies the feed's XSL stylesheet only to a document served as application/xml and shows
application/rss+xml as raw text, so a request that prefers HTML gets the same bytes as
application/xml (with `Vary: Accept`, so caches keep the two apart).
"""

from __future__ import annotations

import functools
import mimetypes
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath

from speakerfeed.render.feeds import FORMATS

_SUBSCRIPTION_TYPES = {fmt.filename: fmt.media_type for fmt in FORMATS.values()}
# The feeds a browser is shown through their XSL stylesheet (served as application/xml to it).
STYLED = frozenset({FORMATS["rss"].media_type, FORMATS["atom"].media_type})
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
_COMPRESSIBLE_SUFFIXES = ("+xml", "+json", "/xml", "/json", "/javascript", "/xslt+xml")


def media_type_for(relative: str) -> str | None:
    """The feed media type of an output path, or None to let the file name decide."""
    path = PurePosixPath(relative)
    if path.name in _SUBSCRIPTION_TYPES:
        return _SUBSCRIPTION_TYPES[path.name]
    # archive/<format>/<n>.<ext>
    if len(path.parts) >= 3 and path.parts[-3] == "archive" and path.parts[-2] in FORMATS:
        return FORMATS[path.parts[-2]].media_type
    if path.suffix == ".xsl":
        return "text/xsl"
    return None


def wants_html(accept: str) -> bool:
    """True for a browser navigating to the URL (it asks for text/html first), not a feed reader."""
    first = accept.split(",", 1)[0].split(";", 1)[0].strip().lower()
    return first == "text/html"


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
