"""`send LIST --test-to a@x,b@y` as an editor uses it: each colleague gets the real digest,
marked "[Test]", through the SMTP server; nothing is recorded, so the real send that follows
still carries the same articles, and a test copy's unsubscribe link unsubscribes nobody. On
SQLite and PostgreSQL."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine

from speakerfeed.config import load_settings
from speakerfeed.web.app import create_app
from tests.cli.test_send import READERS, SECRET, check_digest, make_site, run
from tests.support.asgi_server import running
from tests.support.smtp_server import PASSWORD, USERNAME, running_smtp_server, tls_files
from tests.support.webapp import KeptMail

KAZAKHSTAN = "What is happening in Kazakhstan?"  # an article of the repository's next digest


def _delivery(port: int, ca_file: Path, engine: Engine) -> str:
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    return f"""[delivery]
transport = "smtp"

[delivery.smtp]
host = "127.0.0.1"
port = {port}
username = "{USERNAME}"
ca_file = "{ca_file}"

[store]
url = "{url}"
"""


def _messages(data: list[bytes]) -> list[EmailMessage]:
    found = [message_from_bytes(raw, policy=policy.default) for raw in data]
    assert all(isinstance(message, EmailMessage) for message in found)
    return found


def _one_click(folder: Path, unsubscribe_url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """POST RFC 8058's one-click unsubscribe to the readers' web app, as a mail client does."""
    from speakerfeed.store.engine import engine_for_url

    monkeypatch.setenv("SPEAKERFEED_SECRET_KEY", SECRET)
    settings = load_settings(folder / "config.toml")
    engine = engine_for_url(settings.store.url)
    try:
        app = create_app(
            settings, engine=engine, secret=SECRET.encode(), transport=lambda: KeptMail([])
        )
        with running(app) as base:
            answer = httpx.post(
                base + urlsplit(unsubscribe_url).path,
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
    finally:
        engine.dispose()
    return answer.status_code


def test_test_copies_go_to_each_address_marked_and_leave_the_real_send_untouched(
    engine: Engine,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    certificate = tls_files(tmp_path_factory.mktemp("tls"))
    with running_smtp_server(certificate) as server:
        folder = make_site(tmp_path, _delivery(server.port, certificate[0], engine))
        test = run(
            folder,
            "send",
            "daily",
            "--no-fetch",
            "--test-to",
            " Editor@Example.org,sub.editor+digest@example.org ",
            SPEAKERFEED_SMTP_PASSWORD=PASSWORD,
        )
        assert test.returncode == 0, test.stderr + test.stdout
        assert "test copy to editor@example.org: sent" in test.stdout
        assert "test copy to sub.editor+digest@example.org: sent" in test.stdout
        assert sorted(server.recipients()) == [
            "editor@example.org",
            "sub.editor+digest@example.org",
        ]
        copies = _messages([received.data for received in server.messages])
        assert sorted(str(m["To"]) for m in copies) == sorted(server.recipients())  # one each
        for copy in copies:
            assert copy["Subject"].startswith("[Test] The Speaker Daily: "), copy["Subject"]
            text = copy.get_body(("plain",))
            assert text is not None and KAZAKHSTAN in text.get_content()

        # Nothing recorded: no send in the ledger.
        listed = run(folder, "sends", "list")
        assert listed.stdout == "no sends yet\n", listed.stdout

        # A colleague clicks "unsubscribe" in the test copy: nobody is unsubscribed.
        unsubscribe = copies[0]["List-Unsubscribe"].strip("<>").split(">")[0]
        # It answers as for any link (revealing nothing); the real send below shows who is left.
        assert _one_click(folder, unsubscribe, monkeypatch) == 200

        server.messages.clear()
        real = run(folder, "send", "daily", "--no-fetch", "-q", SPEAKERFEED_SMTP_PASSWORD=PASSWORD)
        assert real.returncode == 0, real.stderr + real.stdout
        assert "(3 sent)" in real.stdout, real.stdout
        assert sorted(server.recipients()) == READERS  # every reader still subscribed
        for message in _messages([received.data for received in server.messages]):
            assert not str(message["Subject"]).startswith("[Test]")
            check_digest(message)  # the same articles: the test did not use them up

    ledger = run(folder, "sends", "list").stdout.splitlines()
    assert len(ledger) == 2 and " done " in ledger[1] and "3/3" in ledger[1], ledger


@pytest.mark.parametrize(
    ("test_to", "expected"),
    [
        (
            "ed@example.org,editor",
            "error: --test-to: An email address must have an @-sign: 'editor'",
        ),
        ("ed@example.org,,bo@example.org", "error: --test-to: address 2 of 3 is empty"),
        ("", "error: --test-to: expected one or more email addresses"),
        (" , ", "error: --test-to: expected one or more email addresses"),
    ],
)
def test_a_bad_test_address_sends_nothing_to_anyone(
    tmp_path: Path, test_to: str, expected: str
) -> None:
    folder = make_site(tmp_path, '[delivery]\ntransport = "outbox"\n')
    test = run(folder, "send", "daily", "--no-fetch", "--test-to", test_to)
    assert test.returncode == 1
    assert expected in test.stderr, test.stderr
    assert "Traceback" not in test.stderr
    assert not list((folder / "var" / "outbox").glob("*.eml"))  # not the test, not the readers
    assert run(folder, "sends", "list").stdout == "no sends yet\n"
