"""Security headers on every response of the app (web.security_headers), under a real uvicorn with
the options `serve` uses: the readers' pages and every HTML file from the output folder (the feeds
index, the feeds' pages, the digests' archive and a real digest's web copy) carry the CSP,
frame-ancestors, X-Frame-Options, nosniff and Referrer-Policy; HSTS only over https (here: through
a trusted proxy). In Chromium, none of these pages trips the CSP, while a page that loads a
third-party image or runs a script does."""

from __future__ import annotations

import re
import shutil
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from speakerfeed.digest.archive import write_digest_archive
from speakerfeed.feeds.build import Builder
from speakerfeed.models import Digest, Image
from speakerfeed.render.email import render_digest
from speakerfeed.store.engine import engine_for_url
from speakerfeed.web.security_headers import HSTS
from tests.render.test_feeds import _article
from tests.support.browser import PageFactory
from tests.support.project import markdown_article
from tests.support.webapp import ReaderSite, start

REPOSITORY = Path(__file__).resolve().parents[2]
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SITE = "https://www.speakernews.co.uk"  # tests.support.project's site.url
APP = "https://app.speakernews.co.uk"  # tests.support.webapp's email.app_url
DIGEST_ID = "daily-2026-03-04-0700"
# A 1x1 PNG, answered for the site's images in Chromium (the test has no network).
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478"
    "da63f8cfc0f01f0005000201a5f3ed3f0000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def reader_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReaderSite]:
    """The app on SQLite behind a trusted proxy (127.0.0.1), its output folder built from the
    repository's scraped articles and a Markdown one with a picture on the site, and a real
    digest (MJML output) in the archive."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPOSITORY / "articles", root / "articles")
    (root / "articles" / "pictured.md").write_text(
        markdown_article(
            "Budget: what it means <for> students & “renters”",
            "2026-03-03 18:30",
            "Rates & taxes: a < b. <script>alert(1)</script>",
            tags="[politics, Économie]",
            image=f"{{url: '{SITE}/images/budget.png', alt: The Chancellor at the despatch box}}",
        ),
        encoding="utf-8",
    )
    engine = engine_for_url(f"sqlite:///{root / 'store.sqlite3'}")
    running = start(engine, root, server={"trusted_proxies": ["127.0.0.1"]})
    site = next(running)
    report = Builder(site.settings, fetch_upstreams=False).build()
    assert report.errors == [], report.errors
    list_settings = site.settings.lists[0]
    pictured = Image(f"{SITE}/images/budget.png", "The Chancellor at the despatch box")
    digest = Digest(
        id=DIGEST_ID,
        list_name="daily",
        list_title=list_settings.title,
        articles=tuple(_article(n, image=pictured if n == 0 else None) for n in range(3)),
        issued=datetime(2026, 3, 4, 7, tzinfo=UTC),
    )
    write_digest_archive(site.settings, render_digest(site.settings, list_settings, digest))
    try:
        yield site
    finally:
        next(running, None)  # stops the server
        engine.dispose()


# The HTML the app answers with, as a reader's browser asks for it: (path, status).
HTML_PAGES = [
    ("/", 200),  # the feeds index
    ("/rss.xml", 200),  # a browser asking for a feed gets its page (rss.html)
    ("/tags/politics/atom.html", 200),
    ("/digests/", 200),  # the digests' archive
    (f"/digests/daily/{DIGEST_ID}/", 200),  # a digest's web copy
    ("/subscribe", 200),
    ("/confirm/daily/not-a-token", 400),  # a problem page
]


def _assert_protected(headers: httpx.Headers | dict[str, str], where: str) -> None:
    csp = headers.get("content-security-policy", "")
    assert "default-src 'none'" in csp, where
    assert "frame-ancestors 'none'" in csp, where
    assert "script-src" not in csp, where  # no page runs a script
    assert headers.get("x-frame-options") == "DENY", where
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") == "no-referrer", where


@pytest.mark.parametrize(("path", "status"), HTML_PAGES)
def test_every_html_page_carries_the_security_headers(
    reader_site: ReaderSite, path: str, status: int
) -> None:
    response = httpx.get(reader_site.url + path, headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    _assert_protected(response.headers, path)
    assert "strict-transport-security" not in response.headers  # plain http


def test_feeds_not_found_and_not_modified_answers_carry_them_too(reader_site: ReaderSite) -> None:
    feed = httpx.get(reader_site.url + "/atom.xml", headers={"Accept": "application/atom+xml"})
    assert feed.headers["content-type"].startswith("application/atom+xml")
    _assert_protected(feed.headers, "feed")
    again = httpx.get(
        reader_site.url + "/atom.xml", headers={"If-None-Match": feed.headers["etag"]}
    )
    assert again.status_code == 304
    _assert_protected(again.headers, "304")
    missing = httpx.get(reader_site.url + "/no-such-page.html")
    assert missing.status_code == 404
    _assert_protected(missing.headers, "404")


def test_the_pages_own_headers_are_kept(reader_site: ReaderSite) -> None:
    form = httpx.get(reader_site.url + "/subscribe")
    assert form.headers["cache-control"] == "no-store"  # it holds a CSRF token
    index = httpx.get(reader_site.url + "/")
    assert index.headers["cache-control"] == "no-cache"  # the output folder's rule
    assert len(index.headers.get_list("content-security-policy")) == 1


def test_the_policy_allows_our_own_hosts_and_inline_styles_only(reader_site: ReaderSite) -> None:
    csp = httpx.get(reader_site.url + "/").headers["content-security-policy"]
    directives = dict(
        ([*part.strip().split(" ", 1), ""])[:2] for part in csp.split(";") if part.strip()
    )
    assert directives["img-src"].split() == ["'self'", SITE, APP, "data:"]
    assert directives["style-src"].split() == ["'self'", "'unsafe-inline'"]
    assert directives["form-action"].split() == ["'self'", SITE, APP]
    assert directives["base-uri"] == "'none'"


@pytest.mark.parametrize("path", ["/", "/subscribe", f"/digests/daily/{DIGEST_ID}/", "/nope"])
def test_hsts_only_when_the_trusted_proxy_says_https(reader_site: ReaderSite, path: str) -> None:
    over_https = httpx.get(
        reader_site.url + path,
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"},
    )
    assert over_https.headers["strict-transport-security"] == HSTS
    _assert_protected(over_https.headers, path)
    plain = httpx.get(reader_site.url + path, headers={"X-Forwarded-Proto": "http"})
    assert "strict-transport-security" not in plain.headers


def test_a_client_that_is_not_a_trusted_proxy_cannot_claim_https(tmp_path: Path) -> None:
    engine = engine_for_url(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    running = start(engine, tmp_path)  # no trusted proxies: the peer is the client
    site = next(running)
    try:
        answer = httpx.get(site.url + "/subscribe", headers={"X-Forwarded-Proto": "https"})
        assert answer.status_code == 200
        assert "strict-transport-security" not in answer.headers
        _assert_protected(answer.headers, "/subscribe")
    finally:
        next(running, None)  # stops the server
        engine.dispose()


# ---------------------------------------------------------------------------------- Chromium

# Installed before any page script could run; CSP does not apply to it.
_RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__violations.push(event.violatedDirective + ' ' + event.blockedURI);
});
"""


