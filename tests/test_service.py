"""`speakerfeed serve` end to end, as a real subprocess on a free port: the scheduler sends a
digest to a real SMTP server (aiosmtpd) on time; a new article changes the served feed; a run
missed while the service was down goes out once (or not at all when too late); SIGTERM in the
middle of a send loses and repeats nobody; two processes on PostgreSQL elect one scheduler.
And the service in this process (an injected clock, or the real one): an article dated in the
future appears at its moment, planned by the scheduler's embargo job, and the WebSub hub hears.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, text

from speakerfeed import schedule
from speakerfeed.config import Settings
from speakerfeed.service import Service
from speakerfeed.store import ledger
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import engine_for_url, upgrade
from speakerfeed.store.schema import sends
from speakerfeed.transports.base import Transport
from speakerfeed.transports.registry import transport_from_settings
from tests.feeds.hub import Hub, running_hub
from tests.support.cli import cli_env, speakerfeed_command
from tests.support.project import BASE_CONFIG, make_project, markdown_article
from tests.support.smtp_server import SmtpServer, running_smtp_server

SECRET = "service-test-secret-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def at(moment: datetime) -> str:
    """A six-field crontab line (seconds first) firing once a day at ``moment`` (UTC)."""
    return f"{moment.second} {moment.minute} {moment.hour} * * *"


def write_config(
    folder: Path, store_url: str, smtp_port: int, schedule: str, **sending: Any
) -> None:
    options = {"batch_size": 20, "max_lateness_minutes": 5, **sending}
    sending_lines = "\n".join(f"{key} = {value!r}" for key, value in options.items())
    (folder / "config.toml").write_text(
        BASE_CONFIG
        + f"""
[email]
from_address = "The Speaker <digest@speakernews.co.uk>"
postal_address = "The Speaker, 20 Example Street, London"

[[lists]]
name = "daily"
title = "The Speaker Daily"
schedule = "{schedule}"
timezone = "UTC"
send_when_empty = true

[store]
url = "{store_url}"

[delivery]
transport = "smtp"

[delivery.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"

[schedule]
refresh_minutes = 60
leader_check_seconds = 0.5
send_poll_seconds = 0.5

[sending]
{sending_lines}
""",
        encoding="utf-8",
    )


def make_site(folder: Path, engine: Engine, people: int) -> set[str]:
    (folder / "articles").mkdir(exist_ok=True)
    (folder / "articles" / "first.md").write_text(
        markdown_article("First story", "2024-05-01 10:00"), encoding="utf-8"
    )
    upgrade(engine)
    addresses = set()
    with engine.begin() as conn:
        for number in range(people):
            address = f"reader{number:04}@example.org"
            subscriber = repo.add_subscriber(conn, address)
            repo.subscribe(conn, subscriber, "daily", status="confirmed", consent={"action": "t"})
            addresses.add(address)
    return addresses


class Serve:
    """One `speakerfeed serve` process."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (folder / f"serve-{self.port}.log").open("wb")
        self.process = subprocess.Popen(
            speakerfeed_command("serve", "--port", str(self.port)),
            cwd=folder,
            env=cli_env(SECRET),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._up, 60, f"serve on {self.url} did not start: {self.output()}")

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"serve exited early: {self.output()}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code in (200, 503)
        except httpx.TransportError:
            return False

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def health(self) -> dict[str, Any]:
        found: dict[str, Any] = httpx.get(self.url + "/healthz", timeout=5).json()
        return found

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=90)
        self.log.close()


@contextmanager
def serving(folder: Path) -> Iterator[Serve]:
    serve = Serve(folder)
    try:
        yield serve
    finally:
        serve.stop()


