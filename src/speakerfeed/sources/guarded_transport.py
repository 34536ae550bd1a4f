"""The transport under ``safe_http``: connects only to vetted public addresses, and ends every
socket operation by the fetch's wall-clock deadline.

The address check happens when the socket is opened (``_GuardedBackend``), after the one and only
DNS look-up for that connection, so a name that resolves to a public address when checked and to
a private one when connecting (DNS rebinding) cannot slip through. httpx's timeouts are per
operation, so a server sending a byte a second never trips them; here each read, write, connect,
TLS handshake and DNS look-up gets at most the time left before the ``Deadline``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

from speakerfeed.errors import BlockedAddressError, FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: reaches the embedded IPv4 address


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


class Deadline:
    """A point in wall-clock time by which a whole fetch must be over."""

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds

    def left(
        self,
        timeout: float | None = None,
        error: type[httpcore.TimeoutException] = httpcore.ReadTimeout,
    ) -> float:
        """Seconds the next operation may take: ``timeout``, but never past the deadline."""
        remaining = self._at - time.monotonic()
        if remaining <= 0:
            raise error("the fetch's deadline has passed")
        return remaining if timeout is None else min(timeout, remaining)


def _resolve(host: str, port: int, deadline: Deadline) -> list[str]:
    """Every address ``host`` resolves to (one look-up per connection, used for the connect)."""
    # getaddrinfo takes no timeout: it runs in a daemon thread, abandoned at the deadline.
    outcome: list[list[str] | Exception] = []

    def look_up() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            outcome.append(list(dict.fromkeys(str(info[4][0]) for info in infos)))
        except (OSError, UnicodeError) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=look_up, name=f"resolve {host}", daemon=True)
    thread.start()
    thread.join(deadline.left(error=httpcore.ConnectTimeout))
    if not outcome:
        raise httpcore.ConnectTimeout(f"no answer from DNS for {host}")
    if isinstance(outcome[0], Exception):
        raise FetchError(f"cannot resolve host {host}: {one_line(outcome[0])}")
    return outcome[0]


class _DeadlineStream(httpcore.NetworkStream):
    """A connected socket whose every read, write and handshake ends by the deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline.left(timeout, httpcore.ConnectTimeout)
        tls = self._inner.start_tls(ssl_context, server_hostname, left)
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, but it connects only to vetted IP literals, by the deadline.

    TLS still verifies and sends SNI for the request's host name: httpcore passes the origin's
    host to ``start_tls``, not the address we connected to.
    """

    def __init__(self, allowed: tuple[Network, ...], deadline: Deadline) -> None:
        self._allowed = allowed
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolve(host, port, self._deadline)
        # Refuse if any address is blocked: a name mixing public and private ones is hostile.
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
            if is_blocked_address(address, self._allowed):
                raise BlockedAddressError(f"blocked address {address} for host {host}")
        last_error: httpcore.ConnectError | None = None
        for text in addresses:
            left = self._deadline.left(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(text, port, left, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last_error = exc
                continue
            return _DeadlineStream(stream, self._deadline)
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
        raise httpx.TimeoutException(one_line(exc)) from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
        raise httpx.TransportError(one_line(exc)) from exc


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


class GuardedTransport(httpx.BaseTransport):
    """httpx.HTTPTransport's request handling over a pool that uses ``_GuardedBackend``."""

    def __init__(self, allowed: tuple[Network, ...], deadline: Deadline) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_GuardedBackend(allowed, deadline),
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


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
