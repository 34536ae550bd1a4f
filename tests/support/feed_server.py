"""A real HTTP server on a loopback address, for tests of code that fetches feeds.

Each path gets a canned ``Reply`` (or a function of the request returning one); every request is
recorded so a test can check which headers were sent, or that nothing was asked at all.
``ConnectionCounter`` is a bare listener that only counts connections: it proves that a refused
address was never even connected to.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names in lower case


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # Bytes are sent with a Content-Length; an iterable is streamed until the connection closes.
    body: bytes | Iterable[bytes] = b""
    delay: float = 0.0  # seconds to wait before answering (cut short when the server stops)
    # Seconds between bytes of the status line and headers: a slow-loris upstream (0: all at once).
    header_trickle: float = 0.0


Route = Reply | Callable[[RecordedRequest], Reply]


class FeedServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.feed_server = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self.host = host
        self.port = int(self._httpd.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def route(self, path: str, reply: Route) -> str:
        """Serve ``reply`` at ``path``; returns the path's full URL."""
        self.routes[path] = reply
        return self.url(path)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins handler threads: none outlives its test
    feed_server: FeedServer


class _Handler(BaseHTTPRequestHandler):
    server_version = "FeedServer/1"
    protocol_version = "HTTP/1.0"  # the connection closes after each reply: streams end cleanly

    def do_GET(self) -> None:
        assert isinstance(self.server, _Server)
        feed_server = self.server.feed_server
        request = RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()})
        feed_server.record(request)
        route = feed_server.routes.get(self.path, Reply(404, body=b"not found"))
        reply = route if isinstance(route, Reply) else route(request)
        if reply.delay and feed_server.stopping.wait(reply.delay):
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send(reply, feed_server.stopping)

    def _send(self, reply: Reply, stopping: threading.Event) -> None:
        headers = dict(reply.headers)
        if isinstance(reply.body, bytes):
            headers["Content-Length"] = str(len(reply.body))
        if reply.header_trickle:
            self._trickle_head(reply.status, headers, reply.header_trickle, stopping)
        else:
            self.send_response(reply.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
        if stopping.is_set():
            return
        if isinstance(reply.body, bytes):
            self.wfile.write(reply.body)
            return
        for chunk in reply.body:
            if stopping.is_set():
                return
            self.wfile.write(chunk)

    def _trickle_head(
        self, status: int, headers: dict[str, str], pause: float, stopping: threading.Event
    ) -> None:
        """The status line and headers, one byte every ``pause`` seconds, padded to last."""
        lines = [f"HTTP/1.0 {status} {self.responses[status][0]}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append("X-Padding: " + "x" * 200)
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        for index in range(len(head)):
            if stopping.wait(pause):
                return
            self.wfile.write(head[index : index + 1])

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


@contextlib.contextmanager
def running_server(host: str = "127.0.0.1") -> Iterator[FeedServer]:
    server = FeedServer(host)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class ConnectionCounter:
    """Listens on (host, free port) and counts the connections made to it."""

    def __init__(self, host: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.bind((host, 0))
        except OSError:
            self._sock.close()
            raise
        self._sock.listen()
        self._sock.settimeout(0.05)
        self.host = host
        self.port = int(self._sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@contextlib.contextmanager
def counting_listener(host: str) -> Iterator[ConnectionCounter]:
    counter = ConnectionCounter(host)
    try:
        yield counter
    finally:
        counter.close()


def unused_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (for "connection refused")."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
