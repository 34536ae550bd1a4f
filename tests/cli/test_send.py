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

from tests.support.cli import cli_env, run_speakerfeed, speakerfeed_command
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
    header, row = listed.stdout.splitlines()
    assert header.split() == ["ID", "STATE", "SENT/RECIPIENTS", "CREATED"]
    assert re.search(r"daily-\S+\s+done\s+3/3", row), listed.stdout
    # Each value sits under its heading.
    assert row.index("done") == header.index("STATE")
    assert row.index("3/3") + len("3/3") == header.index("SENT/RECIPIENTS") + len("SENT/RECIPIENTS")
    send_id = row.split()[0]
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


# --- faults that are not the reader's: a full or read-only outbox, an SMTP refusal -----------

# Inside a user and mount namespace (no privilege needed): a small tmpfs mounted on the outbox,
# the command run, and what it wrote copied out before the namespace (and its tmpfs) goes.
_IN_NAMESPACE = """
mount -t tmpfs -o "$0" speakerfeed-test var/outbox || exit 99
"$@"
status=$?
cp var/outbox/*.eml ../written/ 2>/dev/null
exit $status
"""


@pytest.fixture(scope="module")
def namespaces() -> None:
    """Skip where user namespaces are not allowed (some containers, some kernels)."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1)")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces not allowed here: {probe.stderr.decode().strip()}")


def run_on_tmpfs(folder: Path, options: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`speakerfeed ARGS` with a tmpfs mounted (``options``) on the outbox folder."""
    (folder / "var" / "outbox").mkdir(parents=True, exist_ok=True)
    (folder.parent / "written").mkdir(exist_ok=True)
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", _IN_NAMESPACE, options, *speakerfeed_command(*args)],
        cwd=folder,
        env=cli_env(SECRET),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def addressed(paths: list[Path]) -> list[str]:
    return sorted(
        str(message_from_bytes(p.read_bytes(), policy=policy.default)["To"]) for p in paths
    )


def send_id_of(folder: Path) -> str:
    return run(folder, "sends", "list").stdout.splitlines()[1].split()[0]  # under the header


