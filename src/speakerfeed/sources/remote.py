"""Articles from upstream feeds (RSS, Atom, JSON Feed): fetch each, turn its entries into Articles.

Everything fetched is untrusted input. The bytes come from ``safe_http``; ``upstream_parse`` reads
them (through ``xmlfeed`` or ``jsonfeed``) and checks and sanitises every entry; ``upstream_state``
keeps each upstream's validators and last good entries, so a 304 or a failure still serves them,
and the time each entry was first seen, which dates undated entries the same way on every run.

Upstreams are fetched concurrently, at most ``fetch.max_in_flight`` at once, each under its own
wall-clock deadline, so a slow host holds up only its own slot; they are then parsed and reported
in the configured order, so a build's output does not depend on which answered first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from slugify import slugify

from speakerfeed.config import FetchSettings, Settings, UpstreamSettings
from speakerfeed.errors import FetchError, Problem
from speakerfeed.models import Article, Image
from speakerfeed.sources import safe_http
from speakerfeed.sources.folder import article_fingerprint
from speakerfeed.sources.upstream_dates import sane_dates
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
    olds = [states.get(upstream.name, UpstreamState()) for upstream in settings.upstream]
    fetched = fetch_all(settings.upstream, olds, settings.fetch)
    for upstream, old, outcome in zip(settings.upstream, olds, fetched, strict=True):
        state, upstream_problems = _refresh(upstream, settings.fetch, old, outcome, now)
        state = _with_sane_dates(upstream, state, now)
        kept[upstream.name] = state
        problems += upstream_problems
        problems += [Problem(upstream.name, line, warning=True) for line in state.bad_dates]
        articles += upstream_articles(upstream, state, now)
    try:
        save_state(state_path, kept)
    except OSError as exc:
        problems.append(Problem(str(state_path), f"cannot save upstream state: {exc.strerror}"))
    return UpstreamResult(articles, problems)


def fetch_all(
    upstreams: Sequence[UpstreamSettings],
    olds: Sequence[UpstreamState],
    settings: FetchSettings,
) -> list[safe_http.FetchResult | FetchError]:
    """Each upstream's response or fetch error, in the order given, fetched concurrently.

    At most ``settings.max_in_flight`` fetches run at once, each ending by its own deadline.
    """
    if not upstreams:
        return []

    def one(upstream: UpstreamSettings, old: UpstreamState) -> safe_http.FetchResult | FetchError:
        same_url = old.url == upstream.url
        try:
            return safe_http.fetch(
                upstream.url,
                settings,
                etag=old.etag if same_url else None,
                last_modified=old.last_modified if same_url else None,
            )
        except FetchError as exc:
            return exc

    workers = min(settings.max_in_flight, len(upstreams))
    with ThreadPoolExecutor(workers, thread_name_prefix="upstream-fetch") as pool:
        return list(pool.map(one, upstreams, olds))


def _refresh(
    upstream: UpstreamSettings,
    fetch_settings: FetchSettings,
    old: UpstreamState,
    result: safe_http.FetchResult | FetchError,
    now: datetime,
) -> tuple[UpstreamState, list[Problem]]:
    if isinstance(result, FetchError):
        return old, [_failure(upstream, old, result)]
    if result.status == 304:
        return old, []
    try:
        entries, skipped = parse_feed(
            result.body, result.content_type, result.final_url, max_chars=fetch_settings.max_bytes
        )
    except UnreadableFeedError as exc:
        return old, [_failure(upstream, old, exc)]
    first_seen = {e.id: old.first_seen.get(e.id, now) for e in entries}
    state = UpstreamState(upstream.url, result.etag, result.last_modified, entries, first_seen)
    label = f"upstream {upstream.name!r}"
    return state, [Problem(upstream.name, f"{label}: {why}", warning=True) for why in skipped]


def _with_sane_dates(
    upstream: UpstreamSettings, state: UpstreamState, now: datetime
) -> UpstreamState:
    # Every state, a 304's and a failure's too: one saved before dates were checked is fixed.
    entries, reasons = sane_dates(state.entries, state.first_seen, now)
    if not reasons:
        return state
    where = f"upstream {upstream.name!r} ({upstream.url})"
    notes = [*state.bad_dates, *(f"{where}: {why}" for why in reasons)]
    return replace(state, entries=entries, bad_dates=notes)


def _failure(upstream: UpstreamSettings, old: UpstreamState, error: Exception) -> Problem:
    # The caller keeps the old state whole: saving new validators would turn the next fetch
    # into a 304 and hide the failure.
    count = min(len(old.entries), upstream.max_items)
    fallback = (
        f"serving {count} {'article' if count == 1 else 'articles'} from the last good fetch"
        if count
        else "no earlier articles to serve"
    )
    return Problem(upstream.name, f"upstream {upstream.name!r}: {error}; {fallback}")


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
    article = Article(
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
    # The renderer's entry cache and the incremental build key on this: without it every
    # upstream article would share one (empty) fingerprint and be rendered as the first one.
    return replace(article, fingerprint=article_fingerprint(article))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
