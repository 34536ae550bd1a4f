"""Upstream dates are sane: an entry dated before 1970 or more than a day after the fetch is dated
when it was first seen, reported by feed and entry, and never tops the feed or stops a digest."""

from __future__ import annotations

import email.parser
import email.policy
import json
from calendar import timegm
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from speakerfeed.actions.site import build_site
from speakerfeed.config import Settings
from speakerfeed.sources.upstream_dates import sane_dates
from speakerfeed.sources.upstream_entry import Entry
from speakerfeed.sources.upstream_state import UpstreamState, save_state
from tests.support.cli import run_speakerfeed
from tests.support.feed_server import FeedServer, RecordedRequest, Reply, running_server
from tests.support.project import BASE_CONFIG, make_project

ROOT = Path(__file__).resolve().parents[2]
RSS_TYPE = "application/rss+xml; charset=utf-8"
FIRST_BUILD = datetime(2025, 4, 2, 12, 0, tzinfo=UTC)
SECOND_BUILD = datetime(2025, 4, 3, 12, 0, tzinfo=UTC)

# As a careless CMS writes them: a zeroed date, a "never expires" date, and one real story
# (dated a few hours after the first build, so it is embargoed then and newest at the second).
ITEMS = [
    ("Ancient history", "ancient", "Mon, 01 Jan 0001 00:00:00 GMT"),
    ("Far future", "future", "Fri, 31 Dec 9999 23:59:59 GMT"),
    ("Council votes on the bus lane", "council", "Thu, 03 Apr 2025 09:00:00 GMT"),
]


def wire_feed() -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>https://wire.example/{slug}</link>"
        f'<guid isPermaLink="false">wire-{slug}</guid><pubDate>{date}</pubDate>'
        f"<description><![CDATA[<p>Text of {slug} &amp; more.</p>]]></description></item>"
        for title, slug, date in ITEMS
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Wire</title>'
        f"<link>https://wire.example/</link>{items}</channel></rss>"
    ).encode()


def conditional(request: RecordedRequest) -> Reply:
    """The wire feed with an ETag, and 304 Not Modified to a request that sends it back."""
    if request.headers.get("if-none-match") == '"v1"':
        return Reply(status=304)
    return Reply(headers={"Content-Type": RSS_TYPE, "ETag": '"v1"'}, body=wire_feed())


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with running_server() as running:
        running.route("/wire", conditional)
        yield running


def project(tmp_path: Path, server: FeedServer) -> Settings:
    return make_project(
        tmp_path,
        build={"output_dir": str(tmp_path / "public"), "cache_dir": str(tmp_path / "cache")},
        fetch={"allow_hosts": ["127.0.0.1"], "timeout_seconds": 5},
        upstream=[{"name": "wire", "url": server.url("/wire")}],
    )


def published_order(settings: Settings) -> list[tuple[str, datetime]]:
    """(title, date) of every entry of the built rss.xml, top first, as a feed reader sees it."""
    rss = feedparser.parse((settings.output_dir / "rss.xml").read_bytes())
    return [(e.title, datetime.fromtimestamp(timegm(e.published_parsed), UTC)) for e in rss.entries]


def test_bad_upstream_dates_are_first_seen_reported_and_not_on_top(
    server: FeedServer, tmp_path: Path
) -> None:
    settings = project(tmp_path, server)
    first = build_site(settings, clock=lambda: FIRST_BUILD)
    warnings = sorted(p.message for p in first.problems)
    feed_url = server.url("/wire")
    assert len(warnings) == 2, warnings
    assert f"({feed_url})" in warnings[0] and "'Ancient history' (id wire-ancient)" in warnings[0]
    assert "0001-01-01 is before 1970" in warnings[0]
    assert "'Far future' (id wire-future)" in warnings[1]
    assert "9999-12-31 is more than a day after the fetch" in warnings[1]
    assert all(p.warning for p in first.problems)
    # The real story is dated after this build: held back, not a bad date.
    assert dict(published_order(settings)) == {
        "Ancient history": FIRST_BUILD,
        "Far future": FIRST_BUILD,
    }

    # The upstream answers 304 Not Modified now: the warnings stay until the feed is fixed.
    second = build_site(settings, clock=lambda: SECOND_BUILD)
    assert sorted(p.message for p in second.problems) == warnings
    assert server.requests_to("/wire")[-1].headers["if-none-match"] == '"v1"'
    # Dated when first seen, the same on every build: the real story is on top.
    top, *rest = published_order(settings)
    assert top == ("Council votes on the bus lane", datetime(2025, 4, 3, 9, 0, tzinfo=UTC))
    assert dict(rest) == {"Ancient history": FIRST_BUILD, "Far future": FIRST_BUILD}