class Recorder:
    """What Chromium saw on a page: CSP violations (events and console 'Refused to ...'), and
    every HTML response's headers."""

    def __init__(self, open_page: PageFactory) -> None:
        self.page = open_page(width=375)
        self.console: list[str] = []
        self.html_responses: list[tuple[str, dict[str, str]]] = []
        self.page.add_init_script(_RECORD_VIOLATIONS)
        self.page.on("console", lambda message: self.console.append(message.text))
        self.page.on("response", self._response)
        self.page.route(
            f"{SITE}/**", lambda route: route.fulfill(body=PIXEL, content_type="image/png")
        )

    def _response(self, response: Any) -> None:
        headers = response.all_headers()
        if headers.get("content-type", "").startswith("text/html"):
            self.html_responses.append((response.url, headers))

    def violations(self) -> list[str]:
        events: list[str] = self.page.evaluate("window.__violations")
        refused = [text for text in self.console if re.search(r"Refused to|Content Security", text)]
        return events + refused


@pytest.mark.browser
def test_our_pages_work_in_chromium_without_a_single_csp_violation(
    reader_site: ReaderSite, open_page: PageFactory
) -> None:
    recorder = Recorder(open_page)
    page = recorder.page
    seen: dict[str, list[str]] = {}
    for path, status in HTML_PAGES:
        response = page.goto(reader_site.url + path)
        assert response is not None and response.status == status, path
        page.wait_for_load_state("load")
        seen[path] = recorder.violations()

    # The web copy shows the article's picture from the site's host.
    page.goto(f"{reader_site.url}/digests/daily/{DIGEST_ID}/")
    picture = page.locator("img[alt='The Chancellor at the despatch box']")
    assert picture.count() == 1
    assert picture.evaluate("img => img.complete && img.naturalWidth") == 1
    # The sign-up form posts (form-action) and is redirected to its answer.
    page.goto(reader_site.url + "/subscribe")
    page.check("#list-daily")
    page.fill("#email", "reader@example.org")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/subscribe/sent"))
    assert "Check your inbox" in page.content()
    seen["after browsing"] = recorder.violations()

    # No page the policy protects needs anything it refuses.
    assert {path: found for path, found in seen.items() if found} == {}
    assert recorder.html_responses, "no HTML response was seen"
    for url, headers in recorder.html_responses:
        _assert_protected(headers, url)
    assert open_page.errors == []


