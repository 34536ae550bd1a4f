"""Slow upstreams, as the reader of the built feed sees them: one fetch deadline per upstream,
fetched side by side, so a slow host delays none of the others and the build ends on time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest

from speakerfeed.actions.site import build_site
from speakerfeed.errors import Problem
from tests.support.feed_server import FeedServer, RecordedRequest, Reply, running_server
from tests.support.project import make_project, markdown_article

RSS_TYPE = "application/rss+xml; charset=utf-8"
DEADLINE = 4.0
# Answers well inside the deadline, even on a machine shared with other test runs.
SLOW_BUT_FINE = 2.0
# Building the feeds themselves (under a second unless the machine is very busy). Fetching one
# upstream after another would take DEADLINE + 2 x SLOW_BUT_FINE = 8 s, over DEADLINE + MARGIN.
MARGIN = 3.0


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with running_server() as running:
        yield running


def rss_feed(channel: str, *titles: str) -> bytes:
    """A realistic upstream: an XML declaration, namespaces, CDATA content, entity-free."""
    items = "".join(
        f"<item><title>{title}</title><link>https://{channel}.example/{n}</link>"
        f'<guid isPermaLink="false">{channel}-{n}</guid>'
        f"<pubDate>Tue, 0{n + 1} Apr 2025 10:00:00 GMT</pubDate>"
        f"<content:encoded><![CDATA[<p>{title} — in full.</p>]]></content:encoded></item>"
        for n, title in enumerate(titles)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>{channel}</title><link>https://{channel}.example/</link>{items}"
        "</channel></rss>"
    ).encode()


@dataclass(frozen=True)
class Built:
    output: Path
    seconds: float  # wall-clock time of the whole build
    problems: list[Problem]


def build(tmp_path: Path, upstreams: list[dict[str, str]], **fetch: object) -> Built:
    """Build a project with one local article and these upstreams, as `speakerfeed build` does."""
    settings = make_project(
        tmp_path,
        {"2025-04-01-local.md": markdown_article("Our own story", "2025-04-01 09:00")},
        build={"output_dir": str(tmp_path / "public"), "cache_dir": str(tmp_path / "cache")},
        fetch={"allow_hosts": ["127.0.0.1"], "timeout_seconds": DEADLINE, **fetch},
        upstream=upstreams,
    )
    started = time.monotonic()
    report = build_site(settings)
    return Built(settings.output_dir, time.monotonic() - started, report.problems)


def test_a_trickling_upstream_ends_at_the_deadline_and_the_others_are_published(
    server: FeedServer, tmp_path: Path
) -> None:
    # Listed first, so fetching in turn would make everyone wait for it.
    slow = server.route("/slowloris", Reply(body=rss_feed("slow", "Never"), header_trickle=0.05))
    wire = server.route(
        "/wire",
        Reply(
            headers={"Content-Type": RSS_TYPE},
            body=rss_feed("wire", "Storm hits the coast", "Ferry cancelled"),
            delay=SLOW_BUT_FINE,
        ),
    )
    agency = server.route(
        "/agency",
        Reply(
            headers={"Content-Type": RSS_TYPE},
            body=rss_feed("agency", "Council votes on budget"),
            delay=SLOW_BUT_FINE,
        ),
    )
    built = build(
        tmp_path,
        [
            {"name": "slowloris", "url": slow},
            {"name": "wire", "url": wire},
            {"name": "agency", "url": agency},
        ],
    )
    assert [p.where for p in built.problems] == ["slowloris"], built.problems
    assert DEADLINE <= built.seconds < DEADLINE + MARGIN

    rss = feedparser.parse((built.output / "rss.xml").read_bytes())
    titles = {entry.title for entry in rss.entries}
    assert titles == {
        "Our own story",
        "Storm hits the coast",
        "Ferry cancelled",
        "Council votes on budget",
    }
    [problem] = built.problems
    assert problem.where == "slowloris" and not problem.warning
    assert problem.message == (
        f"upstream 'slowloris': timed out after {DEADLINE:g}s fetching {slow}; "
        "no earlier articles to serve"
    )


def test_fetches_in_flight_are_bounded_and_results_keep_the_configured_order(
    server: FeedServer, tmp_path: Path
) -> None:
    arrivals: dict[str, float] = {}
    lock = threading.Lock()

    def answer(name: str, delay: float) -> Callable[[RecordedRequest], Reply]:
        # Every one of them fails (HTTP 503), so the problems list shows the order of results.
        def reply(request: RecordedRequest) -> Reply:
            with lock:
                arrivals[name] = time.monotonic()
            return Reply(503, body=b"busy", delay=delay)

        return reply

    # The first answers last: an order of completion would put it at the end.
    delays = {"first": 2.0, "second": 1.0, "third": 1.0, "fourth": 1.0}
    upstreams = [
        {"name": name, "url": server.route(f"/{name}", answer(name, delay))}
        for name, delay in delays.items()
    ]
    built = build(tmp_path, upstreams, max_in_flight=2)

    # Two at once: the third and fourth wait for a free slot (the second's, 1 s later).
    first_wave = [arrivals["first"], arrivals["second"]]
    second_wave = [arrivals["third"], arrivals["fourth"]]
    assert max(first_wave) - min(first_wave) < 0.8
    assert min(second_wave) - min(first_wave) >= 0.95
    assert [p.where for p in built.problems] == ["first", "second", "third", "fourth"]
    assert all("HTTP 503 Service Unavailable" in p.message for p in built.problems)
