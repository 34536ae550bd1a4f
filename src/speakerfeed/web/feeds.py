"""The output folder over HTTP: feeds, archive pages, the feeds index and the stylesheet.

A lean ASGI app rather than Starlette's StaticFiles, because feed readers poll: most requests are
conditional GETs of a few files, so the 304 path must be cheap. Per request it does one os.stat and
a dictionary look-up; everything else is worked out once per *file version* (the file's mtime, size
and inode, which stay put because the build leaves unchanged files alone, see output.py):

- a strong ETag that is a hash of the bytes (not Starlette's mtime-size one, so two servers or a
  rebuild that writes the same bytes give the same ETag), and Last-Modified from the mtime;
- the gzip body, for clients that accept gzip, with its own strong ETag (the identity ETag with
  "-gz" inside the quotes) and `Vary: Accept-Encoding`;
- the response headers of every variant, for 200 and for 304.

Bodies are kept in memory, least recently used first out, up to a total size; a file larger than
`max_file_bytes` is hashed once and streamed from disk, uncompressed.

Media types: each feed gets its own (application/rss+xml, application/atom+xml,
application/feed+json), archive pages too. A browser opening an RSS or Atom feed is the exception:
Chromium applies the feed's XSL stylesheet only to a document served as application/xml and shows
application/rss+xml as raw text, so a request that prefers HTML gets the same bytes as
application/xml (with `Vary: Accept`, so caches keep the two apart).

Only GET and HEAD (405 otherwise); a path segment starting with a dot ("..", ".", the build's
temporary ".name.tmp" files) or an encoded slash or backslash is a 404; a folder serves its
index.html, and a folder asked for without its trailing slash is redirected to it. Range requests
are answered with the whole file (200), which HTTP allows.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import mimetypes
import os
import stat
from collections import OrderedDict
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path, PurePosixPath

import anyio.to_thread
from starlette.types import Receive, Scope, Send

from speakerfeed.render.feeds import FORMATS

__all__ = ["FeedFiles", "accepts_gzip", "media_type_for", "wants_html"]

_SUBSCRIPTION_TYPES = {fmt.filename: fmt.media_type for fmt in FORMATS.values()}
_STYLED = frozenset({FORMATS["rss"].media_type, FORMATS["atom"].media_type})
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

_CHUNK = 256 * 1024
_NOT_FOUND = b"Not Found"
_NOT_ALLOWED = b"Method Not Allowed"
_TEXT_PLAIN = (b"content-type", b"text/plain; charset=utf-8")


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
def _http_date_seconds(value: str) -> int | None:
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _none_match(header: str, etag: str) -> bool:
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


def _content_type(relative: str) -> tuple[str, str]:
    """(the media type, the Content-Type value) of a file in the output folder."""
    media_type = media_type_for(relative)
    if media_type is not None:
        return media_type, f"{media_type}; charset=utf-8"
    guessed = mimetypes.guess_type(relative)[0] or "application/octet-stream"
    if guessed.startswith("text/"):
        return guessed, f"{guessed}; charset=utf-8"
    return guessed, guessed


def _compressible(media_type: str) -> bool:
    return media_type.startswith("text/") or media_type.endswith(_COMPRESSIBLE_SUFFIXES)


def _cache_control(full_path: str, relative: str) -> str:
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


Headers = list[tuple[bytes, bytes]]


class _Variant:
    """One representation: identity or gzip, for a feed reader or (styled feeds) a browser."""

    __slots__ = ("body", "etag", "not_modified", "ok")

    def __init__(self, etag: str, ok: Headers, not_modified: Headers, body: bytes | None) -> None:
        self.etag = etag
        self.ok = ok  # the 200 response's headers
        self.not_modified = not_modified  # the 304's: ETag, Last-Modified, Cache-Control, Vary
        self.body = body  # None: stream the file


class _Version:
    """What one version of one file is served as."""

    __slots__ = ("cost", "key", "last_modified", "variants")

    def __init__(
        self, key: tuple[int, int, int], last_modified: int, variants: tuple[_Variant, ...]
    ) -> None:
        self.key = key  # (st_mtime_ns, st_size, st_ino)
        self.last_modified = last_modified  # whole seconds, as the header says
        # [identity, identity for a browser, gzip, gzip for a browser]
        self.variants = variants
        bodies = {id(v.body): len(v.body) for v in variants if v.body is not None}
        self.cost = sum(bodies.values())


def _key(result: os.stat_result) -> tuple[int, int, int]:
    return (result.st_mtime_ns, result.st_size, result.st_ino)


class FeedFiles:
    """ASGI app serving ``directory`` (the output folder); mount it last, at "/"."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        cache_bytes: int = 64 * 1024 * 1024,
        max_file_bytes: int = 4 * 1024 * 1024,
        max_entries: int = 20_000,
    ) -> None:
        self.directory = os.path.realpath(directory)
        self.cache_bytes = cache_bytes
        self.max_file_bytes = min(max_file_bytes, cache_bytes)
        self.max_entries = max_entries
        self._versions: OrderedDict[str, _Version] = OrderedDict()
        self._cached_bytes = 0
        self._paths: dict[str, tuple[str, str] | None] = {}  # URL path -> (full path, relative)

    # -- the request path -------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _plain(send, 405, _NOT_ALLOWED, [(b"allow", b"GET, HEAD")])
            return
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        raw_path: bytes | None = scope.get("raw_path")
        if raw_path is not None and b"%" in raw_path and _encoded_separator(raw_path):
            target = None
        else:
            try:
                target = self._paths[path]
            except KeyError:
                target = self._remember(path)
        if target is None:
            await _plain(send, 404, _NOT_FOUND)
            return
        full, relative = target
        try:
            # os.stat on str paths, not pathlib: this is the hot path
            result = os.stat(full)  # noqa: PTH116
            if stat.S_ISDIR(result.st_mode):
                full += "/index.html"
                relative = relative + "/index.html" if relative else "index.html"
                result = os.stat(full)  # noqa: PTH116
                if not path.endswith("/"):
                    await _redirect_to_folder(scope, send)
                    return
        except (OSError, ValueError):
            await _plain(send, 404, _NOT_FOUND)
            return
        if not stat.S_ISREG(result.st_mode):
            await _plain(send, 404, _NOT_FOUND)
            return

        version = self._versions.get(full)
        if version is None or version.key != _key(result):
            version = await self._load(full, relative)
            if version is None:
                await _plain(send, 404, _NOT_FOUND)
                return
        else:
            self._versions.move_to_end(full)

        if_none_match = if_modified_since = None
        accept_encoding = accept = ""
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"if-modified-since":
                if_modified_since = value.decode("latin-1")
            elif name == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
            elif name == b"accept":
                accept = value.decode("latin-1")
        index = 2 if accept_encoding and accepts_gzip(accept_encoding) else 0
        if accept and wants_html(accept):
            index += 1
        variant = version.variants[index]

        if if_none_match is not None:
            fresh = _none_match(if_none_match, variant.etag)
        elif if_modified_since is not None:
            since = _http_date_seconds(if_modified_since)
            fresh = since is not None and version.last_modified <= since
        else:
            fresh = False
        if fresh:
            await send(
                {"type": "http.response.start", "status": 304, "headers": variant.not_modified}
            )
            await send({"type": "http.response.body", "body": b""})
        elif method == "HEAD":
            await send({"type": "http.response.start", "status": 200, "headers": variant.ok})
            await send({"type": "http.response.body", "body": b""})
        elif variant.body is not None:
            await send({"type": "http.response.start", "status": 200, "headers": variant.ok})
            await send({"type": "http.response.body", "body": variant.body})
        else:
            await self._stream(full, relative, version, index, send)

    def _remember(self, path: str) -> tuple[str, str] | None:
        target = self._resolve(path)
        if len(self._paths) >= 4096:
            self._paths.clear()
        self._paths[path] = target
        return target

    def _resolve(self, path: str) -> tuple[str, str] | None:
        """(full path, path relative to the folder) of the file a URL path names, or None if it
        may not name one."""
        if "\\" in path or "\x00" in path:
            return None
        parts = [part for part in path.split("/") if part]
        if any(part.startswith(".") for part in parts):
            return None
        relative = "/".join(parts)
        return (f"{self.directory}/{relative}" if relative else self.directory), relative

    # -- versions ----------------------------------------------------------------------------

    async def _load(self, full: str, relative: str) -> _Version | None:
        """Read, hash and compress a new version (in a thread: it may take milliseconds)."""
        try:
            version = await anyio.to_thread.run_sync(self._build_version, full, relative)
        except (OSError, ValueError):
            return None
        if version is None:
            return None
        previous = self._versions.pop(full, None)
        if previous is not None:
            self._cached_bytes -= previous.cost
        self._versions[full] = version
        self._cached_bytes += version.cost
        while self._versions and (
            self._cached_bytes > self.cache_bytes or len(self._versions) > self.max_entries
        ):
            _, evicted = self._versions.popitem(last=False)
            self._cached_bytes -= evicted.cost
        return version

    def _build_version(self, full: str, relative: str) -> _Version | None:
        real = os.path.realpath(full)
        if os.path.commonpath([real, self.directory]) != self.directory:
            return None  # a symbolic link out of the output folder
        with Path(full).open("rb") as handle:
            result = os.fstat(handle.fileno())
            if not stat.S_ISREG(result.st_mode):
                return None
            data: bytes | None = None
            if result.st_size <= self.max_file_bytes:
                data = handle.read()
                digest = hashlib.blake2b(data, digest_size=16).hexdigest()
            else:
                digest = hashlib.file_digest(
                    handle, lambda: hashlib.blake2b(digest_size=16)
                ).hexdigest()
        media_type, content_type = _content_type(relative)
        compressed = None
        if data is not None and len(data) >= MIN_GZIP_BYTES and _compressible(media_type):
            compressed = gzip.compress(data, compresslevel=6, mtime=0)
            if len(compressed) >= len(data):
                compressed = None
        styled = media_type in _STYLED
        vary = [b"Accept"] if styled else []
        if compressed is not None:
            vary.append(b"Accept-Encoding")
        last_modified = int(result.st_mtime)
        common: Headers = [
            (b"last-modified", formatdate(last_modified, usegmt=True).encode()),
            (b"cache-control", _cache_control(full, relative).encode()),
        ]
        if vary:
            common.append((b"vary", b", ".join(vary)))

        def variant(etag: str, body: bytes | None, length: int, type_: str, gz: bool) -> _Variant:
            validators = [(b"etag", etag.encode()), *common]
            ok = [(b"content-type", type_.encode()), (b"content-length", str(length).encode())]
            ok += validators
            if gz:
                ok.append((b"content-encoding", b"gzip"))
            return _Variant(etag, ok, validators, body)

        etag = f'"{digest}"'
        browser_type = "application/xml; charset=utf-8" if styled else content_type
        size = result.st_size if data is None else len(data)
        plain = variant(etag, data, size, content_type, False)
        browser = variant(etag, data, size, browser_type, False) if styled else plain
        if compressed is None:
            return _Version(_key(result), last_modified, (plain, browser, plain, browser))
        gz_etag = f'"{digest}-gz"'
        plain_gz = variant(gz_etag, compressed, len(compressed), content_type, True)
        browser_gz = (
            variant(gz_etag, compressed, len(compressed), browser_type, True)
            if styled
            else plain_gz
        )
        return _Version(_key(result), last_modified, (plain, browser, plain_gz, browser_gz))

    async def _stream(
        self, full: str, relative: str, version: _Version, index: int, send: Send
    ) -> None:
        """Send a file too large to keep in memory. The file is opened before the headers go out,
        and a file that changed since its headers were worked out is looked at afresh."""
        handle = await anyio.to_thread.run_sync(Path(full).open, "rb")
        try:
            if _key(os.fstat(handle.fileno())) != version.key:
                handle.close()
                fresh = await self._load(full, relative)
                if fresh is None:
                    await _plain(send, 404, _NOT_FOUND)
                    return
                handle = await anyio.to_thread.run_sync(Path(full).open, "rb")
                if _key(os.fstat(handle.fileno())) != fresh.key:
                    await _plain(send, 503, b"The file is changing; try again.")
                    return
                version = fresh
            variant = version.variants[index]
            await send({"type": "http.response.start", "status": 200, "headers": variant.ok})
            if variant.body is not None:  # it became small enough to keep
                await send({"type": "http.response.body", "body": variant.body})
                return
            while True:
                chunk = await anyio.to_thread.run_sync(handle.read, _CHUNK)
                more = len(chunk) == _CHUNK
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                if not more:
                    return
        finally:
            handle.close()


def _encoded_separator(raw_path: bytes) -> bool:
    """An encoded slash or backslash: a path segment that would not be one."""
    lowered = raw_path.lower()
    return b"%2f" in lowered or b"%5c" in lowered


async def _plain(send: Send, status: int, body: bytes, extra: Headers | None = None) -> None:
    headers = [_TEXT_PLAIN, (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect_to_folder(scope: Scope, send: Send) -> None:
    """/tags/news -> /tags/news/, as a relative reference so any prefix a proxy adds survives."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    location = raw.rsplit(b"/", 1)[-1] + b"/"
    if scope.get("query_string"):
        location += b"?" + scope["query_string"]
    headers = [(b"location", location), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 307, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
