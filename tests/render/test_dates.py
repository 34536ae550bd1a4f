"""No date of any article can make rendering, lint or the feeds fail: a Markdown article dated
0001-01-01 or 9999-12-31, in any time zone, shown in any site's time zone (year 1 west of UTC
and year 9999 east of it are outside what a datetime can hold)."""

from __future__ import annotations

import zoneinfo
from dataclasses import replace
from datetime import UTC, datetime
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
    assert len(document.findall(".//time")) >= len(articles)
    for doc in plan_documents(settings, feed_sets(settings, collect(articles).articles)):
        body = render_feed_page(doc) if doc.is_page else render(doc)
        if not doc.is_page and doc.format in ("rss", "atom"):
            assert not feedparser.parse(body).bozo, doc.path


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
