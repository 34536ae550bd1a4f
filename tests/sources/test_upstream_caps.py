"""What parsing makes of a small upstream body is capped too, not only the body: relative links
made absolute (by feedparser against xml:base, by the sanitiser against each entry's link) can
turn kilobytes into hundreds of millions of characters."""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from speakerfeed.config import Settings, settings_from_mapping
from speakerfeed.sources.remote import UpstreamResult, refresh_upstreams
from tests.support.feed_server import FeedServer, Reply, running_server
from tests.support.project import BASE_CONFIG

NOW = datetime(2025, 5, 1, tzinfo=UTC)
CAP = 1_000_000
REFUSED = (
    f"upstream 'wire': refused: the entries hold over {CAP} characters of text once parsed; "
    "no earlier articles to serve"
)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with running_server() as running:
        yield running


def fetched(server: FeedServer, body: bytes, content_type: str, tmp_path: Path) -> UpstreamResult:
    url = server.route("/feed", Reply(headers={"Content-Type": content_type}, body=body))
    data = tomllib.loads(BASE_CONFIG)
    data["fetch"] = {"allow_hosts": ["127.0.0.1"], "timeout_seconds": 5.0, "max_bytes": CAP}
    data["upstream"] = [{"name": "wire", "url": url}]
    settings: Settings = settings_from_mapping(data, where="test", root=Path("."))
    return refresh_upstreams(settings, tmp_path / "upstream.json", NOW)


def test_links_made_absolute_against_a_long_xml_base_are_capped(
    server: FeedServer, tmp_path: Path
) -> None:
    # 53 KB of body, no entities: three thousand relative links under a 2,000-character
    # xml:base become 6,000,000 characters once feedparser makes them absolute.
    base = "https://wire.example/" + "a/" * 1000
    links = '<a href="x">x</a>' * 3000
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f'<channel xml:base="{base}"><title>W</title><item><title>Links</title>'
        "<link>https://wire.example/links</link>"
        f"<content:encoded><![CDATA[{links}]]></content:encoded></item></channel></rss>"
    ).encode()
    assert len(body) < 60_000
    result = fetched(server, body, "application/rss+xml", tmp_path)
    assert result.articles == []
    [problem] = result.problems
    assert problem.message == REFUSED


def test_links_the_sanitiser_would_make_absolute_are_counted_before_it_runs(
    server: FeedServer, tmp_path: Path
) -> None:
    # 400 KB of JSON Feed: twenty thousand relative links in an item whose own URL has a
    # 20,000-character path. Resolved against it they would be 400,000,000 characters.
    item_url = "https://wire.example/" + "a/" * 10_000
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Wire",
            "items": [
                {
                    "id": "1",
                    "url": item_url,
                    "title": "Links",
                    "content_html": '<a href="x">x</a>' * 20_000,
                },
                {"id": "2", "url": "https://wire.example/fine", "title": "Fine"},
            ],
        }
    ).encode()
    started = time.monotonic()
    result = fetched(server, body, "application/feed+json", tmp_path)
    assert time.monotonic() - started < 3  # refused before sanitising, not after
    assert result.articles == []
    [problem] = result.problems
    assert problem.message == REFUSED


def test_a_large_honest_feed_with_relative_links_is_still_read(
    server: FeedServer, tmp_path: Path
) -> None:
    # Two hundred articles, each with a dozen relative links and images: well under the cap.
    paragraph = '<p>See <a href="/related">related</a> and <img src="pic.jpg" alt="A pic"></p>'
    items = [
        {
            "id": str(n),
            "url": f"https://wire.example/2025/04/story-{n}",
            "title": f"Story {n}",
            "content_html": paragraph * 12,
        }
        for n in range(200)
    ]
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}).encode()
    result = fetched(server, body, "application/feed+json", tmp_path)
    assert result.problems == []
    assert len(result.articles) == 50  # max_items
    assert 'href="https://wire.example/related"' in result.articles[0].content_html
