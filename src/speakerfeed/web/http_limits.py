"""How `serve` speaks HTTP/1.1: uvicorn with its h11 protocol, a cap on the request head and
deadlines, so a client cannot make the server hold 100 MB of headers or a connection for ever.

Why h11 and not httptools (uvicorn's choice when it is installed): llhttp, under httptools, has no
limit on the size of a request's headers at all (100 MB of them got 200 OK and grew the server by
55 MB), and uvicorn offers no setting for one. h11 keeps at most ``max_incomplete_event_size``
bytes of an unfinished request head, but uvicorn answers every protocol error with 400. So:

- the request line and headers may take ``max_header_bytes``: beyond that the answer is 431
  (Request Header Fields Too Large, RFC 6585) and the connection is closed. h11 stops buffering
  past the cap; a whole oversized head that arrived in one read is caught when it is parsed;
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

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from speakerfeed.config.serving import ServerSettings

__all__ = ["LimitedH11Protocol", "server_options"]


def server_options(server: ServerSettings) -> dict[str, Any]:
    """The keyword arguments of uvicorn.run / uvicorn.Config that set our protocol and limits,
    and which proxies are believed (their X-Forwarded-For and X-Forwarded-Proto)."""
    proxies = list(server.trusted_proxies)
    return {
        "http": protocol_class(server.request_head_seconds),
        "h11_max_incomplete_event_size": server.max_header_bytes,
        "timeout_keep_alive": server.keep_alive_seconds,
        "limit_concurrency": server.max_connections,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        "server_header": False,
    }


def protocol_class(request_head_seconds: float) -> type[LimitedH11Protocol]:
    """LimitedH11Protocol with this head deadline (uvicorn makes the protocol from a class)."""
    return type("LimitedH11Protocol", (LimitedH11Protocol,), {"head_seconds": request_head_seconds})


class _Connection(h11.Connection):
    """h11's server connection that also refuses a complete head larger than the cap, and
    remembers the error it raised (uvicorn's protocol does not pass it on)."""

    def __init__(self, max_head_bytes: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head_bytes)
        self.max_head_bytes = max_head_bytes
        self.error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error = exc
            raise
        if isinstance(event, h11.Request) and _head_size(event) > self.max_head_bytes:
            self.error = h11.RemoteProtocolError("request head too large", error_status_hint=431)
            raise self.error
        return event


def _head_size(request: h11.Request) -> int:
    """The bytes of the request line and header fields, as sent (CRLFs included)."""
    line = len(request.method) + len(request.target) + len(b"  HTTP/1.1\r\n")
    return line + sum(len(name) + len(value) + 4 for name, value in request.headers) + 2


class LimitedH11Protocol(H11Protocol):
    head_seconds: float = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limit = config.h11_max_incomplete_event_size
        self.conn: _Connection = _Connection(limit if limit is not None else 16 * 1024)
        self.head_timer: asyncio.TimerHandle | None = None
        self.head_started = False  # a byte of the current request head has arrived

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self.head_started = True
            if self.head_timer is None:
                self._start_head_timer()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in (or the connection failed)
            self._stop_head_timer()

    def on_response_complete(self) -> None:
        self.head_started = False
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        error = self.conn.error
        if error is not None and error.error_status_hint == 431:
            self.logger.warning("Request refused: its line and headers are too large (431).")
            self._answer_and_close(431, "Request Header Fields Too Large")
        else:
            super().send_400_response(msg)

    def _start_head_timer(self) -> None:
        self.head_timer = self.loop.call_later(self.head_seconds, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_too_slow(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.head_started:
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