@pytest.mark.usefixtures("namespaces")
def test_a_full_outbox_pauses_the_send_at_once_and_resume_sends_the_rest_once(
    tmp_path: Path,
) -> None:
    """A real full filesystem: room for one message. `send` stops at the second with ENOSPC
    named, exits 3 (no traceback, no retry loop: one error), nobody is charged with it; once
    there is room `sends resume` sends the two others, and nobody gets two."""
    folder = make_site(tmp_path / "site", '[delivery]\ntransport = "outbox"\n')
    test = run(folder, "send", "daily", "--no-fetch", "--test-to", "editor@example.org")
    assert test.returncode == 0, test.stderr
    (copy,) = (folder / "var" / "outbox").glob("*.eml")
    pages = -(-copy.stat().st_size // 4096)  # the pages one message takes on tmpfs
    copy.unlink()

    full = run_on_tmpfs(folder, f"size={(pages + pages // 2) * 4096}", "send", "daily", "-q")
    assert full.returncode == 3, full.stdout + full.stderr
    outbox = folder / "var" / "outbox"
    assert f"paused: outbox: cannot write to {outbox}: ENOSPC (No space left on device)" in (
        full.stderr
    )
    assert "sends resume daily-" in full.stderr and "Traceback" not in full.stderr
    assert re.search(r"daily-\S+: paused \(2 pending, 1 sent\)", full.stdout), full.stdout
    written = list((tmp_path / "written").glob("*.eml"))
    assert len(written) == 1

    send_id = send_id_of(folder)
    shown = run(folder, "sends", "show", send_id)
    assert "errors:" not in shown.stdout  # no reader's row is charged with the disk's fault
    resumed = run(folder, "sends", "resume", send_id, "-q")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{send_id}: done (3 sent)" in resumed.stdout
    assert addressed(written + list(outbox.glob("*.eml"))) == READERS


@pytest.mark.usefixtures("namespaces")
def test_a_read_only_outbox_pauses_send_and_resume_with_exit_status_3(tmp_path: Path) -> None:
    folder = make_site(tmp_path / "site", '[delivery]\ntransport = "outbox"\n')
    sent = run_on_tmpfs(folder, "ro,size=1m", "send", "daily", "--no-fetch", "-q")
    assert sent.returncode == 3, sent.stdout + sent.stderr
    assert "EROFS (Read-only file system)" in sent.stderr and "Traceback" not in sent.stderr
    assert re.search(r"daily-\S+: paused \(3 pending\)", sent.stdout), sent.stdout

    send_id = send_id_of(folder)
    still = run_on_tmpfs(folder, "ro,size=1m", "sends", "resume", send_id, "-q")
    assert still.returncode == 3, still.stdout + still.stderr
    assert "EROFS" in still.stderr
    assert f"{send_id}: paused (3 pending)" in still.stdout

    resumed = run(folder, "sends", "resume", send_id, "-q")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert addressed(list((folder / "var" / "outbox").glob("*.eml"))) == READERS


def smtp_delivery(port: int, certificate: tuple[Path, Path], **more: object) -> str:
    extra = "".join(f"{key} = {value!r}\n" for key, value in more.items())
    return f"""[delivery]
transport = "smtp"

[delivery.smtp]
host = "127.0.0.1"
port = {port}
username = "{USERNAME}"
ca_file = "{certificate[0]}"
pool_size = 1
{extra}"""


def test_an_smtp_refusal_after_data_fails_that_reader_alone(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The server refuses one reader's message at the end of DATA and, like some servers,
    holds that transaction open: the next reader is still sent (the session is reset), and
    `send` exits 0, since the refusal is the reader's own."""
    certificate = tls_files(tmp_path_factory.mktemp("tls"))
    with running_smtp_server(certificate, holds_refused=True) as server:
        server.script("DATA", "ann@example.org", "554 5.7.1 Message rejected as spam")
        delivery = smtp_delivery(server.port, certificate)
        folder = make_site(tmp_path, delivery)
        sent = run(folder, "send", "daily", "--no-fetch", "-q", SPEAKERFEED_SMTP_PASSWORD=PASSWORD)
        assert sent.returncode == 0, sent.stderr + sent.stdout
        assert "(2 sent, 1 failed)" in sent.stdout, sent.stdout
        assert sorted(server.recipients()) == READERS[1:]
        shown = run(folder, "sends", "show", send_id_of(folder))
        assert "1  end of DATA: 554 5.7.1 Message rejected as spam" in shown.stdout, shown.stdout
        assert "503" not in shown.stdout


def test_a_reader_still_refused_for_now_makes_send_exit_3_until_resumed(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A 451 past the retries leaves that reader pending: the send is not done, and `send`
    says so with exit status 3 (documented in its --help); `sends resume` sends the reader."""
    certificate = tls_files(tmp_path_factory.mktemp("tls"))
    with running_smtp_server(certificate) as server:
        server.script("DATA", "bob@example.org", "451 4.3.0 Mailbox busy, try again later")
        delivery = smtp_delivery(server.port, certificate, max_retries=0)
        folder = make_site(tmp_path, delivery)
        password = {"SPEAKERFEED_SMTP_PASSWORD": PASSWORD}
        sent = run(folder, "send", "daily", "--no-fetch", "-q", **password)
        assert sent.returncode == 3, sent.stderr + sent.stdout
        assert re.search(r"daily-\S+: sending \(1 pending, 2 sent\)", sent.stdout), sent.stdout
        assert "not done: 1 pending (refused for now)" in sent.stderr
        assert "451 4.3.0" not in run(folder, "sends", "show", send_id_of(folder)).stdout
        resumed = run(folder, "sends", "resume", send_id_of(folder), "-q", **password)
        assert resumed.returncode == 0, resumed.stderr + resumed.stdout
        assert "done (3 sent)" in resumed.stdout
        assert sorted(server.recipients()) == READERS
    for command in (("send", "--help"), ("sends", "resume", "--help")):
        helped = run(folder, *command)
        assert "Exit status: 0 when the send is done" in helped.stdout
        assert "3 when it paused" in helped.stdout
