"""Upstream articles are themselves in the built feeds: each carries a fingerprint of its content,
so two feeds' entries are never rendered as one another and a changed upstream is written again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from speakerfeed.actions.site import build_site
from speakerfeed.config import Settings
from speakerfeed.feeds.build import BuildReport
from tests.support.feed_server import FeedServer, Reply, running_server
from tests.support.project import make_project

RSS_TYPE = "application/rss+xml; charset=utf-8"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with running_server() as running:
        yield running


def rss_feed(channel: str, items: dict[str, str]) -> bytes:
    """A channel of ``items`` (title -> HTML body), dated a day apart."""
    body = "".join(
        f"<item><title>{title}</title><link>https://{channel}.example/{n}</link>"
        f'<guid isPermaLink="false">{channel}-{title}</guid>'
        f"<pubDate>Tue, 0{n + 1} Apr 2025 10:00:00 GMT</pubDate>"
        f"<description><![CDATA[{html}]]></description></item>"
        for n, (title, html) in enumerate(items.items())
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{channel}</title><link>https://{channel}.example/</link>{body}</channel></rss>"
    ).encode()


def project(tmp_path: Path, server: FeedServer, *names: str) -> Settings:
    return make_project(
        tmp_path,
        build={"output_dir": str(tmp_path / "public"), "cache_dir": str(tmp_path / "cache")},
        fetch={"allow_hosts": ["127.0.0.1"], "timeout_seconds": 5},
        upstream=[{"name": name, "url": server.url(f"/{name}")} for name in names],
    )


def bodies(settings: Settings) -> dict[str, str]:
    """Title -> full text of every entry in the built rss.xml, as a feed reader shows them."""
    rss = feedparser.parse((settings.output_dir / "rss.xml").read_bytes())
    return {entry.title: entry.content[0].value for entry in rss.entries}


def test_two_upstreams_publish_every_entry_as_itself(server: FeedServer, tmp_path: Path) -> None:
    server.route(
        "/wire",
        Reply(
            headers={"Content-Type": RSS_TYPE},
            body=rss_feed("wire", {"a1": "<p>Text of a1</p>", "a2": "<p>Text of a2</p>"}),
        ),
    )
    server.route(
        "/agency",
        Reply(
            headers={"Content-Type": RSS_TYPE}, body=rss_feed("agency", {"b1": "<p>Text of b1</p>"})
        ),
    )
    settings = project(tmp_path, server, "wire", "agency")
    report = build_site(settings)
    assert report.problems == []
    assert bodies(settings) == {
        "a1": "<p>Text of a1</p>",
        "a2": "<p>Text of a2</p>",
        "b1": "<p>Text of b1</p>",
    }


def test_a_changed_upstream_is_written_again(server: FeedServer, tmp_path: Path) -> None:
    first = {"Storm": "<p>Wind at 40 mph.</p>", "Ferry": "<p>Ferries run.</p>"}
    second = {"Storm": "<p>Correction: wind at 70 mph.</p>", "Flood": "<p>River bursts.</p>"}
    feeds = iter([rss_feed("wire", first), rss_feed("wire", second), rss_feed("wire", second)])
    server.route("/wire", lambda _: Reply(headers={"Content-Type": RSS_TYPE}, body=next(feeds)))
    settings = project(tmp_path, server, "wire")

    build_site(settings)
    assert bodies(settings) == first
    changed: BuildReport = build_site(settings)
    # new (Flood), changed (Storm) and removed (Ferry) entries all reach the reader
    assert bodies(settings) == second
    assert "rss.xml" in changed.written and "atom.xml" in changed.written
    unchanged = build_site(settings)
    assert unchanged.written == []


def test_a_second_build_with_nothing_changed_upstream_writes_nothing(
    server: FeedServer, tmp_path: Path
) -> None:
    feed = rss_feed("wire", {"Storm": "<p>Wind at 40 mph.</p>", "Ferry": "<p>Ferries run.</p>"})
    server.route("/wire", Reply(headers={"Content-Type": RSS_TYPE}, body=feed))
    settings = project(tmp_path, server, "wire")
    first = build_site(settings)
    assert "rss.xml" in first.written
    before = {p: p.stat().st_mtime_ns for p in settings.output_dir.rglob("*") if p.is_file()}
    second = build_site(settings)
    assert second.problems == []
    assert second.written == []
    after = {p: p.stat().st_mtime_ns for p in settings.output_dir.rglob("*") if p.is_file()}
    assert after == before  # not one file touched, none added or removed
    assert len(server.requests_to("/wire")) == 2  # it did ask upstream again
