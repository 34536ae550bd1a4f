"""One address check at every door (mail.addresses): messy addresses through the sign-up form,
a CSV import and `speakerfeed subscribers add`, on SQLite and PostgreSQL; and an IDN address
that signs up and gets its confirmation, at its ASCII form, from a real SMTP server."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import lxml.html
import pytest
from sqlalchemy import Engine, func, select

from speakerfeed.actions.database import Store
from speakerfeed.actions.subscribers import add_subscriber, erase_subscriber, show_subscriber
from speakerfeed.errors import AddressError
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import upgrade
from speakerfeed.store.importer import import_csv
from speakerfeed.store.schema import consent_records, rate_limits, subscribers
from speakerfeed.transports.base import Transport
from speakerfeed.transports.registry import transport_from_settings
from speakerfeed.web.app import create_app
from speakerfeed.web.http_limits import server_options
from tests.mail.test_addresses import MESSY
from tests.support.asgi_server import running
from tests.support.cli import run_speakerfeed
from tests.support.project import BASE_CONFIG, make_project
from tests.support.smtp_server import SmtpServer, running_smtp_server
from tests.support.webapp import EMAIL, LISTS, SECRET, ReaderSite, reader_site

__all__ = ["reader_site"]

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
IDN_TYPED, IDN_SENT = "Ann@Bücher.Example", "ann@xn--bcher-kva.example"


def _stored(engine: Engine) -> tuple[int, int, list[str]]:
    """(subscribers, consent records, rate-limit buckets) in the store."""
    with engine.connect() as conn:
        people = conn.execute(select(func.count()).select_from(subscribers)).scalar_one()
        consents = conn.execute(select(func.count()).select_from(consent_records)).scalar_one()
        buckets = list(conn.execute(select(rate_limits.c.bucket)).scalars())
    return int(people), int(consents), buckets


def _token(client: httpx.Client) -> str:
    found = CSRF.search(client.get("/subscribe").text)
    assert found is not None
    return found.group(1)


# ------------------------------------------------------------------------------- the form


def test_the_form_refuses_what_the_mailer_cannot_send_with_422_at_the_field(
    reader_site: ReaderSite,
) -> None:
    with httpx.Client(base_url=reader_site.url, timeout=10) as client:
        token = _token(client)
        for typed, reason in MESSY:
            form = {"csrf_token": token, "list": "daily", "email": typed}
            answer = client.post("/subscribe", data=form)
            assert answer.status_code == 422, (typed, answer.status_code)
            page: Any = lxml.html.document_fromstring(answer.text)
            said = page.get_element_by_id("email-error").text_content()
            assert reason in said and "like name@example.org" in said, (typed, said)
            assert 'aria-describedby="email-error" aria-invalid="true"' in answer.text
        # Raw latin-1 bytes, as a badly set-up client sends them: refused the same way.
        for body in (b"caf\xe9@example.org", b"caf%E9@example.org"):
            answer = client.post(
                "/subscribe",
                content=b"csrf_token=" + token.encode() + b"&list=daily&email=" + body,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert answer.status_code == 422, body
    # Nothing stored: no subscriber, no consent, no per-address window used (only the per-IP
    # bucket counted the attempts).
    people, consents, buckets = _stored(reader_site.engine)
    assert (people, consents, reader_site.outbox) == (0, 0, [])
    assert buckets and all(bucket.startswith("signup-ip:") for bucket in buckets)


def test_an_idn_address_signs_up_at_its_ascii_form(reader_site: ReaderSite) -> None:
    with httpx.Client(base_url=reader_site.url, timeout=10) as client:
        form = {"csrf_token": _token(client), "list": "daily", "email": IDN_TYPED}
        answer = client.post("/subscribe", data=form)
    assert answer.status_code == 303
    assert reader_site.statuses(IDN_SENT) == {"daily": "pending"}
    assert [r.address for batch in reader_site.outbox for r in batch.recipients] == [IDN_SENT]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp_server(None, mode="none", auth=False) as server:
        yield server


def test_the_confirmation_of_an_idn_address_arrives_at_its_ascii_form_over_smtp(
    engine: Engine, tmp_path: Path, smtp: SmtpServer
) -> None:
    """The configured SMTP transport, as `serve` uses it, and a real SMTP server."""
    upgrade(engine)
    delivery = {
        "transport": "smtp",
        "smtp": {"host": smtp.host, "port": smtp.port, "security": "none", "max_retries": 0},
    }
    settings = make_project(tmp_path, email=EMAIL, lists=LISTS, delivery=delivery)

    def transport() -> Transport:
        return transport_from_settings(settings.delivery, settings.root)

    app = create_app(settings, engine=engine, secret=SECRET, transport=transport)
    with running(app, **server_options(settings.server)) as url, httpx.Client(base_url=url) as web:
        form = {"csrf_token": _token(web), "list": "daily", "email": IDN_TYPED, "name": "Ann"}
        answer = web.post("/subscribe", data=form)
    assert answer.status_code == 303, answer.text
    (message,) = smtp.messages
    assert message.rcpt_tos == (IDN_SENT,)
    assert b"\r\nTo: Ann <ann@xn--bcher-kva.example>\r\n" in message.data
    assert b"/confirm/daily/" in message.data


# ------------------------------------------------------------------------------ the import


def test_an_import_reports_each_messy_address_by_line_and_imports_the_rest(
    engine: Engine, tmp_path: Path
) -> None:
    upgrade(engine)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["email", "name"])
    writer.writerow(["ann@example.org", "Ann"])  # line 2
    for typed, _ in MESSY:  # lines 3 ...
        writer.writerow([typed, "Messy"])
    writer.writerow([IDN_TYPED, "Ann B"])
    path = tmp_path / "readers.csv"
    path.write_text(text.getvalue(), encoding="utf-8")

    report = import_csv(engine, path, "daily", secret=SECRET, confirmed=False)

    by_line = {problem.line: problem.message for problem in report.problems}
    assert set(by_line) == set(range(3, 3 + len(MESSY)))
    for line, (typed, reason) in enumerate(MESSY, 3):
        assert by_line[line].startswith(f"not an email address: {typed!r}"), by_line[line]
        assert reason in by_line[line]
    assert (report.rows, report.added, report.rejected) == (len(MESSY) + 2, 2, len(MESSY))
    with engine.connect() as conn:
        stored = set(conn.execute(select(subscribers.c.email)).scalars())
    assert stored == {"ann@example.org", IDN_SENT}


# ------------------------------------------------------------------------ subscribers add

CONFIG = (
    BASE_CONFIG
    + """
