"""A feed's HTML page: what a person sees who opens rss.xml, atom.xml or feed.json in a browser.

Browsers are removing XSLT (Chromium 156 paints a deprecation banner over a styled feed), so each
subscription document gets a server-rendered page next to it (rss.html beside rss.xml): the feed's
newest items with their dates and summaries, its address to copy into a feed reader, and its other
formats. `serve` answers a browser's request for the feed with it (web.feed_http), and nginx or a
CDN can do the same from the files.

A pure function of its FeedDocument (built by feeds.plan with ``page_version`` set), like the feeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from speakerfeed.models import Article
from speakerfeed.render.feeds import FORMATS, FeedDocument
from speakerfeed.render.pages import (
    day_text,
    feed_label,
    format_label,
    html_datetime,
    local_time,
    nav_links,
    render_page,
    template_digest,
    text_direction,
)

__all__ = ["FEED_PAGE_TEMPLATES", "feed_page_version", "render_feed_page"]

FEED_PAGE_TEMPLATE = "web/feed_page.html"
# Every template the page is made of, for its version: an edit to either rebuilds the pages.
FEED_PAGE_TEMPLATES = (FEED_PAGE_TEMPLATE, "web/base.html")


def feed_page_version(templates_dir: Path | None = None) -> str:
    """The ``page_version`` of the feed pages a build plans now (with the editor's overrides in
    ``templates_dir``)."""
    return "1-" + template_digest(FEED_PAGE_TEMPLATES, templates_dir=templates_dir)


def render_feed_page(doc: FeedDocument) -> bytes:
    if not doc.is_page:
        raise ValueError(f"{doc.path} is a feed document, not a feed's page")
    meta = doc.meta
    site_title = meta.site_title or meta.title
    zone = ZoneInfo(meta.timezone)
    folder_url = doc.subscription_url.rsplit("/", 1)[0] + "/"
    depth = doc.path.count("/")
    context: dict[str, Any] = {
        "lang": meta.language,
        "dir": text_direction(meta.language),
        "site_title": site_title,
        "site_url": meta.home_url,
        "site_description": meta.description,
        "nav": nav_links(root="../" * depth, signup_url=meta.signup_url, archive=meta.archive),
        "signup_url": meta.signup_url,
        **({"favicon": meta.favicon} if meta.favicon else {}),
        "feed_title": meta.title,
        "feed_label": feed_label(meta.title, site_title),
        "is_main": depth == 0,
        "feed_url": doc.subscription_url,
        "format_label": format_label(doc.format),
        "media_type": FORMATS[doc.format].media_type,
        # Every format, this one included, for the head's autodiscovery links and the list of
        # formats; absolute, like the feed's own address, so a copied link works anywhere.
        "formats": [
            {
                "name": name,
                "label": format_label(name),
                "media_type": fmt.media_type,
                "href": folder_url + fmt.filename,
                "current": name == doc.format,
            }
            for name, fmt in FORMATS.items()
        ],
        "index_href": "../" * depth + "index.html",
        "items": [_item(article, zone) for article in doc.items],
    }
    return render_page(FEED_PAGE_TEMPLATE, context, templates_dir=doc.templates_dir)


def _item(article: Article, zone: ZoneInfo) -> dict[str, str]:
    published = local_time(article.published, zone)
    return {
        "title": article.title,
        # Only a web address becomes a link (an upstream feed's "javascript:" URL does not).
        "url": article.url if article.url.lower().startswith(("https://", "http://")) else "",
        "date_iso": html_datetime(published),
        "date_text": day_text(published),
        "summary": " ".join(article.summary.split()),
    }
