"""The whole double opt-in loop on localhost, from a publication `speakerfeed init` just made:
sign up, open the confirmation from var/outbox/, confirm, preferences, then unsubscribe from the
first digest's link. Every link is followed as it is written in the email.

The one change to the config as init wrote it is [server] port: a free one instead of 8080, which
may be taken on a test machine. `serve --port` would move serve's own links (test_serve.py shows
it), but `speakerfeed send`, a separate command, reads the port from config.toml."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import unescape as html_unescape
from pathlib import Path

import httpx
import pytest

from tests.support.cli import cli_env, run_speakerfeed, speakerfeed_command

READER = "amelia.o'neil+news@example.org"
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def publication(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fresh")
    made = run_speakerfeed(root, "init", "gazette", "--title", "The Gazette")
    assert made.returncode == 0, made.stderr
    return root / "gazette"


@pytest.fixture(scope="module")
def serve(publication: Path) -> Iterator[tuple[str, Path]]:
    """`speakerfeed serve` as a reader's machine runs it, and the file its output goes to."""
    port = _free_port()
    config = publication / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert "\nport = 8080\n" in text
    config.write_text(text.replace("\nport = 8080\n", f"\nport = {port}\n"), encoding="utf-8")
    log = publication / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            speakerfeed_command("serve"),
            cwd=publication,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=cli_env(),
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"serve did not start:\n{log.read_text(errors='replace')}")
                time.sleep(0.2)
        yield base, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def _mails(folder: Path, to: str) -> list[EmailMessage]:
    found = []
    for path in sorted((folder / "var" / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"].addresses[0].addr_spec == to:
            found.append(message)
    return found


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _button(browser: httpx.Client, url: str) -> httpx.Response:
    """Open a page and press its one form's button, as a reader does."""
    page = browser.get(url)
    assert page.status_code == 200, page.text
    token = CSRF.search(page.text)
    assert token is not None, page.text
    return browser.post(url, data={"csrf_token": token.group(1)}, follow_redirects=True)


def test_sign_up_confirm_preferences_and_unsubscribe_on_localhost(
    serve: tuple[str, Path], publication: Path
) -> None:
    base, log = serve
    assert f"links in emails lead to {base} (where it listens: email.app_url unset)" in (
        log.read_text(encoding="utf-8")
    )
    with httpx.Client(base_url=base, timeout=15) as browser:
        form = browser.get("/subscribe")
        assert form.status_code == 200
        assert "The Gazette news" in form.text  # the one list, chosen for the reader
        token = CSRF.search(form.text)
        assert token is not None
        sent = browser.post(
            "/subscribe",
            data={
                "csrf_token": token.group(1),
                "list": "news",
                "name": "Amelia O'Neil",
                "email": READER,
            },
            follow_redirects=True,
        )
        assert sent.status_code == 200
        assert "Check your inbox" in sent.text

    (confirmation,) = _mails(publication, READER)
    assert confirmation["Subject"] == "Confirm your subscription to The Gazette news"
    link = re.search(r"https?://\S+/confirm/news/\S+", _text(confirmation))
    assert link is not None
    assert link.group(0).startswith(base + "/confirm/news/")  # opens where serve runs
    html = confirmation.get_body(("html",))
    assert html is not None
    assert f'href="{link.group(0)}"' in html.get_content()

    # The link opened from the mail program: a new browser window, no cookies yet.
    with httpx.Client(timeout=15) as browser:
        confirmed = _button(browser, link.group(0))
        assert confirmed.status_code == 200
        assert "You are subscribed" in confirmed.text
        preferences = re.search(r'href="([^"]*/preferences/news/[^"]+)"', confirmed.text)
        assert preferences is not None
        preferences_url = str(confirmed.url.join(preferences.group(1)))
        assert preferences_url.startswith(base + "/preferences/news/")
        page = browser.get(preferences_url)
        assert page.status_code == 200
        assert 'value="news" checked' in page.text
        assert READER in html_unescape(page.text)

    # The first digest, sent by hand, reaches the reader's inbox (the outbox) ...
    sent_digest = run_speakerfeed(publication, "send", "news", "--now", "--no-fetch")
    assert sent_digest.returncode == 0, sent_digest.stderr
    mails = _mails(publication, READER)
    # ... after the welcome the confirmation brought (speakerfeed.actions.welcomes).
    (welcome,) = [m for m in mails if m["Subject"] == "Welcome to The Gazette news"]
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    others = (confirmation["Subject"], welcome["Subject"])
    (digest,) = [m for m in mails if m["Subject"] not in others]
    assert digest["Subject"] == "The Gazette news: Welcome to The Gazette"
    text = _text(digest)
    assert "Hello Amelia O'Neil," in text
    unsubscribe = re.search(r"Unsubscribe: (\S+)", text)
    assert unsubscribe is not None
    assert unsubscribe.group(1).startswith(base + "/unsubscribe/news/")
    assert f"<{unsubscribe.group(1)}>" in digest["List-Unsubscribe"]
    view = re.search(r"View in your browser: (\S+)", text)
    assert view is not None
    assert view.group(1).startswith(base + "/digests/news/")

    # ... whose links work too: the web copy, then leaving.
    with httpx.Client(timeout=15) as browser:
        web_copy = browser.get(view.group(1), follow_redirects=True)
        assert web_copy.status_code == 200
        assert "Welcome to The Gazette" in web_copy.text
        left = _button(browser, unsubscribe.group(1))
        assert left.status_code == 200
        assert "You have unsubscribed" in left.text
        again = browser.get(unsubscribe.group(1))
        assert "You have unsubscribed" in again.text

    for status, count in (("confirmed", "0"), ("unsubscribed", "1")):
        counted = run_speakerfeed(
            publication, "subscribers", "count", "--list", "news", "--status", status
        )
        assert counted.returncode == 0, counted.stderr
        assert counted.stdout.strip() == count, (status, counted.stdout)