@pytest.mark.browser
def test_the_policy_blocks_a_third_party_image_and_any_script(
    reader_site: ReaderSite, open_page: PageFactory
) -> None:
    """The recorder can fail: a page in the output folder that loads a tracking pixel and runs
    scripts is stopped by the CSP, and each refusal is seen; its inline style still applies."""
    probe = reader_site.settings.output_dir / "probe.html"
    probe.write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Probe</title>'
        "<style>p { color: rgb(1, 2, 3); }</style></head><body><p>Text</p>"
        '<img src="https://tracker.example/pixel.gif" alt="">'
        "<script>document.title = 'ran';</script>"
        "<button onclick=\"document.title = 'clicked'\">Go</button></body></html>",
        encoding="utf-8",
    )
    try:
        recorder = Recorder(open_page)
        page = recorder.page
        page.goto(reader_site.url + "/probe.html")
        page.click("button")
        page.wait_for_timeout(200)
        assert page.title() == "Probe"  # neither script ran
        assert page.locator("p").evaluate("p => getComputedStyle(p).color") == "rgb(1, 2, 3)"
        found = " ".join(recorder.violations())
        assert "img-src https://tracker.example/pixel.gif" in found
        assert "script-src-elem inline" in found
        assert "script-src-attr inline" in found
    finally:
        probe.unlink()


def test_hsts_on_a_request_that_came_over_https_directly(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from speakerfeed.web.app import create_app
    from speakerfeed.web.http_limits import server_options
    from tests.support.asgi_server import running
    from tests.support.project import make_project
    from tests.support.smtp_server import tls_files

    settings = make_project(tmp_path)
    settings.output_dir.mkdir(parents=True)
    (settings.output_dir / "index.html").write_text("<!doctype html><title>Feeds</title>")
    app = create_app(
        settings,
        engine=create_engine("sqlite://"),
        secret=b"https-test-secret-key-0123456789",
        transport=lambda: pytest.fail("no mail is sent here"),
    )
    certificate, key = tls_files(tmp_path)
    options = server_options(settings.server)
    with running(app, ssl_certfile=str(certificate), ssl_keyfile=str(key), **options) as url:
        secure = url.replace("http://", "https://")
        trusting = ssl.create_default_context(cafile=str(certificate))
        with httpx.Client(verify=trusting) as client:
            answer = client.get(secure + "/")
            assert answer.status_code == 200
            assert answer.headers["strict-transport-security"] == HSTS
            _assert_protected(answer.headers, "/ over https")
            assert client.get(secure + "/nope").headers["strict-transport-security"] == HSTS
