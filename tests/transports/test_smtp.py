"""The SMTP transport against a real aiosmtpd server on 127.0.0.1: STARTTLS and AUTH, the
connection pool, and what each kind of failure comes to (retried, DEFERRED, FAILED, UNKNOWN)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from speakerfeed.config.delivery import DeliverySettings, SmtpSettings
from speakerfeed.digest import deliver as dispatch
from speakerfeed.mail.mime import BatchTemplate
from speakerfeed.models import Outcome, Recipient
from speakerfeed.store import ledger
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import upgrade
from speakerfeed.transports.registry import transport_from_settings
from speakerfeed.transports.smtp import NOOP_AFTER_IDLE_SECONDS, SmtpTransport
from tests.digest.test_deliver import CONTENT as DISPATCH_CONTENT
from tests.digest.test_deliver import SECRET as SMTP_SECRET
from tests.digest.test_letter import check_lines
from tests.support.project import make_project
from tests.support.smtp_server import (
    DROP,
    PASSWORD,
    USERNAME,
    SmtpServer,
    running_smtp_server,
    tls_files,
)
from tests.transports.test_transports import check_message, make_batch, parse, parts, recipient

pytestmark = pytest.mark.timeout(60)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server(certificate: tuple[Path, Path]) -> Iterator[SmtpServer]:
    with running_smtp_server(certificate) as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    return []


def smtp(
    server: SmtpServer,
    certificate: tuple[Path, Path],
    sleeps: list[float],
    *,
    clock: Clock | None = None,
    password: str = PASSWORD,
    trusted: bool = True,
    **changes: Any,
) -> SmtpTransport:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "username": USERNAME,
        "helo_name": "client.example.org",
        "timeout_seconds": 5.0,
        "pool_size": 1,
        "max_retries": 2,
        "retry_delay_seconds": 1.5,
    }
    context = ssl.create_default_context(cafile=str(certificate[0])) if trusted else None
    return SmtpTransport(
        SmtpSettings.model_validate(settings | changes),
        password=password,
        ssl_context=context,
        sleep=sleeps.append,
        clock=clock or Clock(),
    )


def test_starttls_and_auth_deliver_every_message(
    server: SmtpServer, certificate: tuple[Path, Path]
) -> None:
    """Made from settings as the application makes it: the password from the environment, the
    CA file relative to the configuration's folder."""
    settings = DeliverySettings.model_validate(
        {
            "transport": "smtp",
            "smtp": {"host": "127.0.0.1", "port": server.port, "username": USERNAME,
                     "ca_file": certificate[0].name, "pool_size": 3, "timeout_seconds": 5},
        }
    )  # fmt: skip
    transport = transport_from_settings(
        settings, certificate[0].parent, environ={"SPEAKERFEED_SMTP_PASSWORD": PASSWORD}
    )
    batch = make_batch(12)
    with transport:
        results = transport.send(batch)
    assert [r.outcome for r in results] == [Outcome.SENT] * 12
    assert [r.key for r in results] == [p.key for p in batch.recipients]
    assert sorted(r.provider_id for r in results) == [f"Q{n:04d}" for n in range(1, 13)]
    assert all(r.detail.startswith("250 2.0.0 Ok: queued as Q") for r in results)
    by_address = {m.rcpt_tos[0]: m for m in server.messages}
    for person in batch.recipients:
        received = by_address[person.address]
        assert received.mail_from == "digest@speakernews.co.uk"
        assert received.user == USERNAME
        check_lines(received.data)
        check_message(parse(received.data), batch, person)