def wait_until(
    condition: Callable[[], bool], seconds: float, message: str | Callable[[], str]
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(message() if callable(message) else message)


def received(server: SmtpServer) -> Counter[str]:
    return Counter(server.recipients())


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp_server(None, mode="none", auth=False) as server:
        yield server


_ENGINES: list[Engine] = []


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    """Python 3.13 reports a sqlite3 connection left to the garbage collector (a ResourceWarning,
    an error here, in whichever test it happens to be collected)."""
    yield
    while _ENGINES:
        _ENGINES.pop().dispose()


def sqlite_site(tmp_path: Path) -> tuple[Engine, str]:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    _ENGINES.append(engine_for_url(url))
    return _ENGINES[-1], url


def test_the_scheduler_sends_on_time_and_a_new_article_changes_the_feed(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    engine, url = sqlite_site(tmp_path)
    readers = make_site(tmp_path, engine, people=12)
    due = datetime.now(UTC) + timedelta(seconds=8)
    write_config(tmp_path, url, smtp.port, at(due))
    with serving(tmp_path) as serve:
        health = serve.health()
        assert health["database"] == "ok" and health["last_build"]["articles"] == 1
        wait_until(lambda: serve.health()["scheduler"] == "leader", 15, "no scheduler elected")

        feed = httpx.get(serve.url + "/atom.xml")
        old_etag = feed.headers["etag"]
        (tmp_path / "articles" / "second.md").write_text(
            markdown_article("Second story", "2024-05-02 10:00"), encoding="utf-8"
        )

        def feed_changed() -> bool:
            return httpx.get(serve.url + "/atom.xml").headers["etag"] != old_etag

        wait_until(feed_changed, 20, "the feed did not change after a new article")
        fresh = httpx.get(serve.url + "/atom.xml")
        assert "Second story" in fresh.text
        assert (
            httpx.get(serve.url + "/atom.xml", headers={"If-None-Match": old_etag}).status_code
            == 200
        )
        revalidated = httpx.get(
            serve.url + "/atom.xml", headers={"If-None-Match": fresh.headers["etag"]}
        )
        assert revalidated.status_code == 304

        wait_until(
            lambda: set(received(smtp)) == readers, 40, lambda: f"digest not sent: {serve.output()}"
        )
        assert set(received(smtp).values()) == {1}
        # The article added before the scheduled time is in the digest.
        digest = message_from_bytes(smtp.messages[0].data, policy=policy.default)
        assert isinstance(digest, EmailMessage)
        body = digest.get_body(("plain",))
        assert body is not None and "Second story" in body.get_content()
        arrived = datetime.now(UTC)
        assert arrived >= due.replace(microsecond=0)
    with engine.connect() as conn:
        (row,) = conn.execute(select(sends.c.id, sends.c.state)).all()
        assert row.state == "done" and row.id.startswith("daily-")


def test_a_run_missed_while_down_goes_out_once(tmp_path: Path, smtp: SmtpServer) -> None:
    engine, url = sqlite_site(tmp_path)
    readers = make_site(tmp_path, engine, people=5)
    due = datetime.now(UTC) + timedelta(seconds=12)
    write_config(tmp_path, url, smtp.port, at(due))
    with serving(tmp_path) as serve:  # records the job and its next run, then stops
        wait_until(lambda: serve.health()["scheduler"] == "leader", 15, "no scheduler elected")
    assert received(smtp) == Counter()
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 2)
    with serving(tmp_path):
        wait_until(lambda: set(received(smtp)) == readers, 40, "the missed run was not sent")
        time.sleep(3)  # long enough for a second, wrong, send to show up
    assert set(received(smtp).values()) == {1}


def test_a_run_missed_beyond_the_maximum_lateness_is_not_sent(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    engine, url = sqlite_site(tmp_path)
    make_site(tmp_path, engine, people=5)
    due = datetime.now(UTC) + timedelta(seconds=10)
    write_config(tmp_path, url, smtp.port, at(due), max_lateness_minutes=0.05)  # 3 s
    with serving(tmp_path) as serve:
        wait_until(lambda: serve.health()["scheduler"] == "leader", 15, "no scheduler elected")
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 6)
    with serving(tmp_path) as serve:
        time.sleep(5)
        log = serve.output()
    assert received(smtp) == Counter(), log
    with engine.connect() as conn:
        assert conn.execute(select(sends.c.id)).first() is None


def test_sigterm_in_the_middle_of_a_send_then_restart(tmp_path: Path, smtp: SmtpServer) -> None:
    engine, url = sqlite_site(tmp_path)
    readers = make_site(tmp_path, engine, people=400)
    due = datetime.now(UTC) + timedelta(seconds=6)
    # 40 messages a second: the send takes about 10 s, so SIGTERM lands in the middle of it.
    write_config(tmp_path, url, smtp.port, at(due), messages_per_second=40, batch_size=10)
    serve = Serve(tmp_path)
    try:
        wait_until(lambda: len(received(smtp)) >= 60, 40, "the send did not start")
        serve.stop(signal.SIGTERM)
        # uvicorn shuts down cleanly, then ends by the signal it got (as a shell expects).
        assert serve.process.returncode in (0, -signal.SIGTERM), serve.output()
        assert "service stopped" in serve.output()
        stopped_at = len(received(smtp))
        assert stopped_at < len(readers), "the send finished before SIGTERM: nothing was tested"
        with engine.connect() as conn:
            (send_id,) = conn.execute(select(sends.c.id)).scalars()
            states = ledger.counts(conn, send_id)
        assert states["sending"] == 0 and states["unknown"] == 0, states  # the batch finished
        assert states["sent"] == stopped_at
    finally:
        serve.stop()
    with serving(tmp_path):
        wait_until(lambda: set(received(smtp)) == readers, 60, "the send was not resumed")
    assert set(received(smtp).values()) == {1}


def test_two_serve_processes_on_postgresql_one_scheduler_each_recipient_once(
    tmp_path: Path, smtp: SmtpServer, postgresql_url: str
) -> None:
    engine = engine_for_url(postgresql_url)
    try:
        readers = make_site(tmp_path, engine, people=300)
        due = datetime.now(UTC) + timedelta(seconds=12)
        url = postgresql_url.replace("+psycopg", "")
        # 30 messages a second per process: alone, the leader would take 10 s, and the other
        # process finds the send within its 5 s poll (unthrottled, one may finish it first).
        write_config(tmp_path, url, smtp.port, at(due), batch_size=10, messages_per_second=30)
        with serving(tmp_path) as first, serving(tmp_path) as second:

            def one_leader() -> bool:
                roles = sorted([first.health()["scheduler"], second.health()["scheduler"]])
                return roles == ["follower", "leader"]

            wait_until(one_leader, 20, "not exactly one scheduler")
            wait_until(lambda: set(received(smtp)) == readers, 60, "the digest was not sent")
            time.sleep(2)
            assert one_leader()
        assert set(received(smtp).values()) == {1}
        with engine.connect() as conn:
            workers = conn.execute(text("SELECT DISTINCT worker FROM deliveries")).scalars()
            assert len(set(workers)) == 2, "both processes should have sent batches"
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()


def embargo_site(folder: Path, hub: Hub, articles: dict[str, str | bytes]) -> Settings:
    return make_project(
        folder,
        {"old.md": markdown_article("An old story", "2024-05-01 10:00"), **articles},
        feeds={"websub_hub": hub.url},
        schedule={"leader_check_seconds": 0.2, "send_poll_seconds": 0.2},
    )


def in_process(settings: Settings, engine: Engine, **options: Any) -> Service:
    def transport() -> Transport:
        return transport_from_settings(settings.delivery, settings.root)

    return Service(settings, engine, SECRET.encode(), transport, watching=False, **options)


def feed_titles(settings: Settings, name: str = "rss.xml") -> list[str]:
    import feedparser

    return [e.title for e in feedparser.parse((settings.output_dir / name).read_bytes()).entries]


def embargo_job(service: Service) -> Any:
    scheduler = service.scheduler
    return None if scheduler is None else scheduler.get_job(schedule.EMBARGO_JOB)


def test_the_embargo_job_rebuilds_at_the_moment_and_is_planned_again(
    tmp_path: Path, engine: Engine
) -> None:
    upgrade(engine)
    moment = datetime(2030, 6, 4, 8, 0, tzinfo=UTC)  # "2030-06-04 09:00" in London (BST)
    clock = [moment - timedelta(microseconds=1)]
    with running_hub() as hub:
        budget = markdown_article("Budget day", "2030-06-04 09:00", tags="[Budget]")
        settings = embargo_site(tmp_path, hub, {"budget.md": budget})
        service = in_process(settings, engine, clock=lambda: clock[0])
        service.rebuild()  # as `serve` does before it starts
        assert service.last_build["next_embargo"] == moment.isoformat()
        assert feed_titles(settings) == ["An old story"]
        service.start()
        try:
            wait_until(lambda: embargo_job(service) is not None, 20, "no embargo job planned")
            assert embargo_job(service).next_run_time == moment
            hub.received.clear()

            clock[0] = moment
            schedule.embargo_job()  # what the scheduler runs at that moment
            assert feed_titles(settings) == ["Budget day", "An old story"]
            base = settings.feeds.base_url
            assert {base + "rss.xml", base + "tags/budget/atom.xml"} <= set(hub.published())
            assert embargo_job(service) is None  # nothing is embargoed any more

            # A new article for later: the next build plans the job for its moment.
            (settings.articles_dir / "later.md").write_text(
                markdown_article("Later", "2030-12-25T06:30:00Z"), encoding="utf-8"
            )
            service.rebuild()
            assert embargo_job(service).next_run_time == datetime(2030, 12, 25, 6, 30, tzinfo=UTC)
            assert "Later" not in feed_titles(settings)
        finally:
            service.stop()


def test_an_embargo_past_the_end_of_the_calendar_plans_nothing(
    tmp_path: Path, engine: Engine
) -> None:
    upgrade(engine)
    with running_hub() as hub:
        capsule = markdown_article("Time capsule", "9999-12-31T23:00:00-05:00")  # 10000 in UTC
        settings = embargo_site(tmp_path, hub, {"capsule.md": capsule})
        service = in_process(settings, engine)
        service.rebuild()
        assert service.last_build["embargoed"] == 1
        assert service.last_build["next_embargo"] is None
        assert feed_titles(settings) == ["An old story"]


def test_a_future_article_appears_when_its_time_comes(tmp_path: Path) -> None:
    """The real clock and APScheduler: no refresh or file change is due, only the embargo job."""
    engine, _ = sqlite_site(tmp_path)
    upgrade(engine)
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    with running_hub() as hub:
        soon = markdown_article("Just in time", moment.isoformat().replace("+00:00", "Z"))
        settings = embargo_site(tmp_path, hub, {"soon.md": soon})
        service = in_process(settings, engine)
        service.rebuild()
        assert "Just in time" not in feed_titles(settings, "atom.xml")
        hub.received.clear()
        service.start()
        try:
            wait_until(
                lambda: "Just in time" in feed_titles(settings, "atom.xml"),
                30,
                "the embargoed article did not appear",
            )
            assert datetime.now(UTC) >= moment
            told = settings.feeds.base_url + "atom.xml"
            wait_until(lambda: told in hub.published(), 10, "the hub was not told")
        finally:
            service.stop()
