"""Benchmark: are readers slowed by a send? Sign-up latency while `speakerfeed serve` sends a
digest to every subscriber, on SQLite and on PostgreSQL.

For each engine, in a fresh project folder:

1. N confirmed subscribers are imported through the store's bulk path (`speakerfeed
   subscribers import --confirmed`, the CSV importer), not measured;
2. `speakerfeed serve --no-build` runs as a child process, a real uvicorn server on 127.0.0.1,
   delivering through SMTP to bench/smtp_sink.py (the outbox would write N message files, about
   30 KB each, so the sink takes them instead); its log is kept;
3. idle: sign-ups are POSTed for --idle-seconds with no send running (the baseline);
4. a digest is recorded as a send (digest.issue.open_send, what the scheduler's job does) and
   the service's own send loop picks it up, in the serve process, as in production; meanwhile a
   client signs up --rate readers a minute, each with its own address and its own cookie jar
   (GET /subscribe for the CSRF cookie and token, then the timed POST), until the send is done.
   Sign-ups are started on a fixed timetable whatever the answers (an open loop), so a slow
   answer cannot hide the ones queued behind it. [signup] per_ip is raised so that the per-IP
   limit is not what is measured (every request comes from 127.0.0.1).

Reported per engine: POST /subscribe latency p50/p99/max (during the send, and idle), answers
other than 303, 5xx, "database is locked" in the server's log, and the send's throughput
(messages sent / seconds from recording it to its state "done").

Budget: p99 < 250 ms on SQLite, < 100 ms on PostgreSQL, no 5xx and no "database is locked".
Prints and writes bench/results/load.json.

    python bench/load.py [--engine sqlite|postgresql|both] [--recipients 100000] [--rate 1000]
        [--idle-seconds 30] [--work DIR] [--output FILE] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

import httpx

from build import generate
from measure import write_results

HERE = Path(__file__).resolve().parent
BUDGET = {"sqlite_p99_ms": 250.0, "postgresql_p99_ms": 100.0, "errors": 0}
SECRET_KEY = "load benchmark secret key, at least 32 bytes long"
LIST = "daily"
DATABASE = "speakerfeed_load_bench"
CSRF_FIELD = re.compile(r'name="csrf_token"\s+value="([^"]+)"')
LOCKED = "database is locked"

CONFIG = """\
[site]
title = "The Speaker"
url = "https://www.speakernews.co.uk"
author = "The Speaker"
timezone = "Europe/London"

[feeds]
base_url = "https://www.speakernews.co.uk/feeds/"

[build]
articles_dir = "articles"
output_dir = "public"
cache_dir = "var/cache"

[server]
host = "127.0.0.1"
port = {port}

[schedule]
refresh_minutes = 1440
watch_articles = false
send_poll_seconds = 1

[store]
url = "{store}"

[email]
from_address = "The Speaker <digest@speakernews.co.uk>"
reply_to = "letters@speakernews.co.uk"
app_url = "http://127.0.0.1:{port}"
unsubscribe_mailto = "unsubscribe@speakernews.co.uk"
postal_address = "1 Fleet Street, London EC4Y 1AA"

[signup]
per_ip = 1000000

[sending]
max_errors = 0

[delivery]
transport = "smtp"

[delivery.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"

[[lists]]
name = "{list}"
title = "The Speaker Daily"
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPEAKERFEED_")}
    return env | {"SPEAKERFEED_SECRET_KEY": SECRET_KEY}


def speakerfeed(config: Path, *arguments: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "speakerfeed", "--config", str(config), *arguments],
        check=True,
        env=environment(),
        cwd=config.parent,
    )


# -- setup (not measured) ---------------------------------------------------------------------


def store_url(engine: str, work: Path, pg: str) -> str:
    if engine == "sqlite":
        return f"sqlite:///{work / 'var' / 'load.sqlite3'}"
    import psycopg

    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    return pg.rsplit("/", 1)[0] + f"/{DATABASE}"


def drop_database(pg: str) -> None:
    import psycopg

    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def write_people(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name\n")
        for number in range(count):
            out.write(f"reader{number}@example.net,Reader {number}\n")


class Sink:
    """bench/smtp_sink.py in its own process, on a free port."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "smtp_sink.py")], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline().split()
        if ready[:1] != ["listening"]:
            raise SystemExit("smtp_sink.py did not start")
        self.port = int(ready[1])

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=60)
        return output


class Server:
    """`speakerfeed serve --no-build` as a child process, its log in a file."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.port, self.log = port, log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "speakerfeed", "--config", str(config), "serve",
                 "--no-build", "--host", "127.0.0.1", "--port", str(port)],
                stdout=output, stderr=subprocess.STDOUT, env=environment(), cwd=config.parent,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"serve exited with {self.process.returncode}:\n{log.read_text()}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/subscribe", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("serve did not answer within 120 s")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the client -------------------------------------------------------------------------------


