"""No date of any article can make rendering, lint or the feeds fail: a Markdown article dated
0001-01-01 or 9999-12-31, in any time zone, shown in any site's time zone (year 1 west of UTC
and year 9999 east of it are outside what a datetime can hold)."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from lxml import html as lxml_html

from speakerfeed.config import Settings
from speakerfeed.feeds.plan import feed_sets, plan_documents
from speakerfeed.models import Article, Digest
from speakerfeed.render.email import render_digest
from speakerfeed.render.feed_pages import render_feed_page
from speakerfeed.render.feeds import render
from speakerfeed.render.lint import lint_digest
from speakerfeed.sources.collect import collect
from speakerfeed.sources.folder import article_fingerprint
from tests.render.test_email import SETTINGS, SITE
from tests.support.cli import run_speakerfeed
from tests.support.project import BASE_CONFIG, markdown_article

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret-key-0123456789abcdef"
HTML_DATETIME = re.compile(r"\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")
ZONES = sorted(zoneinfo.available_timezones())
ISSUED = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)

# Every moment a datetime can hold, in every zone (and UTC), with the calendar's edges as likely.
moments = st.one_of(
    st.datetimes(timezones=st.sampled_from(ZONES).map(ZoneInfo)),
    st.datetimes(timezones=st.just(UTC)),
    st.sampled_from([datetime.min, datetime.max]).flatmap(
        lambda edge: st.sampled_from(ZONES).map(lambda zone: edge.replace(tzinfo=ZoneInfo(zone)))
    ),
)


def in_zone(settings: Settings, zone: str) -> Settings:
    return settings.model_copy(update={"site": settings.site.model_copy(update={"timezone": zone})})


def article(number: int, published: datetime, updated: datetime | None = None) -> Article:
    slug = f"dated-{number}"
    made = Article(
        id=f"tag:www.speakernews.co.uk,2024:{slug}",
        title=f"Dated article {number}",
        url=f"{SITE}/{slug}/",
        published=published,
        updated=updated,
        content_html="<p>Body.</p>",
        summary="A summary.",
        source=f"articles/{slug}.md",
        slug=slug,
        authors=("Amelia Hart",),
        tags=("politics",),
    )
    return replace(made, fingerprint=article_fingerprint(made))


def digest_of(articles: tuple[Article, ...]) -> Digest:
    return Digest(
        id="daily-2026-12-03-0700",
        list_name="daily",
        list_title="The Speaker Daily",
        articles=articles,
        issued=ISSUED,
    )


def check_everything(settings: Settings, articles: list[Article]) -> None:
    """Render the digest and lint it, build every feed document and page: nothing raises."""
    list_settings = settings.lists[0]
    rendered = render_digest(settings, list_settings, digest_of(tuple(articles)))
    assert all(f.severity != "error" for f in lint_digest(settings, rendered)), rendered.html
    document = lxml_html.fromstring(rendered.html)
    times = [element.get("datetime", "") for element in document.iter("time")]
    assert len(times) >= len(articles)
    for value in times:  # a valid HTML global date and time, whatever the date
        assert HTML_DATETIME.fullmatch(value), value
    for doc in plan_documents(settings, feed_sets(settings, collect(articles).articles)):
        body = render_feed_page(doc) if doc.is_page else render(doc)
        if not doc.is_page and doc.format in ("rss", "atom"):
            assert not feedparser.parse(body).bozo, doc.path


@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    zone=st.sampled_from(ZONES),
    dates=st.lists(st.tuples(moments, st.none() | moments), min_size=1, max_size=3),
)
def test_any_date_in_any_zone_renders_lints_and_builds(
    zone: str, dates: list[tuple[datetime, datetime | None]]
) -> None:
    settings = in_zone(SETTINGS, zone)
    check_everything(settings, [article(n, p, u) for n, (p, u) in enumerate(dates)])


def test_the_calendar_edges_in_the_zones_furthest_from_utc() -> None:
    # Kiritimati is UTC+14 (year 9999 runs over), Pago Pago UTC-11 (year 1 runs under).
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"):
        settings = in_zone(SETTINGS, zone)
        articles = [
            article(1, datetime.min.replace(tzinfo=UTC)),
            article(2, datetime.max.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)),
            article(3, datetime(2026, 12, 2, 18, 30, tzinfo=UTC)),
        ]
        check_everything(settings, articles)


def test_local_articles_dated_year_1_and_9999_preview_and_lint_from_the_cli(tmp_path: Path) -> None:
    # In New York (local mean time then, UTC-4:56) a Markdown date of 0001-01-01 in UTC is
    # before the calendar begins; "updated: 9999-12-31" at UTC+14 is after it ends in UTC.
    config = BASE_CONFIG.replace('timezone = "Europe/London"', 'timezone = "America/New_York"')
    (tmp_path / "config.toml").write_text(
        config
        + """
[email]
from_address = "The Speaker <digest@speakernews.co.uk>"
postal_address = "The Speaker, 20 Example Street, London EC1A 1AA, United Kingdom"

[[lists]]
name = "daily"
title = "The Speaker Daily"
""",
        encoding="utf-8",
    )
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "imported.md").write_text(
        markdown_article("Imported with a zeroed date", "0001-01-01T00:00:00Z"), encoding="utf-8"
    )
    (articles / "forever.md").write_text(
        markdown_article(
            "Pinned notice", "2026-01-05T09:00:00Z", updated="9999-12-31T23:59:59+14:00"
        ),
        encoding="utf-8",
    )
    (articles / "today.md").write_text(
        markdown_article("Council votes on the bus lane", "2026-11-30 09:00"), encoding="utf-8"
    )
    # Dated 10000-01-01 in UTC: embargoed, and `check` lists it in the site's zone.
    (articles / "far.md").write_text(
        markdown_article("Time capsule", "9999-12-31T23:00:00-05:00"), encoding="utf-8"
    )
    env = {"PYTHONPATH": str(ROOT / "src")}
    checked = run_speakerfeed(tmp_path, "check", "--no-fetch", secret=SECRET, extra_env=env)
    assert checked.returncode == 0, checked.stderr
    assert "Embargoed until their time (1):" in checked.stdout
    assert "far.md  Time capsule" in checked.stdout
    out = tmp_path / "preview"
    for args in (("digest", "preview", "daily", "--out", str(out)), ("digest", "lint", "daily")):
        result = run_speakerfeed(tmp_path, *args, secret=SECRET, extra_env=env)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    html = next(out.glob("*.html")).read_text(encoding="utf-8")
    for title in ("Imported with a zeroed date", "Pinned notice", "Council votes on the bus lane"):
        assert title in html
    assert 'datetime="0001-01-01T00:00:00-04:56"' in html  # the calendar's first day, there
    built = run_speakerfeed(tmp_path, "build", secret=SECRET, extra_env=env)
    assert built.returncode == 0, built.stderr
    titles = [
        e.title for e in feedparser.parse((tmp_path / "public" / "rss.xml").read_bytes()).entries
    ]
    assert titles == [
        "Council votes on the bus lane",
        "Pinned notice",
        "Imported with a zeroed date",
    ]