[email]
from_address = "The Speaker <digest@example.org>"

[[lists]]
name = "daily"
title = "The Speaker Daily"

[store]
url = "sqlite:///var/store.sqlite3"
"""
)


def test_subscribers_add_refuses_each_messy_address_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    for typed, reason in MESSY:
        added = run_speakerfeed(tmp_path, "subscribers", "add", typed, "--list", "daily",
                                secret="x" * 32)  # fmt: skip
        assert added.returncode == 1, (typed, added.stdout)
        assert reason in added.stderr and "Traceback" not in added.stderr, added.stderr
    idn = run_speakerfeed(tmp_path, "subscribers", "add", IDN_TYPED, "--list", "daily",
                          secret="x" * 32)  # fmt: skip
    assert idn.returncode == 0, idn.stderr
    assert f"{IDN_SENT}: pending on daily" in idn.stdout
    counted = run_speakerfeed(tmp_path, "subscribers", "count", "--list", "daily", secret="x" * 32)
    assert counted.stdout.strip() == "1"  # the messy ones left nothing behind
    shown = run_speakerfeed(tmp_path, "subscribers", "show", "ann@bücher.example", secret="x" * 32)
    assert IDN_SENT in shown.stdout


def test_an_address_stored_before_the_check_can_still_be_shown_and_erased(
    engine: Engine, tmp_path: Path
) -> None:
    """Sign-ups before this check stored what the mailer refuses (a 65-character local part, a
    raw IDN domain): an editor can still find and erase them; adding one again is refused."""
    upgrade(engine)
    settings = make_project(tmp_path, email=EMAIL, lists=LISTS)
    store = Store(engine, SECRET)
    too_long = "a" * 65 + "@example.org"
    with engine.begin() as conn:
        repo.add_subscriber(conn, too_long)
        repo.add_subscriber(conn, "bob@bücher.example")
    assert show_subscriber(settings, store, too_long.upper()).subscriber is not None
    assert erase_subscriber(settings, store, too_long).found
    with pytest.raises(AddressError, match="too long before the @-sign"):
        add_subscriber(settings, store, "daily", too_long)
    # The IDN one is looked up by its ASCII form first, then as it was stored.
    assert show_subscriber(settings, store, "Bob@Bücher.example").subscriber is not None
    assert erase_subscriber(settings, store, "bob@bücher.example").found
