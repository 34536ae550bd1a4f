"""Nothing a reader opens contacts a host that is not ours, checked in Chromium: every request of
every email (digest, its web copy, the confirmation) and every page (the built output and the
app's pages, through a whole sign-up) is intercepted and its host recorded, at a phone's and a
desktop's width, light and dark (a media query can load its own background).

Ours are the site's host, the app's host, and 127.0.0.1, where these tests serve both. Requests
to the site's and the app's public hosts are answered here (the machine has no network); any
other host fails the test, named with the URLs that went there. A control shows the recorder
sees what an editor's Google Font would load.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from speakerfeed.digest.archive import web_copy, write_digest_archive
from speakerfeed.feeds.build import Builder
from speakerfeed.mail import tokens
from speakerfeed.models import Image
from speakerfeed.render.email import render_confirmation, render_digest
from tests.render.test_email import (
    DAILY,
    SETTINGS,
    make_article,
    make_digest,
    personalise,
    render,
    seed_article,
)
from tests.render.test_email_privacy import GOOGLE_FONT, _templates_with
from tests.support.browser import ColorScheme, PageFactory, StaticServer
from tests.support.project import make_project, markdown_article
from tests.support.webapp import EMAIL, LISTS, SECRET, ReaderSite, reader_site

__all__ = ["reader_site"]

pytestmark = pytest.mark.browser

SITE_HOST = "www.speakernews.co.uk"
APP_HOST = "app.speakernews.co.uk"
SERVED = "127.0.0.1"
OURS = frozenset({SITE_HOST, APP_HOST, SERVED})
VIEWS: tuple[tuple[int, ColorScheme], ...] = ((375, "light"), (375, "dark"), (1280, "light"),
                                              (1280, "dark"))  # fmt: skip
TALL = 6000  # every lazy image in view at once


class Recorder:
    """Every URL the pages of a browser context ask for, by host."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def watch(self, page: Page) -> Page:
        page.context.route("**/*", self._handle)
        return page

    def _handle(self, route: Route) -> None:
        url = route.request.url
        self.urls.append(url)
        if urlsplit(url).hostname == SERVED:
            route.continue_()
        else:  # answered here, whatever the host: nothing leaves the machine
            route.fulfill(status=204)

    def hosts(self) -> set[str]:
        return {urlsplit(url).hostname or "" for url in self.urls}

    def foreign(self) -> list[str]:
        return [url for url in self.urls if urlsplit(url).hostname not in OURS]


def _load(page: Page, url: str) -> None:
    page.goto(url)
    # Then whatever loads late. A feed under Chromium's XSLT never goes quiet: its requests are
    # recorded all the same, as they happen.
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_load_state("networkidle", timeout=3000)


def _open_everywhere(open_page: PageFactory, urls: list[str]) -> Recorder:
    recorder = Recorder()
    for width, scheme in VIEWS:
        page = recorder.watch(open_page(width=width, height=TALL, color_scheme=scheme))
        for url in urls:
            _load(page, url)
    return recorder


def _assert_only_ours(recorder: Recorder, what: str) -> None:
    assert recorder.urls, f"{what}: nothing was loaded at all"
    foreign = recorder.foreign()
    assert foreign == [], f"{what} contacted other hosts:\n" + "\n".join(sorted(set(foreign)))


# ---------------------------------------------------------------------------------------- emails


@pytest.fixture
def emails(tmp_path: Path, static_server: Callable[[Path], StaticServer]) -> list[str]:
    """The digest as a subscriber gets it (and one with nothing new), its web copy and the
    confirmation, served."""
    articles = (
        seed_article(),
        make_article(1),
        make_article(3),  # its photo is on the site's host
        make_article(
            4,
            title="Campus housing costs, by city",
            url="https://www.partner-paper.example.net/housing/",
            image=Image("https://images.partner-cdn.example.net/rent.jpg", "A rent chart"),
        ),
    )
    rendered = render(articles)
    confirmation = render_confirmation(
        SETTINGS, DAILY, f"https://{APP_HOST}/confirm/daily/c2FtcGxl.dG9rZW4"
    )
    empty = render((), list_settings=DAILY.model_copy(update={"subject": "Nothing new"}))
    files = {
        "digest.html": personalise(rendered.html),
        "digest-empty.html": personalise(empty.html),
        "web-copy.html": web_copy(rendered, SETTINGS).decode(),
        "confirm.html": confirmation.html,
    }
    for name, html in files.items():
        (tmp_path / name).write_text(html, encoding="utf-8")
    server = static_server(tmp_path)
    return [server.url(name) for name in files]


