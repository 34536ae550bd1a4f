"""Fetch an untrusted URL without letting it reach our own network or exhaust our memory.

Every hop of a redirect chain is checked: http/https only, at most ``max_redirects`` hops, no
loops. The address check happens when the socket is opened (see ``_GuardedBackend``), after the
one and only DNS look-up for that connection, so a name that resolves to a public address when
checked and to a private one when connecting (DNS rebinding) cannot slip through. Bodies are
read as a stream and decompressed here, a bounded piece at a time, so a gzip bomb is stopped at
the size cap without ever being inflated in full.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import httpcore
import httpx

from speakerfeed.config import FetchSettings
from speakerfeed.errors import (
    BlockedAddressError,
    FetchError,
    ResponseTooLargeError,
    SchemeNotAllowedError,
    TooManyRedirectsError,
    UpstreamHTTPError,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, application/json;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
# Largest piece decompressed at once: memory stays near max_bytes + this, whatever the ratio.
_DECODE_STEP = 64 * 1024

_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: reaches the embedded IPv4 address


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
    # The transport is used directly, not through httpx.Client: we are the redirect handler, and
    # nothing (proxies, .netrc, cookies) is picked up from the environment.
    with _GuardedTransport(settings.allowed_networks) as transport:
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


def is_blocked_address(address: IPAddress, allowed: Iterable[Network] = ()) -> bool:
    """True for any address that is not plainly on the public internet, unless allow-listed."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 on a dual-stack socket
    if any(address.version == net.version and address in net for net in allowed):
        return False
    return _is_special(address) or any(_is_special(inner) for inner in _embedded_ipv4(address))


def _is_special(address: IPAddress) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
        or address in _SHARED_ADDRESS_SPACE
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    # 6to4, Teredo and NAT64 addresses are routed to the IPv4 address inside them.
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    inner = [address.sixtofour] if address.sixtofour else []
    inner += list(address.teredo or ())
    if address in _NAT64:
        inner.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return inner


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
        raise FetchError(f"cannot fetch {_short(str(url))}: {_one_line(exc)}") from None


def _checked_url(raw: str, base: httpx.URL | None = None) -> httpx.URL:
    try:
        url = base.join(raw) if base is not None else httpx.URL(raw)
    except httpx.InvalidURL as exc:
        raise FetchError(f"invalid URL {_short(raw)}: {_one_line(exc)}") from None
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
    # The timeout applies per read; this deadline stops a server trickling bytes for ever.
    deadline = time.monotonic() + settings.timeout_seconds
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
        if time.monotonic() > deadline:
            raise FetchError(f"timed out after {settings.timeout_seconds:g}s reading the body")
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


def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (one look-up per connection, used for the connect)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host {host}: {_one_line(exc)}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, but it connects only to vetted IP literals.

    TLS still verifies and sends SNI for the request's host name: httpcore passes the origin's
    host to ``start_tls``, not the address we connected to.
    """

    def __init__(self, allowed: tuple[Network, ...]) -> None:
        self._allowed = allowed
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolve(host, port)
        # Refuse if any address is blocked: a name mixing public and private ones is hostile.
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
            if is_blocked_address(address, self._allowed):
                raise BlockedAddressError(f"blocked address {address} for host {host}")
        last_error: httpcore.ConnectError | None = None
        for text in addresses:
            try:
                return self._inner.connect_tcp(text, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"no address for host {host}")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise FetchError("Unix sockets are never fetched")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    # httpx.HTTPTransport does this mapping with a private helper; these are the cases we meet.
    try:
        yield
    except httpcore.TimeoutException as exc:
        raise httpx.TimeoutException(_one_line(exc)) from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
        raise httpx.TransportError(_one_line(exc)) from exc


class _CoreStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class _GuardedTransport(httpx.BaseTransport):
    """httpx.HTTPTransport's request handling over a pool that uses ``_GuardedBackend``."""

    def __init__(self, allowed: tuple[Network, ...]) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_GuardedBackend(allowed),
            retries=0,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_CoreStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