class Answer(NamedTuple):
    status: int
    body: bytes
    cookie: str | None  # name=value of the Set-Cookie header


class SignUps:
    """Sign-ups on a fixed timetable, ``rate`` a minute, each from a fresh client."""

    def __init__(self, port: int, rate: float, prefix: str) -> None:
        self.port = port
        self.interval = 60.0 / rate
        self.prefix = prefix
        self.latencies_ms: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.failures: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._number = 0

    def run(self, until: threading.Event) -> None:
        with ThreadPoolExecutor(max_workers=64) as pool:
            start = time.perf_counter()
            while not until.is_set():
                self._number += 1
                pool.submit(self._one, f"{self.prefix}{self._number}")
                pause = start + self._number * self.interval - time.perf_counter()
                if pause > 0:
                    until.wait(pause)

    def _one(self, local: str) -> None:
        """A new visitor: GET the form (its CSRF cookie and token), then the timed POST. Plain
        http.client, a connection each: httpx loads the system CAs for every client it makes,
        which took more CPU than the server's answers."""
        try:
            form = self._request("GET", f"/subscribe?list={LIST}", {}, b"")
            found = CSRF_FIELD.search(form.body.decode("utf-8", "replace"))
            cookie = form.cookie
            if form.status != 200 or found is None or cookie is None:
                self._fail(f"GET /subscribe {form.status}")
                return
            fields = {
                "list": LIST,
                "name": f"New Reader {local}",
                "email": f"{local}@example.org",
                "csrf_token": found.group(1),
            }
            headers = {
                "Cookie": cookie,
                "Content-Type": "application/x-www-form-urlencoded",
            }
            started = time.perf_counter()
            answer = self._request("POST", "/subscribe", headers, urlencode(fields).encode())
            elapsed = (time.perf_counter() - started) * 1000
        except OSError as exc:
            self._fail(type(exc).__name__)
            return
        with self._lock:
            self.latencies_ms.append(elapsed)
            self.statuses[answer.status] += 1

    def _request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            content = response.read()
            set_cookie = response.getheader("set-cookie")
            cookie = set_cookie.split(";", 1)[0] if set_cookie else None
            return Answer(response.status, content, cookie)
        finally:
            connection.close()

    def _fail(self, what: str) -> None:
        with self._lock:
            self.failures[what] += 1

    def figures(self) -> dict[str, Any]:
        times = sorted(self.latencies_ms)
        cuts = statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else []
        return {
            "signups": len(times),
            "p50_ms": round(statistics.median(times), 1) if times else None,
            "p99_ms": round(cuts[98], 1) if cuts else None,
            "max_ms": round(times[-1], 1) if times else None,
            "statuses": {str(code): n for code, n in sorted(self.statuses.items())},
            "status_5xx": sum(n for code, n in self.statuses.items() if code >= 500),
            "client_failures": dict(self.failures),
        }


def timed_signups(port: int, rate: float, prefix: str, seconds: float) -> dict[str, Any]:
    signups = SignUps(port, rate, prefix)
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    signups.run(stop)
    return signups.figures()


# -- one engine -------------------------------------------------------------------------------


