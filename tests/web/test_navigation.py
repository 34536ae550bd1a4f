"""Pages that lead somewhere, through the real app under uvicorn: the shared header and its
navigation on every page (each link followed), the sign-up call to action, the styled 404, 405
and 500 pages (with the security headers, without a traceback), the favicon, "send me a new
link" from a broken unsubscribe link, and the time-zone menu grouped by region."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import lxml.html
import pytest
from playwright.sync_api import Page
from sqlalchemy import Engine, update
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from speakerfeed.actions.site import build_site
from speakerfeed.digest.archive import write_digest_archive
from speakerfeed.errors import ConfigError
from speakerfeed.feeds.build import Builder
from speakerfeed.mail import tokens
from speakerfeed.models import Digest
from speakerfeed.render.email import render_digest
from speakerfeed.render.pages import favicon_data_url
from speakerfeed.store.engine import engine_for_url
from speakerfeed.store.schema import subscribers
from tests.render.test_email_nu import MJML_SCAFFOLDING
from tests.render.test_feeds import _article
from tests.support.browser import (
    PageFactory,
    assert_no_axe_violations,
    check_skip_link,
    horizontal_overflow,
)
from tests.support.nu import NuChecker
from tests.support.project import make_project, markdown_article
from tests.support.webapp import EMAIL, SECRET, ReaderSite, reader_site, start
from tests.web.test_subscribers import confirmed, csrf_token

__all__ = ["reader_site"]

APP = EMAIL["app_url"]  # the configured app_url: this server, as the links name it
DIGEST_ID = "daily-2026-03-04-0700"
WEB_COPY = f"/digests/daily/{DIGEST_ID}/"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
NAV = ["Newsletters", "Feeds", "Archive"]


async def boom(request: Request) -> Response:
    raise RuntimeError("database password is hunter2")  # what a 500 page must never show


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReaderSite]:
    """The app on SQLite with a route that fails, its output folder built from two articles
    (one tagged, so there is a tag feed), and a real digest (MJML output) in the archive."""
    root = tmp_path_factory.mktemp("project")
    articles = root / "articles"
    articles.mkdir()
    (articles / "budget.md").write_text(
        markdown_article(
            "Budget: what it means <for> renters", "2026-03-03 18:30", tags="[politics]"
        ),
        encoding="utf-8",
    )
    (articles / "match.md").write_text(
        markdown_article("The derby, minute by minute", "2026-03-02 20:00"), encoding="utf-8"
    )
    engine = engine_for_url(f"sqlite:///{root / 'store.sqlite3'}")
    running = start(engine, root, routes=[Route("/boom", boom)])
    reader = next(running)
    report = Builder(reader.settings, fetch_upstreams=False).build()
    assert report.errors == [], report.errors
    list_settings = reader.settings.lists[0]
    digest = Digest(
        id=DIGEST_ID,
        list_name="daily",
        list_title=list_settings.title,
        articles=tuple(_article(n) for n in range(2)),
        issued=datetime(2026, 3, 4, 7, tzinfo=UTC),
    )
    write_digest_archive(reader.settings, render_digest(reader.settings, list_settings, digest))
    try:
        yield reader
    finally:
        next(running, None)
        engine.dispose()


def local(site: ReaderSite, page_url: str, href: str) -> str:
    """The URL a link leads to, with the configured app_url read as this server (which it is)."""
    target = urljoin(page_url, href)
    return site.url + target.removeprefix(APP) if target.startswith(APP) else target


def parse(content: bytes) -> Any:
    """The document, untyped: lxml's XPath answers are a union no test wants to narrow."""
    return lxml.html.document_fromstring(content)


def get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers={"Accept": BROWSER_ACCEPT, **headers}, timeout=10)


# Every kind of page, as a reader's browser asks for it: (path, status).
PAGES = [
    ("/", 200),  # the feeds index (written to the output folder)
    ("/digests/", 200),  # the digest archive (written)
    (WEB_COPY, 200),  # a digest's web copy (written: the email's HTML plus the site's header)
    ("/tags/politics/atom.xml", 200),  # a feed's page (written), as a browser is shown it
    ("/subscribe", 200),  # the app's pages
    ("/subscribe/sent?list=daily", 200),
    ("/preferences/", 200),
    ("/unsubscribe/", 200),
    ("/unsubscribe/daily/expired-or-cut-short", 400),
    ("/no/such/page", 404),
    ("/boom", 500),
]


