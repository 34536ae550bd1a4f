"""`speakerfeed serve` as a real subprocess on a free port: it builds, then serves the feeds."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.browser import PageFactory, assert_no_axe_violations, check_skip_link
from tests.support.cli import cli_env, speakerfeed_command
from tests.support.project import BASE_CONFIG, markdown_article


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


LISTS = """
[email]
from_address = "The Speaker <digest@speakernews.co.uk>"
postal_address = "The Speaker, 20 Example Street, London"

[[lists]]
name = "daily"
title = "The Speaker Daily"
"""


@pytest.fixture(scope="module")
def site_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project on embedded defaults: SQLite, the outbox transport, no secret key given."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "config.toml").write_text(BASE_CONFIG + LISTS, encoding="utf-8")
    (folder / "articles").mkdir()
    (folder / "articles" / "hello.md").write_text(
        markdown_article("Hello readers", "2024-05-01 10:00", tags="[news]"), encoding="utf-8"
    )
    return folder


@pytest.fixture(scope="module")
def server(site_folder: Path) -> Iterator[str]:
    folder = site_folder
    port = _free_port()
    process = subprocess.Popen(
        speakerfeed_command("serve", "--port", str(port)),
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=cli_env(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"serve exited early:\n{output}")
                time.sleep(0.2)
        else:
            pytest.fail("serve did not start listening within 60 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/rss.xml", "application/rss+xml"),
        ("/atom.xml", "application/atom+xml"),
        ("/feed.json", "application/feed+json"),
        ("/tags/news/atom.xml", "application/atom+xml"),
        ("/rss.html", "text/html"),
        ("/", "text/html"),
    ],
)
def test_feeds_are_served_with_their_media_types(server: str, path: str, media_type: str) -> None:
    response = httpx.get(server + path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    if path.endswith((".xml", ".json")):
        assert b"Hello readers" in response.content


def test_conditional_get_gives_304(server: str) -> None:
    first = httpx.get(server + "/atom.xml")
    etag = first.headers["etag"]
    second = httpx.get(server + "/atom.xml", headers={"If-None-Match": etag})
    assert second.status_code == 304
    assert second.content == b""


def test_missing_file_is_404(server: str) -> None:
    assert httpx.get(server + "/nope.xml").status_code == 404


def test_a_browser_gets_the_feeds_html_page_and_a_reader_the_feed(server: str) -> None:
    browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    for path in ("/rss.xml", "/atom.xml"):
        response = httpx.get(server + path, headers={"Accept": browser_accept})
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "Accept" in [v.strip() for v in response.headers["vary"].split(",")]
        assert b"Hello readers" in response.content
        reader = httpx.get(server + path, headers={"Accept": "application/rss+xml, */*"})
        assert reader.headers["content-type"].startswith("application/")
        assert reader.content.startswith(b"<?xml") and b"xml-stylesheet" not in reader.content


@pytest.mark.browser
def test_a_feed_opened_in_chromium_through_serve_is_a_readable_accessible_page(
    server: str, open_page: PageFactory
) -> None:
    page = open_page(width=375)
    response = page.goto(server + "/rss.xml")
    assert response is not None
    assert response.ok
    assert page.locator("h1").inner_text() == "The Speaker"
    assert page.locator("main#main article").count() == 1
    assert "Hello readers" in page.locator("main#main").inner_text()
    assert page.locator("xslt-warning-banner").count() == 0  # no XSLT, no deprecation banner
    assert_no_axe_violations(page)
    check_skip_link(page)


def _outbox(folder: Path) -> list[EmailMessage]:
    messages = []
    for path in sorted((folder / "var" / "outbox").glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def test_a_reader_subscribes_confirms_from_the_outbox_and_unsubscribes(
    server: str, site_folder: Path
) -> None:
    """The issue's "done when", through the real `speakerfeed serve` on embedded defaults."""
    import re

    from speakerfeed.mail import tokens

    public = server  # email.app_url unset: links lead to where serve listens (--port included)
    with httpx.Client(base_url=server, timeout=10) as http:
        form = http.get("/subscribe").text
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form)
        assert token is not None
        answer = http.post(
            "/subscribe",
            data={"csrf_token": token.group(1), "list": "daily", "email": "reader@example.org"},
        )
        assert answer.status_code == 303

        (mail,) = _outbox(site_folder)
        assert mail["To"] == "reader@example.org"
        assert mail["Subject"] == "Confirm your subscription to The Speaker Daily"
        text = mail.get_body(("plain",))
        assert text is not None
        link = re.search(re.escape(public) + r"(/confirm/daily/\S+)", text.get_content())
        assert link is not None
        confirm_page = http.get(link.group(1)).text
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', confirm_page)
        assert token is not None
        assert http.post(link.group(1), data={"csrf_token": token.group(1)}).status_code == 303
        confirmed = http.get(link.group(1)).text
        assert "You are subscribed" in confirmed
        preferences = re.search(r'href="(/preferences/daily/[^"]+)"', confirmed)
        assert preferences is not None
        assert 'value="daily" checked' in http.get(preferences.group(1)).text

    key = (site_folder / "var" / "secret.key").read_bytes().strip()
    subscriber_id = tokens.verify(
        key, preferences.group(1).rsplit("/", 1)[1], "preferences", list_name="daily"
    )
    assert subscriber_id is not None
    one_click = tokens.sign(key, "unsubscribe", subscriber_id, "daily")
    answer = httpx.post(
        f"{server}/unsubscribe/daily/{one_click}", data={"List-Unsubscribe": "One-Click"}
    )
    assert answer.status_code == 200
    assert "You have unsubscribed" in httpx.get(f"{server}/unsubscribe/daily/{one_click}").text


# ------------------------------------------------------------------------- limits and headers


def _serve_process(server: str) -> psutil.Process:
    """The `speakerfeed serve` process listening at ``server`` (a child of this one)."""
    port = server.rsplit(":", 1)[1]
    for child in psutil.Process().children(recursive=True):
        if "serve" in child.cmdline() and port in child.cmdline():
            return child
    raise AssertionError(f"no serve process for port {port}")


def test_100_mb_of_request_headers_get_431_and_cost_the_server_no_memory(server: str) -> None:
    process = _serve_process(server)
    httpx.get(server + "/")  # everything a request needs is loaded before measuring
    before = process.memory_info().rss
    port = int(server.rsplit(":", 1)[1])
    target, sent, response = 100 * 1024 * 1024, 0, b""
    line = b"p" * 8192  # one endless header value: the parser would keep it whole
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ")
        sock.settimeout(0.01)
        try:
            while sent < target and not response:
                sock.sendall(line)
                sent += len(line)
                with contextlib.suppress(TimeoutError):
                    response = sock.recv(65536)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed as soon as the answer was written: read it below
        sock.settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                response += chunk
    grown = process.memory_info().rss - before
    assert response.startswith(b"HTTP/1.1 431 "), response[:80]
    assert sent < 256 * 1024  # refused within a few reads of the 16 KB cap, not after 100 MB
    assert grown < 4 * 1024 * 1024, f"the server grew by {grown / 2**20:.1f} MB"
    assert httpx.get(server + "/rss.xml").status_code == 200  # and it serves on


def test_serve_sends_the_security_headers_on_its_pages_and_files(server: str) -> None:
    for path in ("/", "/rss.html", "/subscribe", "/rss.xml"):
        response = httpx.get(server + path)
        assert response.status_code == 200, path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path
        assert response.headers["x-frame-options"] == "DENY", path
        assert "strict-transport-security" not in response.headers  # plain http, no proxy
