"""The output folder over HTTP (speakerfeed.web.feeds) under a real uvicorn on 127.0.0.1: media
types, strong content-hash ETags, conditional requests, gzip, Cache-Control, HEAD, 405, paths
that try to leave the folder, and a browser given a feed's HTML page where a reader gets the feed.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import socket
from collections.abc import Iterator
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine
from starlette.routing import Mount

from speakerfeed.feeds.build import Builder
from speakerfeed.output import write_atomic
from speakerfeed.web.app import create_app
from speakerfeed.web.feeds import (
    CACHE_FEED,
    CACHE_FULL_ARCHIVE,
    CACHE_HTML,
    FeedFiles,
    accepts_gzip,
    wants_html,
)
from tests.support.asgi_server import running
from tests.support.project import make_project, markdown_article

BODY = "\n\n".join(
    f"Paragraph {n}: the council met on Thursday to discuss the new timetable for buses." * 3
    for n in range(6)
)
READER = {"Accept": "application/rss+xml, application/atom+xml, */*", "Accept-Encoding": "identity"}
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _build(root: Path) -> Path:
    articles: dict[str, str | bytes] = {
        f"story-{n}.md": markdown_article(f"Story {n}", f"2024-05-0{n} 10:00", BODY, tags="[news]")
        for n in range(1, 6)
    }
    # Two items per document: five articles give two archive pages per feed and format.
    settings = make_project(root, articles, feeds={"items": 2})
    Builder(settings, fetch_upstreams=False).build()
    (root / "secret.txt").write_text("outside the output folder", encoding="utf-8")
    return settings.output_dir


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def server(public: Path) -> Iterator[str]:
    with running(FeedFiles(public)) as url:
        yield url


@pytest.fixture
def own_public(public: Path, tmp_path: Path) -> Path:
    """A copy of the output folder that a test may change."""
    copy = tmp_path / "public"
    shutil.copytree(public, copy)
    (tmp_path / "secret.txt").write_text("outside the output folder", encoding="utf-8")
    return copy


def _get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers={**READER, **headers})


def _raw_get(url: str, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent (httpx would decompress it)."""
    with httpx.Client() as client, client.stream("GET", url, headers=headers) as response:
        return response, b"".join(response.iter_raw())


def _etag_of(data: bytes) -> str:
    return f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"'


