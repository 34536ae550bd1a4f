"""The HTTP limits `serve` runs with (web.http_limits), on a real uvicorn over raw sockets: a
request head over the cap is answered 431 whether it trickles in or arrives whole, a slow head
408, a form body that trickles 408, an idle connection is closed, and too many at once get 503.
(The 100 MB of headers against the real `speakerfeed serve`, with its memory measured, is in
tests/test_serve.py.)"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from speakerfeed.config.serving import ServerSettings
from speakerfeed.web.http_limits import server_options
from tests.support.asgi_server import running
from tests.support.webapp import start

LIMITS = ServerSettings(
    max_header_bytes=8 * 1024, request_head_seconds=0.6, keep_alive_seconds=1, max_connections=4
)
# What a browser sends, give or take: the cap must leave room for real requests.
BROWSER_HEAD = (
    b"GET /rss.xml?utm_source=newsletter HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/131.0.0.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-GB,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\n"
)


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    await PlainTextResponse("hello")(scope, receive, send)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with running(hello, **server_options(LIMITS)) as url:
        yield int(url.rsplit(":", 1)[1])


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or 5 s pass)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def cookie_header(size: int) -> bytes:
    return b"Cookie: " + b"session=" + b"x" * (size - len(b"Cookie: session=\r\n")) + b"\r\n"


def test_a_real_browsers_request_with_cookies_under_the_cap_is_answered(port: int) -> None:
    head = BROWSER_HEAD + cookie_header(8 * 1024 - len(BROWSER_HEAD) - 2 - 30)
    with connect(port) as sock:
        sock.sendall(head + b"Connection: close\r\n\r\n")
        response = answer(sock)
    assert status_of(response) == 200
    assert response.endswith(b"hello")


def test_a_head_over_the_cap_sent_in_one_piece_is_431(port: int) -> None:
    # 9 KB arrives in one read: the parser takes it whole, and the size of what it parsed counts.
    with connect(port) as sock:
        sock.sendall(BROWSER_HEAD + cookie_header(9 * 1024) + b"\r\n")
        response = answer(sock)
    assert status_of(response) == 431
    assert b"connection: close" in response.lower()


def test_a_request_line_over_the_cap_is_431(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /?q=" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(answer(sock)) == 431


@pytest.mark.parametrize(
    ("start", "piece"),
    [
        pytest.param(b"", b"X-Padding: " + b"p" * 1000 + b"\r\n", id="many-fields"),
        pytest.param(b"X-Endless: ", b"v" * 1013, id="one-endless-value"),  # llhttp buffers these
    ],
)
def test_headers_that_keep_coming_are_cut_off_at_the_cap_with_431(
    port: int, start: bytes, piece: bytes
) -> None:
    sent = 0
    with connect(port) as sock:
        sock.sendall(BROWSER_HEAD + start)
        sock.settimeout(0.02)
        response = b""
        try:
            while sent < 10 * 1024 * 1024 and not response:
                sock.sendall(piece)
                sent += len(piece)
                with contextlib.suppress(TimeoutError):
                    response = sock.recv(65536)
        except (BrokenPipeError, ConnectionResetError):
            pytest.fail(f"closed without an answer after {sent} bytes")
    assert status_of(response) == 431
    assert sent < 64 * 1024  # refused near the cap, not after megabytes


def test_a_head_that_trickles_in_too_slowly_is_408(port: int) -> None:
    with connect(port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        try:
            for byte in b"Host: 127.0.0.1\r\nUser-Agent: slow\r\n":
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = answer(sock)
    assert status_of(response) == 408
    assert time.monotonic() - started < 3


def test_a_connection_that_never_asks_is_closed(port: int) -> None:
    with connect(port) as sock:
        started = time.monotonic()
        assert answer(sock) == b""  # closed, no answer: nothing was asked
        assert 0.5 < time.monotonic() - started < 3


def test_an_idle_kept_alive_connection_is_closed_but_a_prompt_one_is_served(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert status_of(first) == 200
        time.sleep(0.3)  # well within the keep-alive time: the head timer starts afresh
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(sock.recv(65536)) == 200
        started = time.monotonic()
        assert answer(sock) == b""
        assert 0.8 < time.monotonic() - started < 3  # keep_alive_seconds = 1


def test_connections_beyond_the_limit_get_503(port: int) -> None:
    idle = [connect(port) for _ in range(4)]
    try:
        time.sleep(0.1)
        with connect(port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert status_of(answer(sock)) == 503
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    with connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status_of(answer(sock)) == 200


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_header_bytes", 100, "greater than or equal to 1024"),
        ("request_head_seconds", 0, "greater than 0"),
        ("keep_alive_seconds", 0, "greater than or equal to 1"),
        ("max_connections", 0, "greater than or equal to 1"),
    ],
)
def test_limits_out_of_range_are_refused_naming_the_key(
    tmp_path: object, field: str, value: int, message: str
) -> None:
    from speakerfeed.errors import ConfigError
    from tests.support.project import project_settings

    with pytest.raises(ConfigError) as caught:
        project_settings(server={field: value})
    assert f"server.{field}" in str(caught.value)
    assert message in str(caught.value)


def test_a_form_body_that_trickles_in_is_408_and_the_connection_closed(
    engine: Engine, tmp_path: Path
) -> None:
    running = start(engine, tmp_path, server={"request_body_seconds": 0.5})
    site = next(running)
    try:
        port = int(site.url.rsplit(":", 1)[1])
        with connect(port) as sock:
            started = time.monotonic()
            sock.sendall(
                b"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 200\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n\r\nemail=reader"
            )
            response = answer(sock)
        assert status_of(response) == 408
        assert b"took too long" in response
        assert time.monotonic() - started < 3
        assert site.statuses("reader@example.org") == {}
    finally:
        next(running, None)
