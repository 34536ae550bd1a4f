"""Benchmark: one digest sent to 1,000,000 confirmed subscribers in SQLite through the delivery
ledger (speakerfeed.digest.deliver.run_send), to local sinks.

* ``sendgrid``: to bench/sendgrid_sink.py, a SendGrid-compatible sink in its own process that
  parses every request body and counts its personalizations, the distinct recipients and the
  TCP connections. Measured: wall time of the send (ledger create_send, as ``speakerfeed
  send`` records it, + run_send until done, which adds the audience to the ledger as it goes),
  requests made (must be ceil(N / 1000)), connections opened, peak RSS of the sending process
  and its children (os.wait4).
* ``smtp``: to bench/smtp_sink.py (aiosmtpd, plain, on 127.0.0.1): messages per second over
  pooled, reused connections, and with one connection per message
  (messages_per_connection = 1).

The subscribers are written straight into the database with executemany (setup, not measured);
the database is kept in --work and reused by the next run when it holds the same number.

Prints and writes to bench/results/send.json. Budget: 1,000,000 recipients through the API path
in <= 20 s wall time, peak RSS <= 150 MB.

    python bench/send.py [--subscribers 1000000] [--smtp-messages 10000] [--processes N]
        [--batch-size N] [--work bench/work/send] [--no-smtp]
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from measure import SPEAKER_CONFIG, run_child, run_child_with_pss, write_results

HERE = Path(__file__).resolve().parent
BUDGET = {"subscribers": 1_000_000, "wall_seconds": 20.0, "peak_rss_mb": 150.0}
SECRET = b"benchmark secret key, 32 bytes.."
API_KEY = "SG.bench-key"
LIST = "daily"
SMTP_LIST = "smtp"  # the first --smtp-messages subscribers, for the SMTP runs
NOW = "2023-11-29 07:00:00.000000"  # SQLAlchemy's SQLite format for UTCDateTime
CONFIG: dict[str, Any] = {
    **SPEAKER_CONFIG,
    "lists": [
        {"name": LIST, "title": "The Speaker Daily"},
        {"name": SMTP_LIST, "title": "The Speaker (SMTP benchmark)"},
    ],
}


# --- setup (not measured) -------------------------------------------------------------------


def populate(database: Path, count: int, smtp_count: int) -> None:
    """``count`` confirmed subscribers of LIST, the first ``smtp_count`` also of SMTP_LIST; an
    existing database with as many is reused, its sends emptied."""
    if database.exists() and _subscriber_count(database) == (count, smtp_count):
        _forget_sends(database)
        _upgrade(database)  # to the schema of the code measured
        return
    for leftover in database.parent.glob(database.name + "*"):
        leftover.unlink()
    _upgrade(database)
    started = time.perf_counter()
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA synchronous=OFF")
        chunk = 100_000
        for start in range(0, count, chunk):
            people = list(_people(start, min(start + chunk, count)))
            db.executemany(
                "INSERT INTO subscribers VALUES (?, ?, ?, '', ?)", [p[:4] for p in people]
            )
            db.executemany(
                "INSERT INTO subscriptions VALUES (?, ?, 'confirmed', '', ?, ?)",
                [(p[0], LIST, NOW, NOW) for p in people],
            )
            db.executemany(
                "INSERT INTO subscriptions VALUES (?, ?, 'confirmed', '', ?, ?)",
                [(p[0], SMTP_LIST, NOW, NOW) for p in people if p[4] < smtp_count],
            )
    _checkpoint(database)
    print(f"setup: {count:,} subscribers written in {time.perf_counter() - started:.1f} s")


def _people(start: int, stop: int) -> Any:
    """(id, email, name, created_at, number): random opaque ids, as the app makes them."""
    from personalise import FIRST_NAMES, LAST_NAMES

    first, last = FIRST_NAMES.split(), LAST_NAMES.split()
    rng = random.Random(start)
    for number in range(start, stop):
        name = "" if rng.random() < 0.1 else f"{rng.choice(first)} {rng.choice(last)}"
        ident = base64.urlsafe_b64encode(rng.randbytes(12)).decode()
        yield ident, f"reader{number}@example.net", name, NOW, number


def _upgrade(database: Path) -> None:
    from speakerfeed.store.engine import engine_for_url, upgrade

    engine = engine_for_url(f"sqlite:///{database}")
    upgrade(engine)
    engine.dispose()


def _subscriber_count(database: Path) -> tuple[int, int]:
    try:
        with sqlite3.connect(database) as db:
            found = db.execute(
                "SELECT count(*) FILTER (WHERE list_name = ?), "
                "count(*) FILTER (WHERE list_name = ?) FROM subscriptions",
                (LIST, SMTP_LIST),
            ).fetchone()
    except sqlite3.Error:
        return (-1, -1)
    return int(found[0]), int(found[1])


def _forget_sends(database: Path) -> None:
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM deliveries")
        db.execute("DELETE FROM sends")
    _checkpoint(database)


def _checkpoint(database: Path) -> None:
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def write_content(path: Path) -> str:
    """The digest every recipient gets, as the ledger keeps it (JSON for the child); which
    renderer made it."""
    from personalise import real_digest, rendered_digest
    from speakerfeed.config import settings_from_mapping

    settings = settings_from_mapping(CONFIG, where="bench", root=HERE)
    try:
        rendered, renderer = real_digest(settings), "speakerfeed.render.email.render_digest"
    except Exception as exc:  # a renderer still being written: say so, measure the rest
        rendered, renderer = rendered_digest(), f"hand-made (render_digest failed: {exc!r})"
    content = {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}
    path.write_text(json.dumps(content | {"view_url": rendered.view_url}), encoding="utf-8")
    return renderer


class Sink:
    """A sink script in its own process, on a free port."""

    def __init__(self, script: str, *arguments: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / script), *arguments], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline().split()
        if ready[:1] != ["listening"]:
            raise SystemExit(f"{script} did not start")
        self.port = int(ready[1])

    def stop(self) -> str:
        """Stop it; what it printed on the way out."""
        self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=30)
        return output


# --- the measured send (in a child process) -------------------------------------------------


def child(options: dict[str, Any]) -> dict[str, Any]:
    from speakerfeed.config import settings_from_mapping
    from speakerfeed.digest.deliver import run_send
    from speakerfeed.store import ledger
    from speakerfeed.store.engine import engine_for_url
    from speakerfeed.transports.base import Transport

    settings = settings_from_mapping(
        CONFIG | {"delivery": options["delivery"], "sending": options["sending"]},
        where="bench",
        root=HERE,
    )
    transport: Transport
    if settings.delivery.transport == "sendgrid":
        from speakerfeed.transports.sendgrid import SendGridTransport

        transport = SendGridTransport(settings.delivery.sendgrid, API_KEY)
    else:
        from speakerfeed.transports.smtp import SmtpTransport

        transport = SmtpTransport(settings.delivery.smtp)
    content = ledger.SendContent(**json.loads(Path(options["content"]).read_text("utf-8")))
    engine = engine_for_url(f"sqlite:///{options['database']}")
    send_id = options["send_id"]
    started = time.perf_counter()
    with engine.begin() as conn:  # as `speakerfeed send` does: the senders add the audience
        ledger.create_send(
            conn,
            send_id,
            options["list"],
            content,
            scheduled_at=datetime.now(UTC),
            record_audience=False,
        )
    created = time.perf_counter()
    extra = {"processes": options["processes"]} if options["processes"] > 1 else {}
    report = run_send(engine, settings, send_id, transport, secret=SECRET, **extra)
    finished = time.perf_counter()
    engine.dispose()
    own, workers = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return {
        "cpu_seconds": own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime,
        "seconds": finished - started,
        "create_send_seconds": created - started,
        "state": report.state,
        "counts": report.counts,
        "own_peak_rss_mb": own.ru_maxrss / 1024,
        "largest_child_peak_rss_mb": workers.ru_maxrss / 1024,
    }


def run_send_child(options: dict[str, Any], what: str) -> tuple[dict[str, Any], float]:
    return run_child([__file__, "--child", json.dumps(options)], what)


def run_send_child_with_pss(
    options: dict[str, Any], what: str
) -> tuple[dict[str, Any], float, float]:
    return run_child_with_pss([__file__, "--child", json.dumps(options)], what)


# --- the two measurements -------------------------------------------------------------------


def sendgrid(args: argparse.Namespace, database: Path, content: Path) -> dict[str, Any]:
    sink = Sink("sendgrid_sink.py", "--api-key", API_KEY)
    try:
        figures, peak, peak_pss = run_send_child_with_pss(
            {
                "database": str(database),
                "content": str(content),
                "list": LIST,
                "send_id": "bench-sendgrid",
                "processes": args.processes,
                "sending": {"batch_size": args.batch_size, "max_errors": 0},
                "delivery": {
                    "transport": "sendgrid",
                    "sendgrid": {
                        "api_url": f"http://127.0.0.1:{sink.port}",
                        "pool_connections": args.pool_connections,
                    },
                },
            },
            "the sendgrid send",
        )
        import httpx

        stats = httpx.get(f"http://127.0.0.1:{sink.port}/stats").json()
    finally:
        sink.stop()
    n = args.subscribers
    return {
        "subscribers": n,
        "wall_seconds": round(figures["seconds"], 2),
        "create_send_seconds": round(figures["create_send_seconds"], 2),
        "recipients_per_second": round(n / figures["seconds"]),
        "sender_cpu_seconds": round(figures["cpu_seconds"], 2),
        "sink_cpu_seconds": round(stats["cpu_seconds"], 2),
        "state": figures["state"],
        "sent": figures["counts"]["sent"],
        "requests": stats["requests"],
        "expected_requests": math.ceil(n / 1000),
        "recipients_received": stats["recipients"],
        "distinct_recipients_received": stats["distinct_recipients"],
        "refused_requests": stats["refused"],
        "connections_opened": stats["connections"],
        # The largest of the processes' peaks; with several, also their summed PSS (shared
        # pages shared out), the memory the send took from the machine.
        "peak_rss_mb": round(peak, 1),
        "peak_rss_mb_sending_process": round(figures["own_peak_rss_mb"], 1),
        "peak_rss_mb_largest_worker": round(figures["largest_child_peak_rss_mb"], 1),
        "peak_pss_mb_all_processes": round(peak_pss, 1),
    }


def smtp(args: argparse.Namespace, database: Path, content: Path, per_message: int) -> Any:
    sink = Sink("smtp_sink.py")
    try:
        figures, peak = run_send_child(
            {
                "database": str(database),
                "content": str(content),
                "list": SMTP_LIST,
                "send_id": f"bench-smtp-{per_message}",
                "processes": 1,
                "sending": {"batch_size": 1000, "max_errors": 0},
                "delivery": {
                    "transport": "smtp",
                    "smtp": {
                        "host": "127.0.0.1",
                        "port": sink.port,
                        "security": "none",
                        "pool_size": 4,
                        "messages_per_connection": per_message,
                    },
                },
            },
            f"the smtp send ({per_message} messages per connection)",
        )
    finally:
        received = json.loads(sink.stop())
    sent = figures["counts"]["sent"]
    return {
        "messages": sent,
        "messages_per_connection": per_message,
        "seconds": round(figures["seconds"], 2),
        "messages_per_second": round(sent / figures["seconds"]),
        "received": received["messages"],
        "connections_opened": received["connections"],
        "sender_cpu_seconds": round(figures["cpu_seconds"], 2),
        "sink_cpu_seconds": round(received["cpu_seconds"], 2),
        "peak_rss_mb": round(peak, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--smtp-messages", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--pool-connections", type=int, default=8)
    parser.add_argument("--work", type=Path, default=HERE / "work" / "send")
    parser.add_argument("--no-smtp", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--populate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    if args.populate:
        populate(args.work / "send.sqlite3", *json.loads(args.populate))
        return

    args.work.mkdir(parents=True, exist_ok=True)
    database = args.work / "send.sqlite3"
    # In a process of its own: Linux carries a process's peak RSS over into the programs it
    # starts (a fork keeps it, exec does not reset it), and writing a million subscribers
    # peaks at about 140 MB, which the measured send would otherwise be charged with.
    counts = [args.subscribers, min(args.smtp_messages, args.subscribers)]
    subprocess.run(
        [sys.executable, __file__, "--work", str(args.work), "--populate", json.dumps(counts)],
        check=True,
    )
    content = args.work / "content.json"
    renderer = write_content(content)
    api = sendgrid(args, database, content)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "renderer": renderer,
        "settings": {
            "batch_size": args.batch_size,
            "processes": args.processes,
            "pool_connections": args.pool_connections,
        },
        "sendgrid": api,
    }
    if not args.no_smtp:
        pooled = smtp(args, database, content, per_message=100)
        single = smtp(args, database, content, per_message=1)
        results["smtp"] = {
            "pooled": pooled,
            "one_connection_per_message": single,
            "pooled_msg_per_s": pooled["messages_per_second"],
            "per_connection_msg_per_s": single["messages_per_second"],
        }
    every_request = api["requests"] == api["expected_requests"] and api["refused_requests"] == 0
    every_recipient_once = (
        api["distinct_recipients_received"] == api["recipients_received"] == (api["subscribers"])
    )
    results["budget"] = BUDGET
    results["within_budget"] = (
        api["subscribers"] >= BUDGET["subscribers"]
        and api["wall_seconds"] <= BUDGET["wall_seconds"]
        and max(api["peak_rss_mb"], api["peak_pss_mb_all_processes"]) <= BUDGET["peak_rss_mb"]
        and every_request
        and every_recipient_once
        and api["state"] == "done"
    )
    write_results("send", results)


if __name__ == "__main__":
    main()