def test_emails_contact_no_other_host(open_page: PageFactory, emails: list[str]) -> None:
    recorder = _open_everywhere(open_page, emails)
    _assert_only_ours(recorder, "the emails")
    # The site's photo was fetched (the recorder sees images), the partner's was not in the email.
    assert any(url.endswith("/media/story-3.jpg") for url in recorder.urls)
    assert SITE_HOST in recorder.hosts()


def test_the_recorder_catches_an_editor_s_google_font(
    tmp_path: Path, static_server: Callable[[Path], StaticServer], open_page: PageFactory
) -> None:
    base = "email/base.mjml.j2"
    folder = _templates_with(
        tmp_path,
        (base, "<mj-attributes>", f'<mj-font name="Lato" href="{GOOGLE_FONT}" /><mj-attributes>'),
        (base, '<mj-all font-family="', '<mj-all font-family="Lato, '),
    )
    digest = make_digest((make_article(1),))
    rendered = render_digest(SETTINGS, DAILY, digest, templates_dir=folder)
    (tmp_path / "digest.html").write_text(personalise(rendered.html), encoding="utf-8")
    page = open_page(width=600)
    recorder = Recorder()
    recorder.watch(page)
    _load(page, static_server(tmp_path).url("digest.html"))
    assert "fonts.googleapis.com" in {urlsplit(url).hostname for url in recorder.foreign()}


# ----------------------------------------------------------------------------------------- pages


@pytest.fixture
def built_site(tmp_path: Path, static_server: Callable[[Path], StaticServer]) -> list[str]:
    """Every HTML page of a built publication, its digest archive included, and its main
    feeds."""
    articles: dict[str, str | bytes] = {
        "young-voters.md": markdown_article(
            "Young voters turn out",
            "2024-03-04T09:00:00+00:00",
            "Turnout rose.\n\n![A queue](https://images.partner-cdn.example.net/q.jpg)",
            tags="[politics]",
        ),
        "phones.md": markdown_article("Inside the school that banned phones", "2024-03-03"),
    }
    settings = make_project(
        tmp_path, articles, email=EMAIL, lists=LISTS, build={"output_dir": "public"}
    )
    Builder(settings, fetch_upstreams=False).build()
    list_settings = settings.lists[0]
    rendered = render_digest(settings, list_settings, make_digest((make_article(1),)))
    write_digest_archive(settings, rendered)
    output = settings.output_dir
    pages = sorted(path.relative_to(output).as_posix() for path in output.rglob("*.html"))
    assert "digests/index.html" in pages
    # The main feeds too, as a browser opens them (with whatever stylesheet they name).
    pages += [name for name in ("rss.xml", "atom.xml") if (output / name).is_file()]
    server = static_server(output)
    return [server.url(page) for page in pages]


def test_built_pages_contact_no_other_host(open_page: PageFactory, built_site: list[str]) -> None:
    assert len(built_site) >= 2  # the feeds index and the digest archive, at least
    _assert_only_ours(_open_everywhere(open_page, built_site), "the built pages")


def test_the_app_s_pages_contact_no_other_host(
    reader_site: ReaderSite, open_page: PageFactory
) -> None:
    base = reader_site.url
    recorder = Recorder()
    page = recorder.watch(open_page(width=375, height=TALL))
    # A whole sign-up, with its form posts: each answer page is recorded too.
    _load(page, base + "/subscribe")
    page.check("#list-daily")
    page.fill("#email", "ann@example.org")
    page.click("button[type=submit]")
    page.wait_for_url("**/subscribe/sent?list=daily")
    (confirm_path,) = reader_site.confirm_paths("ann@example.org")
    _load(page, base + confirm_path)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.click("text=choose your lists and how often you hear from us")
    page.wait_for_url("**/preferences/daily/**")
    preferences = page.url
    page.click("button[type=submit]")
    page.wait_for_url("**?saved=1")
    subscriber_id = reader_site.subscriber_id("ann@example.org")
    assert subscriber_id is not None
    token = tokens.sign(SECRET, "unsubscribe", subscriber_id, "daily")
    unsubscribe = f"{base}/unsubscribe/daily/{token}"
    _load(page, unsubscribe)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    _assert_only_ours(recorder, "the sign-up, confirm, preferences and unsubscribe steps")

    # Every page a GET reaches (a GET changes nothing), in every view.
    gets = [
        base + "/subscribe",
        base + "/subscribe?list=weekly",
        base + "/subscribe/sent?list=daily",
        base + confirm_path,
        preferences,
        unsubscribe,
        base + "/preferences/",
        base + "/unsubscribe/",
        base + "/unsubscribe/daily/not-a-token",
        base + "/no-such-page",
    ]
    _assert_only_ours(_open_everywhere(open_page, gets), "the app's pages")
