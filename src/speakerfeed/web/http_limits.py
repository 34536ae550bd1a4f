"""How `serve` speaks HTTP/1.1: uvicorn's httptools protocol with a cap on the request head and
deadlines, so a client cannot make the server hold 100 MB of headers or a connection for ever.

uvicorn offers no limit on a request's head with httptools (llhttp buffers header values whole:
100 MB of headers got 200 OK and grew the server by 55 MB), and with h11 it answers 400, not 431,
and lets through any head that arrives in one read. h11, pure Python, also costs about three
times the CPU of httptools per request (bench/serve.py: 412 against 141 µs for a 304), and feed
readers' 304s are most of the traffic. So httptools, with these checks:

- the request line and headers may take ``max_header_bytes``: beyond that the answer is 431
  (Request Header Fields Too Large, RFC 6585) and the connection is closed. A head that is still
  incomplete after a read is measured by the bytes read since it began (so llhttp never holds
  more than one read past the cap); a complete one by its parsed line and fields;
- a request head must arrive within ``request_head_seconds`` of the connection opening or, on a
  kept-alive connection, of its first byte (a slow trickle of header bytes is a well-known way
  to hold connections): 408, closed;
- an idle kept-alive connection closes after ``keep_alive_seconds`` (uvicorn's own timer);
- at most ``max_connections`` connections and requests at once (uvicorn answers 503 beyond).

Bodies are capped per route, by the code reading them (web.forms, the webhook).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from speakerfeed.config.serving import ServerSettings

__all__ = ["LimitedHttpToolsProtocol", "server_options"]


def server_options(server: ServerSettings) -> dict[str, Any]:
    """The keyword arguments of uvicorn.run / uvicorn.Config that set our protocol and limits,
    and which proxies are believed (their X-Forwarded-For and X-Forwarded-Proto)."""
    proxies = list(server.trusted_proxies)
    return {
        "http": protocol_class(server.max_header_bytes, server.request_head_seconds),
        "timeout_keep_alive": server.keep_alive_seconds,
        "limit_concurrency": server.max_connections,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        "server_header": False,
    }


def protocol_class(max_head_bytes: int, head_seconds: float) -> type[LimitedHttpToolsProtocol]:
    """LimitedHttpToolsProtocol with these limits (uvicorn makes the protocol from a class)."""
    limits = {"max_head_bytes": max_head_bytes, "head_seconds": head_seconds}
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), limits)


class _HeadTooLargeError(Exception):
    """Raised in a parser callback: llhttp stops, and uvicorn answers (see send_400_response)."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes: int = 16 * 1024
    head_seconds: float = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.reading_head = True  # between one request's end and the next one's headers' end
        self.read_in_head = 0  # bytes read while reading_head
        self.parsed_head = 0  # the current head's line and fields, as parsed
        self.head_too_large = False
        self.head_timer: asyncio.TimerHandle | None = None

    # -- the connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.reading_head:
            self.read_in_head += len(data)
            if self.head_timer is None:
                self._start_head_timer()
        super().data_received(data)
        # Still no end of the head: everything read since it began is head.
        too_much = self.reading_head and self.read_in_head > self.max_head_bytes
        if too_much and not self.transport.is_closing():
            self._refuse_large_head()

    def send_400_response(self, msg: str) -> None:
        if self.head_too_large:
            self._refuse_large_head()
        else:
            super().send_400_response(msg)

    # -- parser callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.parsed_head = len(b"  HTTP/1.1\r\n\r\n")
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self._stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.reading_head, self.read_in_head = True, 0
        super().on_message_complete()

    def _count(self, size: int) -> None:
        self.parsed_head += size
        if self.parsed_head > self.max_head_bytes:
            self.head_too_large = True
            raise _HeadTooLargeError

    # -- answers -------------------------------------------------------------------------------

    def _refuse_large_head(self) -> None:
        self.logger.warning("Request refused: its line and headers are too large (431).")
        self._answer_and_close(431, "Request Header Fields Too Large")

    def _start_head_timer(self) -> None:
        self.head_timer = self.loop.call_later(self.head_seconds, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_too_slow(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or not self.reading_head:
            return
        if self.read_in_head:
            self._answer_and_close(408, "Request Timeout")
        else:  # nothing asked (a browser's preconnect, say): just close
            self.transport.close()

    def _answer_and_close(self, status: int, reason: str) -> None:
        """A short plain-text answer with Connection: close, then close: like uvicorn's 400."""
        body = reason.encode("ascii")
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode("ascii")
        self.transport.write(head + body)
        self.transport.close()
