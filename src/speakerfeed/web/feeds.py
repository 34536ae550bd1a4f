"""The output folder over HTTP: feeds, archive pages, the feeds' HTML pages and the feeds index.

A lean ASGI app rather than Starlette's StaticFiles, because feed readers poll: most requests are
conditional GETs of a few files, so the 304 path must be cheap. Per request it does one os.stat and
a dictionary look-up; everything else is worked out once per *file version* (web.feed_versions:
ETags, gzip, headers) by the rules of web.feed_http (media types, negotiation, Cache-Control).

Bodies are kept in memory, least recently used first out, up to a total size; a file larger than
`max_file_bytes` is hashed once and streamed from disk, uncompressed.

Only GET and HEAD (405 otherwise); a path segment starting with a dot ("..", ".", the build's
temporary ".name.tmp" files) or an encoded slash or backslash is a 404; a folder serves its
index.html, and a folder asked for without its trailing slash is redirected to it. Range requests
are answered with the whole file (200), which HTTP allows. A browser asking for a feed (Accept
prefers text/html) gets the feed's page from beside it (rss.html for rss.xml), when it exists.
"""

from __future__ import annotations

import os
import stat
from collections import OrderedDict
from pathlib import Path

import anyio.to_thread
from starlette.types import Receive, Scope, Send

from speakerfeed.web.feed_http import (
    CACHE_FEED,
    CACHE_FULL_ARCHIVE,
    CACHE_HTML,
    accepts_gzip,
    http_date_seconds,
    media_type_for,
    none_match,
    page_for,
    wants_html,
)
from speakerfeed.web.feed_versions import Headers, Version, build_version, file_key

__all__ = [
    "CACHE_FEED",
    "CACHE_FULL_ARCHIVE",
    "CACHE_HTML",
    "FeedFiles",
    "accepts_gzip",
    "media_type_for",
    "wants_html",
]

_CHUNK = 256 * 1024
_NOT_FOUND = b"Not Found"
_NOT_ALLOWED = b"Method Not Allowed"
_TEXT_PLAIN = (b"content-type", b"text/plain; charset=utf-8")


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
        self._versions: OrderedDict[str, Version] = OrderedDict()
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
        if accept:
            page = page_for(relative)
            if page is not None and wants_html(accept, media_type_for(relative) or ""):
                # The page if it was built; otherwise the feed itself.
                page_full = f"{self.directory}/{page}"
                if os.path.isfile(page_full):  # noqa: PTH113
                    full, relative = page_full, page
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
        if version is None or version.key != file_key(result):
            version = await self._load(full, relative)
            if version is None:
                await _plain(send, 404, _NOT_FOUND)
                return
        else:
            self._versions.move_to_end(full)

        index = 1 if accept_encoding and accepts_gzip(accept_encoding) else 0
        variant = version.variants[index]

        if if_none_match is not None:
            fresh = none_match(if_none_match, variant.etag)
        elif if_modified_since is not None:
            since = http_date_seconds(if_modified_since)
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

    async def _load(self, full: str, relative: str) -> Version | None:
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

    def _build_version(self, full: str, relative: str) -> Version | None:
        return build_version(self.directory, full, relative, max_file_bytes=self.max_file_bytes)

    async def _stream(
        self, full: str, relative: str, version: Version, index: int, send: Send
    ) -> None:
        """Send a file too large to keep in memory. The file is opened before the headers go out,
        and a file that changed since its headers were worked out is looked at afresh."""
        handle = await anyio.to_thread.run_sync(Path(full).open, "rb")
        try:
            if file_key(os.fstat(handle.fileno())) != version.key:
                handle.close()
                fresh = await self._load(full, relative)
                if fresh is None:
                    await _plain(send, 404, _NOT_FOUND)
                    return
                handle = await anyio.to_thread.run_sync(Path(full).open, "rb")
                if file_key(os.fstat(handle.fileno())) != fresh.key:
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