def _raw_status(base: str, target: str) -> int:
    """The status for a request line sent byte for byte, so no client normalises the path."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/rss.xml", "application/rss+xml"),
        ("/atom.xml", "application/atom+xml"),
        ("/feed.json", "application/feed+json"),
        ("/tags/news/rss.xml", "application/rss+xml"),
        ("/tags/news/atom.xml", "application/atom+xml"),
        ("/tags/news/feed.json", "application/feed+json"),
        ("/archive/rss/1.xml", "application/rss+xml"),
        ("/archive/atom/2.xml", "application/atom+xml"),
        ("/archive/json/1.json", "application/feed+json"),
        ("/tags/news/archive/atom/1.xml", "application/atom+xml"),
        ("/rss.html", "text/html"),
        ("/tags/news/feed.html", "text/html"),
        ("/", "text/html"),
        ("/index.html", "text/html"),
    ],
)
def test_each_file_has_its_media_type(
    server: str, public: Path, path: str, media_type: str
) -> None:
    response = _get(server + path)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{media_type}; charset=utf-8"
    on_disk = public / (path.strip("/") or "index.html")
    assert response.content == on_disk.read_bytes()
    assert response.headers["content-length"] == str(on_disk.stat().st_size)


def test_the_etag_is_a_strong_hash_of_the_bytes_and_last_modified_the_mtime(
    server: str, public: Path
) -> None:
    first, second = _get(server + "/atom.xml"), _get(server + "/atom.xml")
    assert first.headers["etag"] == second.headers["etag"] == _etag_of(first.content)
    assert not first.headers["etag"].startswith("W/")
    mtime = int((public / "atom.xml").stat().st_mtime)
    assert first.headers["last-modified"] == formatdate(mtime, usegmt=True)


def test_a_changed_file_gets_a_new_etag_and_the_old_one_a_200(own_public: Path) -> None:
    feed = own_public / "rss.xml"
    with running(FeedFiles(own_public)) as url:
        old = _get(url + "/rss.xml")
        old_etag = old.headers["etag"]
        assert _get(url + "/rss.xml", **{"If-None-Match": old_etag}).status_code == 304

        write_atomic(feed, feed.read_bytes().replace(b"Story 5", b"Story five"))
        changed = _get(url + "/rss.xml")
        assert b"Story five" in changed.content
        new_etag = changed.headers["etag"]
        assert new_etag not in (old_etag, "")
        assert new_etag == _etag_of(changed.content)
        assert _get(url + "/rss.xml", **{"If-None-Match": old_etag}).status_code == 200
        assert _get(url + "/rss.xml", **{"If-None-Match": new_etag}).status_code == 304

        # The same bytes written again (a new mtime) keep the ETag: it is the content's.
        write_atomic(feed, feed.read_bytes())
        assert _get(url + "/rss.xml").headers["etag"] == new_etag


def test_if_none_match_compares_weakly_and_accepts_lists_and_star(server: str) -> None:
    etag = _get(server + "/feed.json").headers["etag"]
    for value in (etag, f"W/{etag}", f'"nope", {etag}', f'W/"x",W/{etag}', "*"):
        assert _get(server + "/feed.json", **{"If-None-Match": value}).status_code == 304, value
    for value in ('"nope"', etag.replace('"', ""), f'"{etag}"'):
        assert _get(server + "/feed.json", **{"If-None-Match": value}).status_code == 200, value


def test_if_modified_since_and_its_precedence(server: str) -> None:
    first = _get(server + "/rss.xml")
    modified = first.headers["last-modified"]
    later = formatdate(parsedate_to_datetime(modified).timestamp() + 3600, usegmt=True)
    earlier = formatdate(parsedate_to_datetime(modified).timestamp() - 1, usegmt=True)
    assert _get(server + "/rss.xml", **{"If-Modified-Since": modified}).status_code == 304
    assert _get(server + "/rss.xml", **{"If-Modified-Since": later}).status_code == 304
    assert _get(server + "/rss.xml", **{"If-Modified-Since": earlier}).status_code == 200
    assert _get(server + "/rss.xml", **{"If-Modified-Since": "yesterday"}).status_code == 200
    # If-None-Match decides when both are sent (RFC 9110 13.2.2).
    both = {"If-Modified-Since": modified, "If-None-Match": '"other"'}
    assert _get(server + "/rss.xml", **both).status_code == 200
    both = {"If-Modified-Since": earlier, "If-None-Match": first.headers["etag"]}
    assert _get(server + "/rss.xml", **both).status_code == 304


def test_a_304_carries_the_validators_and_no_body(server: str) -> None:
    full = _get(server + "/rss.xml", **{"Accept-Encoding": "gzip"})
    response = _get(
        server + "/rss.xml", **{"Accept-Encoding": "gzip", "If-None-Match": full.headers["etag"]}
    )
    assert response.status_code == 304
    assert response.content == b""
    for name in ("etag", "cache-control", "vary", "last-modified"):
        assert response.headers[name] == full.headers[name], name
    assert "content-type" not in response.headers
    assert "content-encoding" not in response.headers


def test_gzip_when_asked_for_with_its_own_etag(server: str, public: Path) -> None:
    identity = (public / "atom.xml").read_bytes()
    assert len(identity) > 1400  # big enough to be compressed
    response, body = _raw_get(server + "/atom.xml", {"Accept-Encoding": "gzip, deflate"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert int(response.headers["content-length"]) == len(body) < len(identity)
    assert gzip.decompress(body) == identity
    gz_etag = response.headers["etag"]
    plain_etag = _get(server + "/atom.xml").headers["etag"]
    assert gz_etag == plain_etag[:-1] + '-gz"'
    for headers in ({"Accept-Encoding": "gzip"}, {"Accept-Encoding": "identity"}):
        vary = _get(server + "/atom.xml", **headers).headers["vary"]
        assert [v.strip() for v in vary.split(",")] == ["Accept", "Accept-Encoding"]
    # An archive page has no HTML page, so its answer does not depend on Accept.
    archive = _get(server + "/archive/atom/1.xml", **{"Accept-Encoding": "gzip"})
    assert archive.headers["vary"] == "Accept-Encoding"
    # Each ETag validates its own representation only.
    asks_gzip = {"Accept-Encoding": "gzip"}
    assert _get(server + "/atom.xml", **asks_gzip, **{"If-None-Match": gz_etag}).status_code == 304
    assert _get(server + "/atom.xml", **{"If-None-Match": plain_etag}).status_code == 304
    assert _get(server + "/atom.xml", **{"If-None-Match": gz_etag}).status_code == 200
    assert (
        _get(server + "/atom.xml", **asks_gzip, **{"If-None-Match": plain_etag}).status_code == 200
    )


@pytest.mark.parametrize("accept_encoding", ["gzip;q=0", "*;q=0", "identity", "gzip;q=0, *", "br"])
def test_gzip_refused_is_not_sent(server: str, accept_encoding: str) -> None:
    response, body = _raw_get(server + "/atom.xml", {"Accept-Encoding": accept_encoding})
    assert "content-encoding" not in response.headers
    assert body.startswith(b"<?xml")


@pytest.mark.parametrize(
    ("value", "gzip_ok"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("*", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("deflate, gzip;q=0.001", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("*;q=0", False),
        ("*, gzip;q=0", False),
        ("gzip;q=0, *", False),
        ("gzip;q=nonsense", False),
        ("identity", False),
        ("", False),
    ],
)
def test_accept_encoding_parsing(value: str, gzip_ok: bool) -> None:
    assert accepts_gzip(value) is gzip_ok


def test_small_files_are_sent_as_they_are(own_public: Path) -> None:
    (own_public / "tiny.json").write_bytes(b'{"a": 1}\n')
    with running(FeedFiles(own_public)) as url:
        response = _get(url + "/tiny.json", **{"Accept-Encoding": "gzip"})
    assert "content-encoding" not in response.headers
    assert "vary" not in response.headers
    assert response.content == b'{"a": 1}\n'


def test_head_has_the_headers_of_get_and_no_body(server: str) -> None:
    for encoding in ("gzip", "identity"):
        headers = {**READER, "Accept-Encoding": encoding}
        get = httpx.get(server + "/rss.xml", headers=headers)
        head = httpx.head(server + "/rss.xml", headers=headers)
        assert head.status_code == 200
        assert head.content == b""
        without_date = {k: v for k, v in get.headers.items() if k != "date"}
        assert {k: v for k, v in head.headers.items() if k != "date"} == without_date
    etag = head.headers["etag"]
    conditional = httpx.head(server + "/rss.xml", headers={**READER, "If-None-Match": etag})
    assert conditional.status_code == 304


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405_with_allow(server: str, method: str) -> None:
    response = httpx.request(method, server + "/rss.xml")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/tags/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/tags/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/%2e%2e%5csecret.txt",
        "/tags%2fnews%2frss.xml",
        "/.%2e/secret.txt",
        "/./rss.xml",
        "/%00rss.xml",
        "/rss.xml%00",
        "/nope.xml",
        "/tags/nope/",
    ],
)
def test_paths_outside_the_folder_or_odd_ones_are_404(server: str, target: str) -> None:
    assert _raw_status(server, target) == 404


def test_hidden_files_and_links_out_of_the_folder_are_404(own_public: Path) -> None:
    (own_public / ".rss.xml.abc.tmp").write_bytes(b"half written")
    (own_public / "leak.txt").symlink_to(own_public.parent / "secret.txt")
    (own_public / "inside.xml").symlink_to(own_public / "rss.xml")
    with running(FeedFiles(own_public)) as url:
        assert _raw_status(url, "/.rss.xml.abc.tmp") == 404
        assert _raw_status(url, "/leak.txt") == 404
        assert _raw_status(url, "/inside.xml") == 200


def test_a_folder_serves_its_index_and_is_redirected_to_with_a_slash(own_public: Path) -> None:
    (own_public / "digests" / "daily").mkdir(parents=True)
    (own_public / "digests" / "daily" / "index.html").write_text("<p>Issues</p>", "utf-8")
    with running(FeedFiles(own_public)) as url:
        page = _get(url + "/digests/daily/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.text == "<p>Issues</p>"
        moved = httpx.get(url + "/digests/daily?x=1")
        assert moved.status_code == 307
        assert moved.headers["location"] == "daily/?x=1"
        assert httpx.get(url + "/digests/daily", follow_redirects=True).text == "<p>Issues</p>"
        assert _raw_status(url, "/tags/news") == 404  # a folder without an index


def test_cache_control(server: str) -> None:
    expected = {
        "/": CACHE_HTML,
        "/index.html": CACHE_HTML,
        "/rss.xml": CACHE_FEED,
        "/tags/news/feed.json": CACHE_FEED,
        "/rss.html": CACHE_HTML,
        "/tags/news/atom.html": CACHE_HTML,
        "/archive/rss/1.xml": CACHE_FULL_ARCHIVE,  # page 2 follows it: it is final
        "/archive/rss/2.xml": CACHE_FEED,  # the newest page gains a next-archive link later
        "/tags/news/archive/json/1.json": CACHE_FULL_ARCHIVE,
    }
    for path, cache_control in expected.items():
        assert _get(server + path).headers["cache-control"] == cache_control, path
    assert CACHE_FEED == "public, max-age=300"
    assert CACHE_HTML == "no-cache"


@pytest.mark.parametrize(
    ("path", "page"),
    [
        ("/rss.xml", "rss.html"),
        ("/atom.xml", "atom.html"),
        ("/feed.json", "feed.html"),
        ("/tags/news/rss.xml", "tags/news/rss.html"),
    ],
)
def test_a_browser_gets_the_feeds_page_and_a_reader_the_feed(
    server: str, public: Path, path: str, page: str
) -> None:
    for encoding in ("gzip", "identity"):
        browser = _get(server + path, Accept=BROWSER_ACCEPT, **{"Accept-Encoding": encoding})
        reader = _get(server + path, **{"Accept-Encoding": encoding})
        assert browser.status_code == reader.status_code == 200
        assert browser.headers["content-type"] == "text/html; charset=utf-8"
        assert browser.content == (public / page).read_bytes()
        assert browser.headers["cache-control"] == CACHE_HTML
        assert reader.content == (public / path.strip("/")).read_bytes()
        assert not reader.headers["content-type"].startswith("text/html")
        for response in (browser, reader):
            assert "Accept" in [v.strip() for v in response.headers["vary"].split(",")]
        assert browser.headers["etag"] != reader.headers["etag"]
        # Each representation revalidates with its own ETag only.
        again = {"Accept-Encoding": encoding, "If-None-Match": browser.headers["etag"]}
        assert _get(server + path, Accept=BROWSER_ACCEPT, **again).status_code == 304
        assert _get(server + path, **again).status_code == 200


@pytest.mark.parametrize(
    "accept",
    [
        "",
        "*/*",
        "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8",
        "text/html;q=0.5, application/rss+xml",
        "text/html, application/rss+xml",  # a tie goes to the feed
        "application/xml",
        "text/html;q=0",
    ],
)
def test_feed_readers_get_the_feed_whatever_they_accept(server: str, accept: str) -> None:
    headers = {"Accept-Encoding": "identity"}
    if accept:
        headers["Accept"] = accept
    response = httpx.get(server + "/rss.xml", headers=headers)
    assert response.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert response.content.startswith(b"<?xml")


def test_an_archive_page_or_a_missing_feed_page_gives_a_browser_the_feed(
    own_public: Path,
) -> None:
    (own_public / "atom.html").unlink()  # e.g. an output folder built before feed pages
    with running(FeedFiles(own_public)) as url:
        for path in ("/atom.xml", "/archive/rss/1.xml"):
            response = _get(url + path, Accept=BROWSER_ACCEPT)
            assert response.status_code == 200
            assert response.content == (own_public / path.strip("/")).read_bytes()
            assert response.headers["content-type"].startswith("application/")


@pytest.mark.parametrize(
    ("accept", "media_type", "html"),
    [
        (
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "application/rss+xml",
            True,
        ),
        (
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "application/feed+json",
            True,
        ),
        ("text/*, application/atom+xml;q=0.5", "application/atom+xml", True),
        ("*/*", "application/rss+xml", False),
        ("text/html, application/rss+xml", "application/rss+xml", False),
        ("text/html;q=0.9, application/*;q=0.8", "application/rss+xml", True),
        ("text/html;q=0.5, application/*", "application/rss+xml", False),
        ("text/html;q=bad", "application/rss+xml", False),
        ("TEXT/HTML", "application/rss+xml", True),
        ("", "application/rss+xml", False),
    ],
)
def test_wants_html_weighs_the_accept_header(accept: str, media_type: str, html: bool) -> None:
    assert wants_html(accept, media_type) is html


def test_a_small_memory_budget_still_serves_every_file(own_public: Path) -> None:
    (own_public / "big.xml").write_bytes(b"<big>" + b"x" * 300_000 + b"</big>")
    files = FeedFiles(own_public, cache_bytes=20_000, max_file_bytes=10_000)
    paths = ["/rss.xml", "/atom.xml", "/feed.json", "/archive/rss/1.xml", "/rss.html", "/big.xml"]
    with running(files) as url:
        for _ in range(2):
            for path in paths:
                response, body = _raw_get(url + path, {"Accept-Encoding": "gzip"})
                assert response.status_code == 200
                on_disk = (own_public / path.strip("/")).read_bytes()
                if response.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                assert body == on_disk, path
                assert response.headers["etag"].startswith(_etag_of(on_disk)[:-1])
                assert files._cached_bytes <= 20_000
        big = _get(url + "/big.xml", **{"Accept-Encoding": "gzip"})
        assert "content-encoding" not in big.headers  # too big to keep: streamed as it is
        again = _get(url + "/big.xml", **{"If-None-Match": big.headers["etag"]})
        assert again.status_code == 304


def test_create_app_mounts_the_feed_files_last(tmp_path: Path) -> None:
    settings = make_project(tmp_path)
    app = create_app(
        settings,
        engine=create_engine("sqlite://"),
        secret=b"feed-serving-test-secret-key-0123",
        transport=lambda: pytest.fail("no mail is sent here"),
    )
    last = app.routes[-1]
    assert isinstance(last, Mount)
    assert last.name == "feeds"
    assert isinstance(last.app, FeedFiles)
    assert Path(last.app.directory) == settings.output_dir.resolve()