@pytest.mark.parametrize(("path", "status"), PAGES)
def test_every_page_has_the_header_and_each_of_its_links_leads_somewhere(
    site: ReaderSite, path: str, status: int
) -> None:
    url = site.url + path
    response = get(url)
    assert response.status_code == status, response.text[:300]
    doc = parse(response.content)
    (nav,) = doc.xpath("//header//nav[@aria-label='Site']")
    links = {a.text_content().strip(): a.get("href") for a in nav.iter("a")}
    assert list(links) == NAV, f"{path}: {links}"
    assert doc.xpath("//a[@href='#main']")[0].text_content() == "Skip to content"
    assert doc.xpath("//link[@rel='icon']/@href")[0].startswith("data:image/svg+xml;base64,")
    for label, href in links.items():
        target = local(site, str(response.url), href)
        assert target.startswith(site.url), f"{path}: {label} leads off the site: {href}"
        followed = get(target)
        assert followed.status_code == 200, f"{path}: {label} -> {target}"
        kind = {"Newsletters": "Subscribe", "Feeds": "<h1>Feeds</h1>", "Archive": "Email digests"}
        assert kind[label] in followed.text, f"{path}: {label} -> {target}"


@pytest.mark.parametrize("path", ["/", "/digests/", WEB_COPY])
def test_the_feeds_index_archive_and_web_copies_ask_readers_to_sign_up(
    site: ReaderSite, path: str
) -> None:
    response = get(site.url + path)
    doc = parse(response.content)
    calls = [
        a.get("href")
        for a in doc.xpath("//main//a | //header//a")
        if re.search(r"Sign up for the newsletter|by email", a.text_content())
    ]
    assert calls == [f"{APP}/subscribe"], f"{path}: {calls}"
    # Written pages reach the output folder's root relatively: they work on any static host.
    hrefs = {
        a.text_content().strip(): a.get("href") for a in doc.xpath("//nav[@aria-label='Site']//a")
    }
    depth = {"/": "./", "/digests/": "../", WEB_COPY: "../../../"}[path]
    assert hrefs["Feeds"] == depth


def test_the_web_copy_keeps_the_digest_and_its_skip_link_first(site: ReaderSite) -> None:
    page = get(site.url + WEB_COPY).text
    body = page.index("<body")
    skip, nav = page.index("Skip to content", body), page.index('aria-label="Site"', body)
    assert skip < nav < page.index("<main", body)
    assert "SFMARK" not in page


def test_not_found_is_a_page_in_the_site_layout(site: ReaderSite) -> None:
    response = get(site.url + "/2026/no-such-article/")
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    doc = parse(response.content)
    assert doc.findtext(".//h1") == "Page not found"
    assert doc.xpath("//title")[0].text == "Page not found · The Speaker"
    assert doc.xpath("//main//a[@href='/subscribe']")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    # A HEAD gets the same status and no body.
    head = httpx.head(site.url + "/2026/no-such-article/")
    assert head.status_code == 404 and head.content == b""