def test_lines_starting_with_a_dot_arrive_intact(
    server: SmtpServer, certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    text = ".starts with a dot\n..two dots\nfine\n."
    batch = make_batch(1, text=text, html=".<p>x</p>")
    with smtp(server, certificate, sleeps) as transport:
        assert transport.send(batch)[0].outcome is Outcome.SENT
    assert parts(parse(server.messages[0].data)) == (text, ".<p>x</p>")


def test_the_pool_reuses_its_connections(
    server: SmtpServer, certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    with smtp(server, certificate, sleeps, pool_size=2) as transport:
        first = transport.send(make_batch(20))
        second = transport.send(make_batch(20))
    assert {r.outcome for r in first + second} == {Outcome.SENT}
    assert len(server.messages) == 40
    assert server.connections <= 2  # the second batch went over the same connections
    per_connection = [m.connection for m in server.messages]
    assert max(per_connection.count(n) for n in set(per_connection)) >= 10


def test_a_connection_is_replaced_after_its_message_limit(
    server: SmtpServer, certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    transport = smtp(server, certificate, sleeps, messages_per_connection=5)
    results = transport.send(make_batch(12))  # not opened: opened and closed by send
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert server.connections == 3
    assert [m.connection for m in server.messages] == [1] * 5 + [2] * 5 + [3] * 2


@pytest.mark.parametrize(
    ("stage", "reply", "waits"),
    [
        ("RCPT", "451 4.7.1 Greylisted, try again later", [1.5, 3.0]),
        ("DATA", "451 4.3.0 Local error in processing", [1.5, 3.0]),
        ("RCPT", "421 4.7.0 Too many connections, closing", [1.5, 3.0]),
        ("DATA", "421 4.3.2 Shutting down", [1.5, 3.0]),
        # MAIL is scripted for the sender: the first two messages are refused once each.
        ("MAIL", "452 4.3.1 Insufficient system storage", [1.5]),
        ("MAIL", "421 4.7.0 Try again later, closing", [1.5]),
        # Lost before the message was sent, on a connection used before: a fresh connection
        # is tried at once (lost again), then the message waits for the next round.
        ("RCPT", DROP, [1.5]),
    ],
)
def test_a_refusal_for_now_is_retried_then_delivered(
    server: SmtpServer,
    certificate: tuple[Path, Path],
    sleeps: list[float],
    stage: str,
    reply: str,
    waits: list[float],
) -> None:
    address = "reader1@example.org" if stage != "MAIL" else "digest@speakernews.co.uk"
    server.script(stage, address, reply, reply)
    with smtp(server, certificate, sleeps) as transport:
        results = transport.send(make_batch(3))
    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    assert sleeps == waits  # a round of retries after each wait, the wait doubling
    assert sorted(server.recipients()) == [f"reader{n}@example.org" for n in range(3)]


def test_a_refusal_for_now_past_the_retries_is_deferred(
    server: SmtpServer, certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    server.script("RCPT", "reader1@example.org", *["451 4.7.1 Greylisted"] * 3)
    with smtp(server, certificate, sleeps) as transport:
        results = transport.send(make_batch(3))
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.DEFERRED, Outcome.SENT]
    assert results[1].detail == "RCPT TO: 451 4.7.1 Greylisted"
    assert not results[1].hard_bounce
    assert sleeps == [1.5, 3.0]
    assert server.connections == 1  # RSET, not a new connection, after each refusal


@pytest.mark.parametrize(
    ("stage", "reply", "hard_bounce"),
    [
        ("RCPT", "550 5.1.1 User unknown", True),
        ("RCPT", "551 User not local", True),
        ("RCPT", "553 Mailbox name not allowed", True),
        ("RCPT", "550 5.7.1 Rejected by policy", False),  # about us, not the address
        ("RCPT", "552 5.2.2 Mailbox full", False),
        ("DATA", "554 5.6.0 Message refused", False),
        ("DATA", "550 5.1.1 Recipient address rejected", True),
        ("MAIL", "553 5.7.1 Sender address rejected", False),
        ("MAIL", "550 5.1.8 Sender address domain not found", False),  # the sender's, not ours
        ("DATA", "550 5.1.8 Bad sender's system address", False),
    ],
)
def test_a_permanent_refusal_fails_without_retrying(
    server: SmtpServer,
    certificate: tuple[Path, Path],
    sleeps: list[float],
    stage: str,
    reply: str,
    hard_bounce: bool,
) -> None:
    address = "reader1@example.org" if stage != "MAIL" else "digest@speakernews.co.uk"
    server.script(stage, address, reply)
    with smtp(server, certificate, sleeps) as transport:
        results = transport.send(make_batch(3))
    failed = results[0 if stage == "MAIL" else 1]
    assert failed.outcome is Outcome.FAILED
    assert failed.hard_bounce is hard_bounce
    assert reply in failed.detail
    assert sleeps == []
    assert len(server.messages) == 2
    assert server.connections == 1


def test_a_refusal_at_the_end_of_data_is_reset_and_charges_no_one_else(
    certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    """A server that holds a refused message's transaction open (the next MAIL without RSET
    gets "503 nested MAIL command"): the connection is reset after the 554, so only the reader
    it was about fails and the next ones are sent over the same connection."""
    with running_smtp_server(certificate, holds_refused=True) as server:
        server.script("DATA", "reader1@example.org", "554 5.7.1 Message rejected as spam")
        server.script("DATA", "reader3@example.org", "451 4.3.0 Try again later")
        with smtp(server, certificate, sleeps) as transport:
            results = transport.send(make_batch(5))
        outcomes = [r.outcome for r in results]
        assert outcomes == [Outcome.SENT, Outcome.FAILED] + [Outcome.SENT] * 3
        assert results[1].detail == "end of DATA: 554 5.7.1 Message rejected as spam"
        assert not any("503" in r.detail for r in results)
        assert sorted(server.recipients()) == [f"reader{n}@example.org" for n in (0, 2, 3, 4)]
        assert server.connections == 1  # RSET, not a new connection
        assert sleeps == [1.5]  # the 451 was retried once


def test_a_503_to_mail_is_tried_again_on_a_fresh_connection(
    certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    """A server that lost track of the session answers MAIL with 503: not the reader's fault,
    so the message goes again (over a new connection), not FAILED."""
    with running_smtp_server(certificate) as server:
        server.script("MAIL", "digest@speakernews.co.uk", "503 5.5.1 Error: nested MAIL command")
        with smtp(server, certificate, sleeps) as transport:
            results = transport.send(make_batch(3))
        assert [r.outcome for r in results] == [Outcome.SENT] * 3
        assert sorted(server.recipients()) == [f"reader{n}@example.org" for n in range(3)]


def test_a_connection_lost_after_the_message_is_unknown_and_never_resent(
    server: SmtpServer, certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    server.script("DATA", "reader1@example.org", DROP)
    with smtp(server, certificate, sleeps) as transport:
        results = transport.send(make_batch(3))
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.UNKNOWN, Outcome.SENT]
    assert "may have been accepted" in results[1].detail
    assert sleeps == []
    assert server.recipients() == ["reader0@example.org", "reader2@example.org"]
    assert server.connections == 2  # the next message went over a new connection


def test_an_idle_connection_is_checked_with_noop_and_replaced(
    server: SmtpServer, certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    clock = Clock()
    with smtp(server, certificate, sleeps, clock=clock) as transport:
        assert transport.send(make_batch(2))[0].outcome is Outcome.SENT
        server.drop_connections()
        clock.now += NOOP_AFTER_IDLE_SECONDS + 1
        results = transport.send(make_batch(2))
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert (server.connections, len(server.messages), sleeps) == (2, 4, [])


def test_a_connection_closed_by_the_server_is_replaced_at_once(
    server: SmtpServer, certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    """Not idle long enough for NOOP: MAIL finds it gone, and a fresh connection carries the
    message in the same round, without a wait."""
    with smtp(server, certificate, sleeps) as transport:
        transport.send(make_batch(1))
        server.drop_connections()
        results = transport.send(make_batch(2))
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert (server.connections, len(server.messages), sleeps) == (2, 3, [])


def test_a_refused_password_stops_the_batch_deferred(
    server: SmtpServer, certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    with smtp(server, certificate, sleeps, password="wrong", pool_size=2) as transport:
        results = transport.send(make_batch(5))
    assert {r.outcome for r in results} == {Outcome.DEFERRED}
    assert all("refused AUTH as 'speakerfeed': 535" in r.detail for r in results)
    assert sleeps == []  # no use waiting: the password will not get better
    assert server.messages == []


def test_a_certificate_not_trusted_stops_the_batch(
    server: SmtpServer, certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    with smtp(server, certificate, sleeps, trusted=False) as transport:
        results = transport.send(make_batch(2))
    assert {r.outcome for r in results} == {Outcome.DEFERRED}
    assert "CERTIFICATE_VERIFY_FAILED" in results[0].detail
    assert (sleeps, server.messages) == ([], [])


def test_starttls_is_required_when_configured(
    certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    with running_smtp_server(None, mode="none", auth=False) as plain:
        results = smtp(plain, certificate, sleeps, username="").send(make_batch(1))
        assert plain.messages == []
    assert results[0].outcome is Outcome.DEFERRED
    assert "does not offer STARTTLS: not sending in clear" in results[0].detail


def test_tls_from_the_start(certificate: tuple[Path, Path], sleeps: list[float]) -> None:
    with running_smtp_server(certificate, mode="tls") as implicit:
        results = smtp(implicit, certificate, sleeps, security="tls").send(make_batch(2))
        assert implicit.recipients() == ["reader0@example.org", "reader1@example.org"]
        assert {m.user for m in implicit.messages} == {USERNAME}
    assert {r.outcome for r in results} == {Outcome.SENT}


def test_no_encryption_for_a_relay_on_this_machine(
    certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    with running_smtp_server(None, mode="none", auth=False) as plain:
        transport = smtp(plain, certificate, sleeps, security="none", username="")
        results = transport.send(make_batch(2))
        assert len(plain.messages) == 2
    assert {r.outcome for r in results} == {Outcome.SENT}


def test_no_server_at_all_is_deferred_after_the_retries(
    certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound but not listening: connections are refused
        server = SmtpServer()
        server.port = port
        results = smtp(server, certificate, sleeps).send(make_batch(2))
    assert {r.outcome for r in results} == {Outcome.DEFERRED}
    assert f"cannot connect to 127.0.0.1:{port}" in results[0].detail
    assert sleeps == [1.5, 3.0]


def test_a_recipient_that_cannot_be_sent_safely_fails_without_a_word_to_the_server(
    server: SmtpServer, certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    batch = make_batch(
        recipients=(recipient(1, address="x@y.org\r\nRCPT TO:<z@y.org>"), recipient(2))
    )
    with smtp(server, certificate, sleeps) as transport:
        results = transport.send(batch)
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.SENT]
    assert "To: a line break" in results[0].detail
    assert server.recipients() == ["reader2@example.org"]


def test_an_empty_batch_opens_no_connection(
    server: SmtpServer, certificate: tuple[Path, Path], sleeps: list[float]
) -> None:
    with smtp(server, certificate, sleeps, pool_size=3) as transport:
        assert transport.send(make_batch(recipients=())) == []
    assert server.connections == 0


def test_an_unexpected_error_costs_one_result_not_the_batch(
    server: SmtpServer,
    certificate: tuple[Path, Path],
    sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = BatchTemplate.personalise

    def broken(self: BatchTemplate, person: Recipient) -> bytes:
        data = real(self, person)
        if person.key == "sub-1":
            return None  # type: ignore[return-value]  # a bug, deep down
        return data

    monkeypatch.setattr(BatchTemplate, "personalise", broken)
    with smtp(server, certificate, sleeps, pool_size=2) as transport:
        results = transport.send(make_batch(4))
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.UNKNOWN] + [Outcome.SENT] * 2
    assert "unexpected error" in results[1].detail


def test_a_hard_bounce_in_a_send_suppresses_the_address_for_later_sends(
    server: SmtpServer,
    certificate: tuple[Path, Path],
    sleeps: list[float],
    engine: Engine,
    tmp_path: Path,
) -> None:
    """Through the ledger: the 550 5.1.1 recipient's row fails, their address is suppressed
    ("bounced"), and the next send skips them; a refusal of the message alone suppresses no
    one."""
    settings = make_project(
        tmp_path,
        email={"from_address": "The Speaker <digest@speakernews.co.uk>"},
        lists=[{"name": "daily", "title": "The Speaker Daily"}],
    )
    upgrade(engine)
    with engine.begin() as conn:
        for number in range(4):
            person = repo.add_subscriber(conn, f"reader{number}@example.org")
            repo.subscribe(conn, person, "daily", status="confirmed", consent={"action": "test"})
    server.script("RCPT", "reader1@example.org", "550 5.1.1 User unknown")
    server.script("DATA", "reader2@example.org", "554 5.6.0 Message refused")

    def send(send_id: str) -> dispatch.SendReport:
        with engine.begin() as conn:
            ledger.create_send(
                conn, send_id, "daily", DISPATCH_CONTENT, scheduled_at=datetime.now(UTC)
            )
        with smtp(server, certificate, sleeps) as transport:
            return dispatch.run_send(engine, settings, send_id, transport, secret=SMTP_SECRET)

    first = send("daily-1")
    assert first.counts["sent"] == 2 and first.counts["failed"] == 2
    with engine.connect() as conn:
        assert repo.is_suppressed(conn, repo.address_hash(SMTP_SECRET, "reader1@example.org"))
        assert not repo.is_suppressed(conn, repo.address_hash(SMTP_SECRET, "reader2@example.org"))
    second = send("daily-2")
    assert second.counts["skipped"] == 1 and second.counts["sent"] == 3
    delivered = [r for r in server.recipients() if r == "reader1@example.org"]
    assert delivered == []
