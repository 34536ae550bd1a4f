"""`speakerfeed send LIST` delivering the repository's own digest through each transport: the
outbox, SMTP (aiosmtpd with STARTTLS and AUTH) and SendGrid's v3 API (a local checking server).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.support.cli import run_speakerfeed
from tests.support.sendgrid_server import running_sendgrid_server
from tests.support.smtp_server import PASSWORD, USERNAME, running_smtp_server, tls_files

ROOT = Path(__file__).resolve().parents[2]
SECRET = "send-cli-secret-key-0123456789"
READERS = ["ann@example.org", "bob@example.org", "cat@example.org"]


def run(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_speakerfeed(folder, *args, secret=SECRET, extra_env=env)


def make_site(folder: Path, delivery: str) -> Path:
    """The repository's config.toml and articles, with [delivery] replaced."""
    shutil.copytree(ROOT / "articles", folder / "articles")
    config = (ROOT / "config.toml").read_text(encoding="utf-8")
    (folder / "config.toml").write_text(config + "\n" + delivery, encoding="utf-8")
    (folder / "people.csv").write_text("email\n" + "\n".join([*READERS, "gone@example.org"]))
    imported = run(folder, "subscribers", "import", "people.csv", "--list", "daily", "--confirmed")
    assert imported.returncode == 0, imported.stderr
    gone = run(folder, "subscribers", "remove", "gone@example.org", "--list", "daily")
    assert gone.returncode == 0
    return folder


def check_digest(message: EmailMessage) -> None:
    assert message["Subject"].startswith("The Speaker Daily: ")
    assert message["From"] == "The Speaker <digest@speakernews.co.uk>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe/daily/" in message["List-Unsubscribe"]
    text = message.get_body(("plain",))
    assert text is not None and "What is happening in Kazakhstan?" in text.get_content()


def test_send_through_the_outbox_once_and_only_once(tmp_path: Path) -> None:
    folder = make_site(tmp_path, '[delivery]\ntransport = "outbox"\n')
    dry = run(folder, "send", "daily", "--dry-run", "--no-fetch")
    assert dry.returncode == 0, dry.stderr
    assert "would go to 3 confirmed subscribers" in dry.stdout
    assert not (folder / "var" / "outbox").exists()

    test = run(folder, "send", "daily", "--no-fetch", "--test-to", "editor@example.org")
    assert test.returncode == 0, test.stderr
    assert "test copy to editor@example.org: sent" in test.stdout
    (only,) = (folder / "var" / "outbox").glob("*.eml")
    only.unlink()

    sent = run(folder, "send", "daily", "--no-fetch", "-q")
    assert sent.returncode == 0, sent.stderr
    assert re.search(r"daily-\S+: done \(3 sent\)", sent.stdout), sent.stdout
    messages = [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in (folder / "var" / "outbox").glob("*.eml")
    ]
    assert sorted(str(m["To"]) for m in messages) == READERS
    for message in messages:
        assert isinstance(message, EmailMessage)
        check_digest(message)
    assert (folder / "public" / "digests" / "index.html").exists()  # the web copy is published

    again = run(folder, "send", "daily", "--no-fetch")
    assert "no new articles since the last digest" in again.stdout
    assert len(list((folder / "var" / "outbox").glob("*.eml"))) == 3

    listed = run(folder, "sends", "list")
    assert re.search(r"daily-\S+\s+done\s+3/3", listed.stdout), listed.stdout
    send_id = listed.stdout.split()[0]
    shown = run(folder, "sends", "show", send_id)
    assert "sent" in shown.stdout and "done" in shown.stdout
    missing = run(folder, "sends", "show", "nope")
    assert missing.returncode == 1 and "no send with id 'nope'" in missing.stderr


def test_send_through_smtp_with_starttls_and_auth(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    certificate = tls_files(tmp_path_factory.mktemp("tls"))
    with running_smtp_server(certificate) as server:
        delivery = f"""[delivery]
transport = "smtp"

[delivery.smtp]
host = "127.0.0.1"
port = {server.port}
username = "{USERNAME}"
ca_file = "{certificate[0]}"
"""
        folder = make_site(tmp_path, delivery)
        sent = run(folder, "send", "daily", "--no-fetch", SPEAKERFEED_SMTP_PASSWORD=PASSWORD)
        assert sent.returncode == 0, sent.stderr + sent.stdout
        assert "(3 sent)" in sent.stdout
        assert sorted(server.recipients()) == READERS
        for received in server.messages:
            message = message_from_bytes(received.data, policy=policy.default)
            assert isinstance(message, EmailMessage)
            check_digest(message)

    no_password = run(folder, "send", "daily", "--no-fetch")
    assert no_password.returncode == 1
    assert "SPEAKERFEED_SMTP_PASSWORD" in no_password.stderr
    assert "Traceback" not in no_password.stderr


def test_send_through_the_sendgrid_api(tmp_path: Path) -> None:
    with running_sendgrid_server("SG.test-key") as server:
        delivery = f"""[delivery]
transport = "sendgrid"

[delivery.sendgrid]
api_url = "{server.url}"
"""
        folder = make_site(tmp_path, delivery)
        sent = run(
            folder, "send", "daily", "--no-fetch", SPEAKERFEED_SENDGRID_API_KEY="SG.test-key"
        )
        assert sent.returncode == 0, sent.stderr + sent.stdout
        assert "(3 sent)" in sent.stdout
        assert server.answered() == [202]  # one request for the three
        assert sorted(d.to["email"] for d in server.delivered) == READERS
        for delivered in server.delivered:
            assert delivered.subject.startswith("The Speaker Daily: ")
            assert "/unsubscribe/daily/" in delivered.headers["List-Unsubscribe"]
            assert "What is happening in Kazakhstan?" in delivered.text


def test_sends_list_and_show_count_the_readers_still_to_be_added(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from speakerfeed.config import load_settings
    from speakerfeed.store import ledger
    from speakerfeed.store.engine import create_engine_for

    folder = make_site(tmp_path, '[delivery]\ntransport = "outbox"\n')
    engine = create_engine_for(load_settings(folder / "config.toml"))
    content = ledger.SendContent(subject="S", html="<p>H</p>", text="T")
    with engine.begin() as conn:  # as `speakerfeed send` records it: the readers added later
        ledger.create_send(
            conn, "daily-x", "daily", content, scheduled_at=datetime.now(UTC), record_audience=False
        )
    engine.dispose()
    listed = run(folder, "sends", "list")
    assert re.search(r"daily-x\s+sending\s+0/3\s", listed.stdout), listed.stdout
    shown = run(folder, "sends", "show", "daily-x")
    assert "3 more to be added to the ledger as the send goes on" in shown.stdout, shown.stdout
    resumed = run(folder, "sends", "resume", "daily-x", "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert "daily-x: done (3 sent)" in resumed.stdout
    assert "more to be added" not in run(folder, "sends", "show", "daily-x").stdout
