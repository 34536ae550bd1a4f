"""A plain SMTP sink for bench/send.py: aiosmtpd on 127.0.0.1, no TLS, no AUTH, in its own process.

It accepts every message, keeping only counts: messages, recipients, bytes and the TCP
connections made to it. It prints ``listening <port>`` once ready, and on SIGTERM or SIGINT
prints the counts (and the CPU time it used) as one JSON line and stops.

    python bench/smtp_sink.py [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
from dataclasses import asdict, dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from measure import serve_until_signalled


@dataclass
class Totals:
    messages: int = 0
    recipients: int = 0
    bytes: int = 0
    connections: int = 0


class _Handler:
    def __init__(self, totals: Totals) -> None:
        self.totals = totals

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content: Any = envelope.original_content
        self.totals.messages += 1
        self.totals.recipients += len(envelope.rcpt_tos)
        self.totals.bytes += len(content or b"")
        return f"250 2.0.0 Ok: queued as Q{self.totals.messages}"


async def serve(port: int) -> None:
    totals = Totals()
    handler = _Handler(totals)
    loop = asyncio.get_running_loop()

    def connection() -> SMTP:
        totals.connections += 1
        return SMTP(handler, hostname="sink.localhost", data_size_limit=0)

    server = await loop.create_server(connection, "127.0.0.1", port)
    await serve_until_signalled(server)
    used = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps(asdict(totals) | {"cpu_seconds": used.ru_utime + used.ru_stime}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.port))
    else:
        uvloop.run(serve(args.port))


if __name__ == "__main__":
    main()