def test_a_digest_preview_with_bad_upstream_dates(server: FeedServer, tmp_path: Path) -> None:
    (tmp_path / "articles").mkdir()
    (tmp_path / "config.toml").write_text(
        BASE_CONFIG
        + f"""
[build]
output_dir = "public"
cache_dir = "var/cache"

[fetch]
allow_hosts = ["127.0.0.1"]
timeout_seconds = 5

[[upstream]]
name = "wire"
url = "{server.url("/wire")}"

[email]
from_address = "The Speaker <digest@speakernews.co.uk>"
postal_address = "The Speaker, 20 Example Street, London EC1A 1AA, United Kingdom"

[[lists]]
name = "daily"
title = "The Speaker Daily"
""",
        encoding="utf-8",
    )
    out = tmp_path / "preview"
    result = run_speakerfeed(
        tmp_path,
        *("digest", "preview", "daily", "--out", str(out)),
        secret="test-secret-key-0123456789abcdef",
        extra_env={"PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    eml = next(out.glob("*.eml")).read_bytes()
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(eml)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for title, _, _ in ITEMS:
        assert title in html
    assert "0001" not in html and "9999" not in html


def entry(published: datetime | None, updated: datetime | None = None) -> Entry:
    return Entry("e1", "Storm", "https://wire.example/s", published, updated, (), (), "", "", "")


@pytest.mark.parametrize(
    ("published", "updated", "expected"),
    [
        (datetime(1969, 12, 31, 23, 59, tzinfo=UTC), None, (FIRST_BUILD, None)),
        (datetime(1970, 1, 1, tzinfo=UTC), None, (datetime(1970, 1, 1, tzinfo=UTC), None)),
        (
            datetime(2025, 4, 3, 12, 0, tzinfo=UTC),
            None,
            (datetime(2025, 4, 3, 12, tzinfo=UTC), None),
        ),
        (datetime(2025, 4, 3, 12, 1, tzinfo=UTC), None, (FIRST_BUILD, None)),
        (
            datetime(2025, 1, 1, tzinfo=UTC),
            datetime.max.replace(tzinfo=UTC),
            (datetime(2025, 1, 1, tzinfo=UTC), None),
        ),
        (None, None, (None, None)),
    ],
)
def test_the_limits_are_1970_and_a_day_after_the_fetch(
    published: datetime | None, updated: datetime | None, expected: tuple[datetime | None, ...]
) -> None:
    fetched = datetime(2025, 4, 2, 12, 0, tzinfo=UTC)
    [checked], reasons = sane_dates([entry(published, updated)], {"e1": FIRST_BUILD}, fetched)
    assert (checked.published, checked.updated) == expected
    assert len(reasons) == (
        0 if (checked.published, checked.updated) == (published, updated) else 1
    )


def test_a_json_feed_dated_past_the_calendar_in_utc(server: FeedServer, tmp_path: Path) -> None:
    # Year 1 east of UTC and 9999 west of it cannot even be held in UTC: they were OverflowError.
    items = [
        {
            "id": "j1",
            "url": "https://wire.example/j1",
            "title": "Dawn of time",
            "content_text": "Text.",
            "date_published": "0001-01-01T00:30:00+01:00",
        },
        {
            "id": "j2",
            "url": "https://wire.example/j2",
            "title": "End of time",
            "content_text": "Text.",
            "date_published": "9999-12-31T23:00:00-05:00",
        },
    ]
    body = json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "title": "Wire", "items": items}
    ).encode()
    server.route("/wire", Reply(headers={"Content-Type": "application/feed+json"}, body=body))
    settings = project(tmp_path, server)
    report = build_site(settings, clock=lambda: FIRST_BUILD)
    messages = " | ".join(p.message for p in report.problems)
    assert "'Dawn of time' (id j1): published date 0001-01-01 is before 1970" in messages
    assert "'End of time' (id j2): published date 9999-12-31 is more than a day" in messages
    assert dict(published_order(settings)) == {
        "Dawn of time": FIRST_BUILD,
        "End of time": FIRST_BUILD,
    }


def test_a_state_saved_before_dates_were_checked_is_fixed_on_a_304(
    server: FeedServer, tmp_path: Path
) -> None:
    settings = project(tmp_path, server)
    far = datetime.max.replace(tzinfo=UTC)
    old = Entry(
        "wire-future", "Far future", "https://wire.example/future", far, None, (), (), "", "", ""
    )
    save_state(
        settings.cache_dir / "upstream.json",
        {
            "wire": UpstreamState(
                server.url("/wire"), '"v1"', None, [old], {"wire-future": FIRST_BUILD}
            )
        },
    )
    report = build_site(settings, clock=lambda: SECOND_BUILD)
    assert server.requests_to("/wire")[-1].headers["if-none-match"] == '"v1"'  # a 304
    assert ["'Far future' (id wire-future)" in p.message for p in report.problems] == [True]
    assert published_order(settings) == [("Far future", FIRST_BUILD)]
