"""Articles from upstream feeds (RSS, Atom, JSON Feed): fetch each, turn its entries into Articles.

Everything fetched is untrusted input. The bytes come from ``safe_http``; ``upstream_parse`` reads
them (through ``xmlfeed`` or ``jsonfeed``) and checks and sanitises every entry; ``upstream_state``
keeps each upstream's validators and last good entries, so a 304 or a failure still serves them,
and the time each entry was first seen, which dates undated entries the same way on every run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from slugify import slugify

from speakerfeed.config import FetchSettings, Settings, UpstreamSettings
from speakerfeed.errors import FetchError, Problem
from speakerfeed.models import Article, Image
from speakerfeed.sources import safe_http
from speakerfeed.sources.upstream_entry import Entry, UnreadableFeedError
from speakerfeed.sources.upstream_parse import parse_feed
from speakerfeed.sources.upstream_state import UpstreamState, load_state, save_state


@dataclass(frozen=True, slots=True)
class UpstreamResult:
    articles: list[Article]
    problems: list[Problem]


def refresh_upstreams(settings: Settings, state_path: Path, now: datetime) -> UpstreamResult:
    """Fetch every configured upstream; a failing one is reported and its last good copy served."""
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    now = now.astimezone(UTC)
    states, problems = load_state(state_path)
    articles: list[Article] = []
    kept: dict[str, UpstreamState] = {}
    for upstream in settings.upstream:
        old = states.get(upstream.name, UpstreamState())
        state, upstream_problems = _refresh(upstream, settings.fetch, old, now)
        kept[upstream.name] = state
        problems += upstream_problems
        articles += upstream_articles(upstream, state, now)
    try:
        save_state(state_path, kept)
    except OSError as exc:
        problems.append(Problem(str(state_path), f"cannot save upstream state: {exc.strerror}"))
    return UpstreamResult(articles, problems)


def _refresh(
    upstream: UpstreamSettings, fetch_settings: FetchSettings, old: UpstreamState, now: datetime
) -> tuple[UpstreamState, list[Problem]]:
    label = f"upstream {upstream.name!r}"
    same_url = old.url == upstream.url
    try:
        result = safe_http.fetch(
            upstream.url,
            fetch_settings,
            etag=old.etag if same_url else None,
            last_modified=old.last_modified if same_url else None,
        )
        if result.status == 304:
            return old, []
        entries, skipped = parse_feed(result.body, result.content_type, result.final_url)
    except (FetchError, UnreadableFeedError) as exc:
        # Keep the old state whole: saving new validators would turn the next fetch into a 304
        # and hide the failure.
        count = min(len(old.entries), upstream.max_items)
        fallback = (
            f"serving {count} {'article' if count == 1 else 'articles'} from the last good fetch"
            if count
            else "no earlier articles to serve"
        )
        return old, [Problem(upstream.name, f"{label}: {exc}; {fallback}")]
    first_seen = {e.id: old.first_seen.get(e.id, now) for e in entries}
    state = UpstreamState(upstream.url, result.etag, result.last_modified, entries, first_seen)
    return state, [Problem(upstream.name, f"{label}: {why}", warning=True) for why in skipped]


def upstream_articles(
    upstream: UpstreamSettings, state: UpstreamState, now: datetime
) -> list[Article]:
    """The upstream's newest ``max_items`` entries as Articles."""
    articles = [_article(e, upstream, state.first_seen.get(e.id, now)) for e in state.entries]
    articles.sort(key=lambda a: (a.published, a.id), reverse=True)
    return articles[: upstream.max_items]


def _article(entry: Entry, upstream: UpstreamSettings, first_seen: datetime) -> Article:
    published = entry.published or entry.updated or first_seen
    updated = entry.updated if entry.updated and entry.updated != published else None
    slug = slugify(entry.title, max_length=80) or "item-" + _digest(entry.id)
    return Article(
        id=entry.id,
        title=entry.title,
        url=entry.link,
        published=published,
        content_html=entry.content_html,
        summary=entry.summary,
        source=f"upstream:{upstream.name}",
        slug=slug,
        updated=updated,
        authors=entry.authors,
        tags=tuple(dict.fromkeys([*entry.tags, *upstream.tags])),
        image=Image(entry.image_url, entry.title) if entry.image_url else None,
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
