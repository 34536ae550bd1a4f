"""Which feed documents a build writes: a main feed and one per tag, each in every format, each a
subscription document with the newest items plus RFC 5005 archive documents for the rest, and
beside each subscription document the HTML page a browser is shown for it (render.feed_pages).

Archive pages are full, fixed-size slices counted from the oldest article, so a page never changes
when new articles arrive (RFC 5005 asks that archives stay stable): caches and readers keep them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from slugify import slugify as _slugify

from speakerfeed.config import Settings
from speakerfeed.models import Article
from speakerfeed.render.feed_pages import feed_page_version
from speakerfeed.render.feeds import FORMATS, FeedDocument, FeedMeta
from speakerfeed.render.pages import favicon_data_url, signup_url_for


@dataclass(frozen=True, slots=True)
class FeedSet:
    """One feed (main or a tag) in all formats: its folder, its title and its articles."""

    folder: str  # "" for the main feed, "tags/<slug>/" for a tag
    title: str
    meta_id: str
    articles: tuple[Article, ...]  # newest first


@lru_cache(maxsize=4096)
def tag_slug(tag: str) -> str:
    return str(_slugify(tag))


def feed_sets(settings: Settings, articles: Sequence[Article]) -> list[FeedSet]:
    site = settings.site
    host = urlsplit(site.url).hostname or "localhost"
    sets = [FeedSet("", site.title, f"tag:{host},2023:feeds/main", tuple(articles))]
    if not settings.feeds.tag_feeds:
        return sets
    by_slug: dict[str, tuple[str, list[Article]]] = {}
    for article in articles:
        for tag in article.tags:
            slug = tag_slug(tag)
            if slug:
                by_slug.setdefault(slug, (tag, []))[1].append(article)
    for slug in sorted(by_slug):
        tag, tagged = by_slug[slug]
        sets.append(
            FeedSet(
                f"tags/{slug}/",
                f"{site.title}: {tag}",
                f"tag:{host},2023:feeds/tags/{slug}",
                tuple(tagged),
            )
        )
    return sets


def plan_documents(settings: Settings, sets: Sequence[FeedSet]) -> list[FeedDocument]:
    documents: list[FeedDocument] = []
    page_version = feed_page_version(settings.templates_dir)
    for feed_set in sets:
        for format_name in FORMATS:
            documents.extend(_documents_for(settings, feed_set, format_name, page_version))
    return documents


def _documents_for(
    settings: Settings, feed_set: FeedSet, format_name: str, page_version: str
) -> list[FeedDocument]:
    feeds = settings.feeds
    fmt = FORMATS[format_name]
    base = feeds.base_url + feed_set.folder
    meta = FeedMeta(
        id=feed_set.meta_id,
        title=feed_set.title,
        description=settings.site.description,
        home_url=settings.site.url + "/",
        language=settings.site.language,
        author=settings.site.author,
        author_email=settings.site.author_email,
        hub=feeds.websub_hub,
        site_title=settings.site.title,
        timezone=settings.site.timezone,
        signup_url=signup_url_for(settings, in_app=False),
        archive=bool(settings.lists),
        favicon=favicon_data_url(settings),
    )
    oldest_first = feed_set.articles[::-1]
    # Archive pages hold as many items as the subscription document, so the items not yet on a
    # full page (fewer than `size`) are always among the newest `size`: nothing falls in a gap.
    size = feeds.items
    pages = max(0, (len(oldest_first) - 1) // size)

    def archive_path(page: int) -> str:
        return f"{feed_set.folder}archive/{format_name}/{page}{fmt.extension}"

    subscription_path = feed_set.folder + fmt.filename
    subscription_url = base + fmt.filename
    page_path = feed_set.folder + fmt.page
    documents = [
        FeedDocument(
            format=format_name,
            path=subscription_path,
            meta=meta,
            items=feed_set.articles[: feeds.items],
            self_url=subscription_url,
            subscription_url=subscription_url,
            prev_archive_url=feeds.base_url + archive_path(pages) if pages else None,
            full_content=feeds.full_content,
        ),
        FeedDocument(
            format=format_name,
            path=page_path,
            meta=meta,
            items=feed_set.articles[: feeds.items],
            self_url=base + fmt.page,
            subscription_url=subscription_url,
            page_version=page_version,
            templates_dir=settings.templates_dir,
        ),
    ]
    for page in range(1, pages + 1):
        path = archive_path(page)
        documents.append(
            FeedDocument(
                format=format_name,
                path=path,
                meta=meta,
                items=oldest_first[(page - 1) * size : page * size][::-1],
                self_url=feeds.base_url + path,
                subscription_url=subscription_url,
                prev_archive_url=feeds.base_url + archive_path(page - 1) if page > 1 else None,
                next_archive_url=feeds.base_url + archive_path(page + 1) if page < pages else None,
                archive=True,
                full_content=feeds.full_content,
            )
        )
    return documents