def run_engine(engine: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from speakerfeed.config.load import load_settings
    from speakerfeed.digest.issue import Issued, open_send
    from speakerfeed.store import ledger
    from speakerfeed.store.engine import create_engine_for
    from speakerfeed.store.sends import find_send

    shutil.rmtree(work, ignore_errors=True)
    (work / "var").mkdir(parents=True)
    sink = Sink()
    server: Server | None = None
    port = free_port()
    try:
        config = work / "config.toml"
        url = store_url(engine, work, args.pg)
        config.write_text(
            CONFIG.format(port=port, store=url, smtp_port=sink.port, list=LIST), "utf-8"
        )
        generate(work / "articles", 12)
        (work / "public").mkdir()
        started = time.perf_counter()
        people = work / "people.csv"
        write_people(people, args.recipients)
        speakerfeed(config, "db", "upgrade")
        speakerfeed(config, "subscribers", "import", str(people), "--list", LIST,
                    "--confirmed", "--quiet")  # fmt: skip
        print(f"{engine}: {args.recipients:,} subscribers imported in "
              f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip

        log = work / "serve.log"
        server = Server(config, port, log)
        idle = timed_signups(port, args.rate, "idle", args.idle_seconds)
        print(f"{engine}: idle sign-ups p50 {idle['p50_ms']} ms, p99 {idle['p99_ms']} ms",
              flush=True)  # fmt: skip

        settings = load_settings(config)
        store = create_engine_for(settings)
        opened_at = time.perf_counter()
        opened = open_send(
            store, settings, settings.require_list(LIST), now=datetime.now(UTC),
            fetch_upstreams=False,
        )  # fmt: skip
        if not isinstance(opened, Issued):
            raise SystemExit(f"{engine}: no send was recorded: {opened!r}")
        send_id = opened.send_id
        signups = SignUps(port, args.rate, "during")
        done = threading.Event()
        client = threading.Thread(target=signups.run, args=(done,))
        client.start()
        state, finished_at = "", opened_at
        deadline = opened_at + args.max_seconds
        while time.perf_counter() < deadline:
            time.sleep(0.5)
            with store.connect() as conn:
                record = find_send(conn, send_id)
            state = record.state if record else "missing"
            if state in ("done", "paused", "cancelled"):
                break
        finished_at = time.perf_counter()
        done.set()
        client.join()
        with store.connect() as conn:
            counts = ledger.counts(conn, send_id)
        store.dispose()
        server.stop()
        server = None
        received = sink.stop()
        text = log.read_text(encoding="utf-8", errors="replace")
        seconds = finished_at - opened_at
        during = signups.figures()
        figures: dict[str, Any] = {
            "p50_ms": during["p50_ms"],
            "p99_ms": during["p99_ms"],
            "max_ms": during["max_ms"],
            "signups": during["signups"],
            "statuses": during["statuses"],
            "status_5xx": during["status_5xx"],
            "client_failures": during["client_failures"],
            "database_is_locked_in_log": text.count(LOCKED),
            "errors_in_log": len(re.findall(r"\bERROR\b|Traceback", text)),
            "idle": idle,
            "send": {
                "recipients": args.recipients,
                "state": state,
                "sent": counts.get("sent", 0),
                "seconds": round(seconds, 1),
                "messages_per_second": round(counts.get("sent", 0) / seconds, 1),
                "sink": received.strip(),
            },
        }
        limit = BUDGET[f"{engine}_p99_ms"]
        figures["budget_p99_ms"] = limit
        figures["within_budget"] = (
            state == "done"
            and during["p99_ms"] is not None
            and during["p99_ms"] < limit
            and during["status_5xx"] == 0
            and not during["client_failures"]
            and figures["database_is_locked_in_log"] == 0
        )
        print(f"{engine}: during the send p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} "
              f"ms, {figures['send']['messages_per_second']} messages/s", flush=True)  # fmt: skip
        return figures
    finally:
        if server is not None:
            server.stop()
        if sink.process.poll() is None:
            sink.stop()
        if engine == "postgresql":
            drop_database(args.pg)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000, help="sign-ups a minute")
    parser.add_argument("--idle-seconds", type=float, default=30, help="the baseline's length")
    parser.add_argument("--max-seconds", type=float, default=3600, help="give up on the send")
    parser.add_argument("--work", type=Path, help="a folder to keep [default: a temporary one]")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--output", type=Path, help="write the results here [default: bench/results/load.json]"
    )
    args = parser.parse_args()
    # Stopped, it stops its server and sink too (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    temporary = None if args.work else tempfile.mkdtemp(prefix="speakerfeed-load-bench-")
    work = Path(temporary) if temporary else args.work.resolve()
    try:
        results: dict[str, Any] = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": sys.version.split()[0],
                "load_average_before": [round(x, 2) for x in os.getloadavg()],
            },
            "load": {
                "recipients": args.recipients,
                "signups_per_minute": args.rate,
                "transport": "smtp to bench/smtp_sink.py (the outbox would write a file each)",
                "timed": "POST /subscribe (after GET /subscribe for the CSRF cookie and token)",
            },
        }
        for engine in engines:
            results[engine] = run_engine(engine, args, work / engine)
        results["budget"] = BUDGET
        print()
        if args.output is None:
            write_results("load", results)
        else:
            args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
            print(json.dumps(results, indent=2))
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    main()
