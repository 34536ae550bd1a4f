"""A lean SendGrid-compatible sink for bench/send.py: POST /v3/mail/send over kept-alive HTTP/1.1.

tests/support/sendgrid_server.py checks every rule and "delivers" each personalization (the
whole digest substituted per recipient): right for tests, far too slow to keep up with a sender
on the same 2 cores. This one is an asyncio protocol (uvloop when installed) that does only what
makes the benchmark's figures real: each body is parsed as JSON (by msgspec into the few fields
it checks, a third of json.loads's time for a 1 MB body: the sink shares the 2 cores with the
sender), its personalizations counted (1 to 1,000, a "to" each, no address twice, a
``speakerfeed_key`` custom argument),
and the keys remembered, so the totals say how many requests, recipients and distinct recipients
arrived. It counts the TCP connections that carried a send. A broken rule (or a missing key)
gets a 400.

    python bench/sendgrid_sink.py [--port 0] [--api-key KEY]

It prints ``listening <port>`` once ready; ``GET /stats`` answers the totals as JSON. It stops
on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import secrets
from dataclasses import asdict, dataclass
from typing import cast

import msgspec

from measure import serve_until_signalled

SEND_PATH = b"/v3/mail/send"
MAX_PERSONALIZATIONS = 1000
KEY_ARG = "speakerfeed_key"


class _To(msgspec.Struct):
    email: str


class _Personalization(msgspec.Struct):
    to: list[_To]
    custom_args: dict[str, str]


class _SendRequest(msgspec.Struct):  # the other members are parsed as JSON, not kept
    personalizations: list[_Personalization]


_DECODE = msgspec.json.Decoder(_SendRequest).decode


@dataclass
class Totals:
    requests: int = 0  # accepted sends
    refused: int = 0  # answered 4xx
    recipients: int = 0
    distinct_recipients: int = 0
    connections: int = 0  # TCP connections that carried at least one send
    largest_request: int = 0  # personalizations
    body_bytes: int = 0


class Sink:
    def __init__(self, api_key: str) -> None:
        self.authorization = f"Bearer {api_key}".encode()
        self.totals = Totals()
        self.keys: set[str] = set()

    def accept(self, body: bytes) -> tuple[int, bytes]:
        """(status, response body) for one send request's body."""
        try:
            personalizations = _DECODE(body).personalizations
            keys = [item.custom_args[KEY_ARG] for item in personalizations]
            problem = self._problem(personalizations)
        except (msgspec.DecodeError, KeyError, IndexError):
            problem = "the body is not a send request with a speakerfeed_key per recipient"
        if problem:
            self.totals.refused += 1
            return 400, json.dumps({"errors": [{"message": problem}]}).encode()
        totals = self.totals
        totals.requests += 1
        totals.recipients += len(personalizations)
        totals.largest_request = max(totals.largest_request, len(personalizations))
        totals.body_bytes += len(body)
        self.keys.update(keys)
        totals.distinct_recipients = len(self.keys)
        return 202, b""

    @staticmethod
    def _problem(personalizations: list[_Personalization]) -> str:
        if not 0 < len(personalizations) <= MAX_PERSONALIZATIONS:
            return f"{len(personalizations)} personalizations: 1 to 1000 allowed"
        if len({item.to[0].email for item in personalizations}) != len(personalizations):
            return "an address is named twice"
        return ""


class _Connection(asyncio.Protocol):
    """One kept-alive client connection: requests read in turn, each answered at once.

    A body (about 1 MB for 1,000 personalizations) arrives in many pieces: the head is parsed
    once, and the pieces are only counted until the body is whole, never searched again."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.buffer = bytearray()
        self.head: tuple[bytes, bytes, dict[bytes, bytes], int] | None = None
        self.sent_here = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self._one_request():
            pass

    def _one_request(self) -> bool:
        if self.head is None and not self._read_head():
            return False
        assert self.head is not None
        method, path, fields, length = self.head
        if len(self.buffer) < length:
            return False
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        self.head = None
        self._answer(*self._route(method, path, fields, body))
        return True

    def _read_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        del self.buffer[: end + 4]
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        method, path = lines[0].split(b" ")[:2]
        self.head = (method, path, fields, int(fields.get(b"content-length", b"0")))
        return True

    def _route(
        self, method: bytes, path: bytes, fields: dict[bytes, bytes], body: bytes
    ) -> tuple[int, bytes, bytes]:
        if method == b"GET" and path == b"/stats":
            used = resource.getrusage(resource.RUSAGE_SELF)
            stats = asdict(self.sink.totals) | {"cpu_seconds": used.ru_utime + used.ru_stime}
            return 200, json.dumps(stats).encode(), b""
        if method != b"POST" or path != SEND_PATH:
            return 404, b'{"errors":[{"message":"not found"}]}', b""
        if fields.get(b"authorization") != self.sink.authorization:
            return 401, b'{"errors":[{"message":"the API key is refused"}]}', b""
        if not self.sent_here:
            self.sent_here = True
            self.sink.totals.connections += 1
        status, answer = self.sink.accept(body)
        message_id = b"X-Message-Id: " + secrets.token_urlsafe(16).encode() + b"\r\n"
        return status, answer, message_id if status == 202 else b""

    def _answer(self, status: int, body: bytes, extra: bytes) -> None:
        assert self.transport is not None
        reason = {200: b"OK", 202: b"Accepted", 400: b"Bad Request", 401: b"Unauthorized"}
        head = b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n" % (
            status,
            reason.get(status, b"Not Found"),
            len(body),
        )
        content_type = b"Content-Type: application/json\r\n" if body else b""
        self.transport.write(head + content_type + extra + b"\r\n" + body)


async def serve(port: int, api_key: str) -> None:
    sink = Sink(api_key)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(sink), "127.0.0.1", port)
    await serve_until_signalled(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="SG.bench")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.port, args.api_key))
    else:
        uvloop.run(serve(args.port, args.api_key))


if __name__ == "__main__":
    main()
