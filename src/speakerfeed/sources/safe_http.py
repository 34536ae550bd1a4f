"""Fetch an untrusted URL without letting it reach our own network or exhaust our memory.

Every hop of a redirect chain is checked: http/https only, at most ``max_redirects`` hops, no
loops. Each connection is made by ``guarded_transport``, which refuses non-public addresses when
the socket is opened (so DNS rebinding cannot slip through) and ends every socket operation by
one wall-clock deadline, ``timeout_seconds``, for the whole fetch: DNS, connect, TLS, every hop,
headers and body. Bodies are read as a stream and decompressed here, a bounded piece at a time, so
a gzip bomb is stopped at the size cap without ever being inflated in full.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from speakerfeed.config import FetchSettings
from speakerfeed.errors import (
    FetchError,
    ResponseTooLargeError,
    SchemeNotAllowedError,
    TooManyRedirectsError,
    UpstreamHTTPError,
)
from speakerfeed.sources.guarded_transport import (
    Deadline,
    GuardedTransport,
    is_blocked_address,
    one_line,
)

__all__ = ["FetchResult", "fetch", "is_blocked_address"]

ALLOWED_SCHEMES = frozenset({"http", "https"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, application/json;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
# Largest piece decompressed at once: memory stays near max_bytes + this, whatever the ratio.
_DECODE_STEP = 64 * 1024


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int  # 200, or 304 when the validators sent still match
    body: bytes  # decoded (decompressed); empty for 304
    etag: str | None
    last_modified: str | None
    final_url: str  # after redirects
    content_type: str  # "" when the server sent none


def fetch(
    url: str, settings: FetchSettings, *, etag: str | None, last_modified: str | None
) -> FetchResult:
    """GET ``url`` safely; raise a FetchError subclass with a one-line reason on any failure."""
    current = _checked_url(url)
    headers = {"User-Agent": settings.user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    timeout = httpx.Timeout(settings.timeout_seconds).as_dict()
    deadline = Deadline(settings.timeout_seconds)
    # The transport is used directly, not through httpx.Client: we are the redirect handler, and
    # nothing (proxies, .netrc, cookies) is picked up from the environment.
    with GuardedTransport(settings.allowed_networks, deadline) as transport:
        seen = {str(current)}
        for _hop in range(settings.max_redirects + 1):
            request = httpx.Request(
                "GET", current, headers=headers, extensions={"timeout": timeout}
            )
            outcome = _get(transport, request, settings, etag, last_modified)
            if isinstance(outcome, FetchResult):
                return outcome
            current = outcome
            if str(current) in seen:
                raise TooManyRedirectsError(f"redirect loop at {_short(str(current))}")
            seen.add(str(current))
    raise TooManyRedirectsError(
        f"more than {settings.max_redirects} redirects starting at {_short(url)}"
    )


def _get(
    transport: httpx.BaseTransport,
    request: httpx.Request,
    settings: FetchSettings,
    etag: str | None,
    last_modified: str | None,
) -> FetchResult | httpx.URL:
    """One hop: a FetchResult, or the checked URL to go to next."""
    url = request.url
    try:
        response = transport.handle_request(request)
        try:
            headers = response.headers
            status = response.status_code
            if status in REDIRECT_STATUSES and "location" in headers:
                return _checked_url(headers["location"], base=url)
            content_type = headers.get("content-type", "")
            if status == 304:
                return FetchResult(
                    304,
                    b"",
                    headers.get("etag", etag),
                    headers.get("last-modified", last_modified),
                    str(url),
                    content_type,
                )
            if status != 200:
                reason = f" {response.reason_phrase}" if response.reason_phrase else ""
                raise UpstreamHTTPError(f"HTTP {status}{reason} from {_short(str(url))}")
            body = _read_body(response, settings)
            return FetchResult(
                200, body, headers.get("etag"), headers.get("last-modified"), str(url), content_type
            )
        finally:
            response.close()
    except httpx.TimeoutException:
        raise FetchError(
            f"timed out after {settings.timeout_seconds:g}s fetching {_short(str(url))}"
        ) from None
    except httpx.HTTPError as exc:
        raise FetchError(f"cannot fetch {_short(str(url))}: {one_line(exc)}") from None


def _checked_url(raw: str, base: httpx.URL | None = None) -> httpx.URL:
    try:
        url = base.join(raw) if base is not None else httpx.URL(raw)
    except httpx.InvalidURL as exc:
        raise FetchError(f"invalid URL {_short(raw)}: {one_line(exc)}") from None
    if url.scheme not in ALLOWED_SCHEMES:
        what = f"scheme {url.scheme!r}" if url.scheme else "a path"
        raise SchemeNotAllowedError(f"refusing {what} (only http and https): {_short(raw)}")
    if not url.host:
        raise FetchError(f"URL has no host: {_short(raw)}")
    return url


def _read_body(response: httpx.Response, settings: FetchSettings) -> bytes:
    limit = settings.max_bytes
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ResponseTooLargeError(f"body of {int(declared)} bytes is over the {limit}-byte cap")
    decoder = _decoder(response.headers.get("content-encoding", ""))
    body = bytearray()
    raw_size = 0
    for chunk in response.iter_raw():
        raw_size += len(chunk)
        if raw_size > limit:
            raise ResponseTooLargeError(f"body is over the {limit}-byte cap")
        for piece in decoder.decode(chunk):
            body += piece
            if len(body) > limit:
                raise ResponseTooLargeError(f"decoded body is over the {limit}-byte cap")
    decoder.finish()
    return bytes(body)


class _Identity:
    def decode(self, data: bytes) -> Iterator[bytes]:
        yield data

    def finish(self) -> None:
        pass


class _Gzip:
    def __init__(self) -> None:
        self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)

    def decode(self, data: bytes) -> Iterator[bytes]:
        try:
            while True:
                # max_length bounds each piece; the rest of the input waits in unconsumed_tail.
                piece = self._inflater.decompress(data, _DECODE_STEP)
                yield piece
                data = self._inflater.unconsumed_tail
                if not data and len(piece) < _DECODE_STEP:
                    return
        except zlib.error as exc:
            raise FetchError(f"invalid gzip body: {exc}") from None

    def finish(self) -> None:
        if not self._inflater.eof:
            raise FetchError("gzip body is truncated")


def _decoder(content_encoding: str) -> _Identity | _Gzip:
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return _Identity()
    if encoding in ("gzip", "x-gzip"):
        return _Gzip()
    # We only ever ask for gzip, so anything else is a misbehaving server.
    raise FetchError(f"unsupported Content-Encoding {content_encoding!r}")


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