def test_a_method_a_page_does_not_take_is_a_405_page_that_keeps_allow(site: ReaderSite) -> None:
    response = httpx.put(site.url + "/digests/", content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert "This page cannot do that" in response.text
    assert 'aria-label="Site"' in response.text
    assert response.headers["x-frame-options"] == "DENY"


def test_a_failure_is_a_500_page_with_the_security_headers_and_no_traceback(
    site: ReaderSite, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("ERROR", logger="speakerfeed.web"):
        response = get(site.url + "/boom")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    for secret in ("hunter2", "RuntimeError", "Traceback", "boom"):
        assert secret not in response.text
    for header in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert header in response.headers, header
    assert response.headers["cache-control"] == "no-store"
    assert any("hunter2" in (r.exc_text or "") for r in caplog.records), "not logged"


# ------------------------------------------------------------------------------------ favicon


def test_a_configured_favicon_is_inlined_and_a_missing_one_is_a_clear_error(
    tmp_path: Path,
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    (tmp_path / "icon.png").write_bytes(png)
    settings = make_project(tmp_path, site={"favicon": "icon.png"})
    assert favicon_data_url(settings) == "data:image/png;base64," + base64.b64encode(png).decode()
    missing = make_project(tmp_path / "other", site={"favicon": "art/icon.svg"})
    with pytest.raises(ConfigError) as raised:
        favicon_data_url(missing)
    assert "site.favicon" in str(raised.value) and "icon.svg" in str(raised.value)
    with pytest.raises(ConfigError) as wrong:
        make_project(tmp_path / "third", site={"favicon": "icon.gif"})
    assert "favicon" in str(wrong.value) and ".svg, .png or .ico" in str(wrong.value)


# -------------------------------------------------------------------------- send me a new link


@pytest.fixture
def links_site(engine: Engine, tmp_path: Path) -> Iterator[ReaderSite]:
    """The app on both engines, allowing an address 3 emails an hour: its confirmation and
    the new links the tests ask for (the default, 1, is used up by the confirmation)."""
    yield from start(engine, tmp_path, signup={"per_address": 3})


def welcomed(site: ReaderSite) -> int:
    """Wait for the welcome email that follows a confirmation (it goes after the answer, like
    the new links): the outbox's size once it has come."""
    wait_for_mail(site, 2)
    assert site.outbox[-1].subject.startswith("Welcome to ")
    return len(site.outbox)


def wait_for_mail(site: ReaderSite, count: int, seconds: float = 5) -> None:
    """The email goes out after the answer (BackgroundTask): wait until ``count`` have."""
    deadline = time.monotonic() + seconds
    while len(site.outbox) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def ask_for_link(client: httpx.Client, email: str, list_name: str = "daily") -> httpx.Response:
    token = csrf_token(client, "/unsubscribe/new-link?list=daily")
    form = {"csrf_token": token, "list": list_name, "email": email}
    return client.post("/unsubscribe/new-link", data=form, follow_redirects=True)


def test_a_broken_unsubscribe_link_offers_a_new_link_and_the_answer_reveals_nothing(
    links_site: ReaderSite,
) -> None:
    with httpx.Client(base_url=links_site.url, timeout=10) as client:
        subscriber_id = confirmed(links_site, client, "ann.example@example.org")
        mails_before = welcomed(links_site)
        broken = client.get("/unsubscribe/daily/eyJ0cnVuY2F0ZWQ")  # cut short by a mail program
        assert broken.status_code == 400
        assert "Send me a new link" in broken.text and "sign up again" not in broken.text

        known = ask_for_link(client, "  ann.example@EXAMPLE.org ")
        wait_for_mail(links_site, mails_before + 1)
        unknown = ask_for_link(client, "nobody@example.org")
        time.sleep(0.5)  # room for a wrong email to arrive
        assert known.status_code == unknown.status_code == 200
        assert str(known.url).endswith("/unsubscribe/new-link?sent=1") and known.url == unknown.url
        strip = re.compile(r'value="[0-9a-f]+"')
        assert strip.sub("", known.text) == strip.sub("", unknown.text)

        new_mail = links_site.outbox[mails_before:]
        assert len(new_mail) == 1, [batch.subject for batch in new_mail]
        (batch,) = new_mail
        assert [r.address for r in batch.recipients] == ["ann.example@example.org"]
        assert batch.subject == "Your links for The Speaker Daily"
        (link,) = re.findall(rf"{re.escape(APP)}(/unsubscribe/daily/\S+)", batch.text)
        page = client.get(link)
        assert page.status_code == 200 and "Stop sending The Speaker Daily" in page.text
        client.post(link, data={"csrf_token": csrf_token(client, link)})
        assert links_site.statuses("ann.example@example.org") == {"daily": "unsubscribed"}
        assert subscriber_id


def test_a_new_link_goes_only_to_active_subscribers_and_the_form_checks_the_address(
    links_site: ReaderSite,
) -> None:
    with httpx.Client(base_url=links_site.url, timeout=10) as client:
        confirmed(links_site, client, "bob@example.org", "weekly")
        before = welcomed(links_site)
        # Asked from a daily link: Bob is only on weekly, so the links are weekly's.
        ask_for_link(client, "bob@example.org", "daily")
        wait_for_mail(links_site, before + 1)
        assert "/unsubscribe/weekly/" in links_site.outbox[-1].text
        with links_site.engine.begin() as conn:  # an erased-looking record: not mailed
            conn.execute(update(subscribers).values(email="gone@example.org"))
        ask_for_link(client, "bob@example.org")
        time.sleep(0.5)
        assert len(links_site.outbox) == before + 1

        token = csrf_token(client, "/unsubscribe/new-link?list=daily")
        form = {"csrf_token": token, "list": "daily", "email": "bob@example"}
        wrong = client.post("/unsubscribe/new-link", data=form)
        assert wrong.status_code == 422
        assert "Enter an email address in the right form" in wrong.text
        assert 'value="bob@example"' in wrong.text and 'aria-invalid="true"' in wrong.text
        refused = client.post("/unsubscribe/new-link", data={"list": "daily", "email": "a@b.org"})
        assert refused.status_code == 403  # no CSRF token


def test_new_links_are_rate_limited_per_address_and_per_ip(engine: Engine, tmp_path: Path) -> None:
    running = start(engine, tmp_path, signup={"per_ip": 6, "per_address": 2})
    site = next(running)
    try:
        with httpx.Client(base_url=site.url, timeout=10) as client:
            confirmed(site, client, "cy@example.org")  # the sign-up: 1 IP hit, 1 mail
            before = welcomed(site)  # the welcome is not counted against the address
            for _ in range(3):
                assert ask_for_link(client, "cy@example.org").status_code == 200
            time.sleep(0.5)
            # The confirmation and one new link: the address's 2 emails for the window.
            assert len(site.outbox) == before + 1
            answers = [ask_for_link(client, f"x{n}@example.org").status_code for n in range(4)]
            assert answers == [200, 200, 200, 429]
    finally:
        next(running, None)


# ---------------------------------------------------------------------------- time-zone menu


def test_the_time_zone_menu_is_grouped_by_region_with_the_lists_zone_first(
    reader_site: ReaderSite,
) -> None:
    with httpx.Client(base_url=reader_site.url, timeout=10) as client:
        subscriber_id = confirmed(reader_site, client, "dee@example.org")
        token = tokens.sign(SECRET, "preferences", subscriber_id, "daily")
        page = client.get(f"/preferences/daily/{token}")
    doc = parse(page.content)
    groups = doc.xpath("//select[@id='timezone']/optgroup")
    labels = [group.get("label") for group in groups]
    assert labels[0] == "This newsletter's time zone"
    assert [o.text for o in groups[0].iter("option")] == ["Europe/London"]  # site.timezone
    assert {"Africa", "Americas", "Asia", "Europe", "Pacific Ocean"} <= set(labels)
    assert labels[1:] == sorted(labels[1:])
    options = [o.text for o in doc.xpath("//select[@id='timezone']//option")]
    assert options.count("Europe/London") == 1 and "America/Sao_Paulo" in options
    europe = groups[labels.index("Europe")]
    assert all(o.text.startswith("Europe/") for o in europe.iter("option"))


# ----------------------------------------------------------------- Chromium, axe and Nu checks

# The new and changed pages: (name, path); "405" is the answer to a PUT, shown as loaded.
BROWSER_PAGES = [
    ("404", "/no/such/page"),
    ("405", "PUT /digests/"),
    ("500", "/boom"),
    ("expired unsubscribe link", "/unsubscribe/daily/expired-or-cut-short"),
    ("new link sent", "/unsubscribe/new-link?sent=1"),
    ("archive", "/digests/"),
    ("feeds index", "/"),
    ("feed page", "/tags/politics/atom.xml"),
    ("web copy", WEB_COPY),
]


def _load(page: Page, site: ReaderSite, path: str) -> None:
    if path.startswith("PUT "):
        answer = httpx.put(site.url + path.removeprefix("PUT "), content=b"x")
        assert answer.status_code == 405
        page.set_content(answer.text, wait_until="load")
        return
    page.goto(site.url + path, wait_until="load")


@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize(("name", "path"), BROWSER_PAGES)
def test_each_page_passes_axe_and_fits_without_javascript(
    site: ReaderSite, open_page: PageFactory, name: str, path: str, width: int
) -> None:
    page = open_page(width=width)
    _load(page, site, path)
    check_skip_link(page)
    assert_no_axe_violations(page, where=f"{name} at {width}px")
    assert horizontal_overflow(page) == 0, f"{name} is wider than {width}px"
    nav = page.locator("nav[aria-label=Site] a")
    assert nav.all_inner_texts() == NAV, name
    assert open_page.errors == []  # no page runs a script


def test_the_pages_are_valid_html(site: ReaderSite, nu: NuChecker) -> None:
    documents = {
        f"{name}.html": get(site.url + path).content
        for name, path in BROWSER_PAGES
        if not path.startswith("PUT ")
    }
    documents["405.html"] = httpx.put(site.url + "/digests/", content=b"x").content
    web_copy = documents.pop("web copy.html")
    nu.assert_valid(documents)
    nu.assert_valid({"web copy.html": web_copy}, ignore=MJML_SCAFFOLDING)


def test_the_archive_the_header_links_to_exists_before_the_first_digest(
    reader_site: ReaderSite, tmp_path: Path
) -> None:
    # Under `serve` (the app writes it when it starts) ...
    archive = get(reader_site.url + "/digests/")
    assert archive.status_code == 200 and "No digest yet" in archive.text
    # ... and after `build`, for a static host.
    settings = make_project(
        tmp_path / "static", email=EMAIL, lists=[{"name": "daily", "title": "The Speaker Daily"}]
    )
    build_site(settings, fetch_upstreams=False)
    written = (settings.output_dir / "digests" / "index.html").read_text(encoding="utf-8")
    assert "The Speaker Daily" in written and "No digest yet" in written
