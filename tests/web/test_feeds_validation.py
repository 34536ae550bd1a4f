"""Validators over what we publish: every document a build writes against its specification (the
feed checks, namespace prefixes, HTML date-times), and the W3C Nu Html Checker (tests.support.nu)
over our pages: the feeds index, the feeds' pages, the digests archive and the readers' pages."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from speakerfeed.config import Settings
from speakerfeed.digest.archive import write_digest_archive
from speakerfeed.feeds.build import Builder
from speakerfeed.models import Digest, RenderedDigest
from tests.render.test_feeds import _article
from tests.support.feedcheck import check_document
from tests.support.nu import NuChecker
from tests.support.project import make_project, markdown_article
from tests.support.webapp import ReaderSite, reader_site

__all__ = ["reader_site"]  # the fixture, on SQLite and PostgreSQL

REPOSITORY = Path(__file__).resolve().parents[2]
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
VALID = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fine</title></head>
<body><p><time datetime="2026-03-01T09:30:00+00:00">1 March</time></p></body></html>
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The repository's articles and messy ones, three items a document so that every feed has
    archive pages, with times that carry microseconds."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPOSITORY / "articles", root / "articles")
    for n in range(4):
        (root / "articles" / f"messy-{n}.md").write_text(
            markdown_article(
                f"<b>Bold</b> & “quoted” {n} ]]>",
                f"2026-02-0{n + 1} 10:15:30.{n}23456",
                "Rates & taxes: a < b.",
                tags="[politics, Économie]",
            ),
            encoding="utf-8",
        )
    settings = make_project(root, feeds={"items": 3})
    report = Builder(settings, fetch_upstreams=False).build()
    assert report.errors == [], report.errors
    return settings


def _written(settings: Settings) -> dict[str, bytes]:
    root = settings.output_dir
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_every_document_a_build_writes_passes_its_checks(built: Settings) -> None:
    written = _written(built)
    kinds = {
        "subscription feeds": [p for p in written if p.endswith(("rss.xml", "atom.xml", ".json"))],
        "archive documents": [p for p in written if "/archive/" in f"/{p}"],
        "feed pages": [p for p in written if p.endswith(("rss.html", "atom.html", "feed.html"))],
        "index": [p for p in written if p == "index.html"],
    }
    assert all(kinds.values()), {kind: len(paths) for kind, paths in kinds.items()}
    assert any(p.startswith("tags/economie/archive/atom/") for p in written)
    problems = {path: check_document(path, data) for path, data in written.items()}
    assert {path: found for path, found in problems.items() if found} == {}


def test_the_checks_catch_what_validators_flag() -> None:
    stray = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><id>tag:x,2024:a</id><title>t</title>'
        b"<updated>2024-01-01T00:00:00Z</updated><author><name>a</name></author>"
        b'<link rel="self" href="https://x.example/atom.xml"/>'
        b'<ns0:link xmlns:ns0="http://www.w3.org/2005/Atom" rel="current" href="https://x/"/>'
        b"</feed>"
    )
    problems = check_document("archive/atom/1.xml", stray)
    assert any("generated prefix ns0:" in p for p in problems), problems
    assert any("below the root" in p for p in problems), problems
    page = VALID.replace("09:30:00+00:00", "09:30:00.123456+00:00").encode()
    assert check_document("rss.html", page) == [
        "<time datetime='2026-03-01T09:30:00.123456+00:00'> is not an HTML date or date and time"
    ]
    assert check_document("rss.html", VALID.encode()) == []


def test_the_checker_reports_errors_in_our_markup_and_nothing_in_valid_markup(
    nu: NuChecker,
) -> None:
    broken = VALID.replace("09:30:00+00:00", "09:30:00.123456+00:00").replace(
        "<p>", "<p><div>unclosed</p>"
    )
    errors = nu.errors({"valid.html": VALID, "pages/broken.html": broken})
    assert {e.document for e in errors} == {"pages/broken.html"}
    texts = " ".join(e.message for e in errors)
    assert "fraction of a second" in texts
    assert nu.errors({"broken.html": broken}, ignore=[r".*"]) == []
    nu.assert_valid({"valid.html": VALID})


def test_the_feeds_index_and_every_feed_page_are_valid_html(nu: NuChecker, built: Settings) -> None:
    pages = {path: data for path, data in _written(built).items() if path.endswith(".html")}
    assert "index.html" in pages and "tags/politics/feed.html" in pages
    nu.assert_valid(pages)


def test_the_digests_archive_page_is_valid_html(nu: NuChecker, tmp_path: Path) -> None:
    settings = make_project(
        tmp_path,
        email={"from_address": "The Speaker <d@speakernews.co.uk>"},
        lists=[{"name": "daily", "title": "The Speaker Daily"}],
    )
    issued = datetime(2026, 3, 4, 7, 0, 0, 123456, tzinfo=UTC)  # a clock's time: microseconds
    digest = Digest(
        id="daily-2026-03-04-0700",
        list_name="daily",
        list_title="The Speaker Daily",
        articles=tuple(_article(n) for n in range(3)),
        issued=issued,
    )
    rendered = RenderedDigest(digest, "Three stories", "", "<p>x</p>", "x", "https://x.example/")
    write_digest_archive(settings, rendered)
    page = (settings.output_dir / "digests" / "index.html").read_bytes()
    assert b"Three stories" in page
    assert check_document("digests/index.html", page) == []
    nu.assert_valid({"digests/index.html": page})


def _csrf(client: httpx.Client, path: str) -> str:
    found = CSRF.search(client.get(path).text)
    assert found, f"{path} has no CSRF field"
    return found.group(1)


@pytest.fixture
def http(reader_site: ReaderSite) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=reader_site.url, timeout=10) as client:
        yield client


def test_the_readers_pages_are_valid_html(
    nu: NuChecker, reader_site: ReaderSite, http: httpx.Client
) -> None:
    """Every page of the double opt-in loop, as a reader meets it, errors included."""
    pages: dict[str, str] = {}

    def keep(name: str, response: httpx.Response) -> None:
        assert response.headers["content-type"].startswith("text/html"), name
        pages[name] = response.text

    keep("subscribe.html", http.get("/subscribe"))
    bad = {"csrf_token": _csrf(http, "/subscribe"), "list": "daily", "email": "not an address"}
    keep("subscribe-errors.html", http.post("/subscribe", data=bad))
    good = {**bad, "email": "ann@example.org", "name": "Ann <Example>"}
    sent = http.post("/subscribe", data=good)
    keep("subscribe-sent.html", http.get(sent.headers["location"]))
    (confirm,) = reader_site.confirm_paths("ann@example.org")
    keep("confirm.html", http.get(confirm))
    http.post(confirm, data={"csrf_token": _csrf(http, confirm)})
    confirmed = http.get(confirm)
    keep("confirmed.html", confirmed)
    preferences = re.search(r'href="(/preferences/daily/[^"]+)"', confirmed.text)
    assert preferences is not None
    keep("preferences.html", http.get(preferences.group(1)))
    keep("preferences-help.html", http.get("/preferences/"))
    keep("unsubscribe-help.html", http.get("/unsubscribe/"))
    keep("problem.html", http.get("/confirm/daily/not-a-token"))
    assert 'aria-invalid="true"' in pages["subscribe-errors.html"]
    assert "Confirm my subscription" in pages["confirm.html"]
    assert "You are subscribed" in pages["confirmed.html"]
    assert 'value="daily" checked' in pages["preferences.html"]
    nu.assert_valid(pages)
