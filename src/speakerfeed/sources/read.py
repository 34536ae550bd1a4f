"""Every source of articles read and collected: the folder (through the incremental cache) and,
when asked, the upstream feeds. Nothing is written but the cache; the feeds pipeline and the
digest pipeline both start here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from speakerfeed.config import Settings
from speakerfeed.errors import Problem
from speakerfeed.models import Article
from speakerfeed.sources.base import ReaderContext
from speakerfeed.sources.cache import ArticleCache, cache_key, load_cache
from speakerfeed.sources.collect import collect
from speakerfeed.sources.folder import read_folder

# Called with (phase, items just finished, items in all) while reading, for a progress bar.
ProgressCallback = Callable[[str, int, int], None]


@dataclass(slots=True)
class ReadReport:
    files: int = 0
    parsed: int = 0
    articles: int = 0
    drafts: int = 0
    upstream_articles: int = 0
    problems: list[Problem] = field(default_factory=list)
    embargoed: list[Article] = field(default_factory=list)  # dated after the read's time

    @property
    def next_embargo(self) -> datetime | None:
        """When the soonest embargoed article becomes visible: a rebuild is due then."""
        return self.embargoed[0].published if self.embargoed else None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.warning]


def reader_context(settings: Settings) -> ReaderContext:
    return ReaderContext(site=settings.site, chrome_lines=settings.build.chrome_lines)


class ArticleReader:
    """Reads the sources; keeps the parsed-article cache in memory between reads (``serve``)
    and on disk between runs (the CLI)."""

    def __init__(
        self,
        settings: Settings,
        *,
        fetch_upstreams: bool = True,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.settings = settings
        self.fetch_upstreams = fetch_upstreams
        self.progress = progress
        self.context = reader_context(settings)
        self.cache_path = settings.cache_dir / "build.sqlite"
        self._cache: ArticleCache | None = None

    @property
    def cache(self) -> ArticleCache:
        if self._cache is None:
            key = cache_key(self.context, self.settings.feeds, str(self.settings.output_dir))
            self._cache = load_cache(self.cache_path, key)
        return self._cache

    def phase(self, name: str) -> Callable[[int, int], None] | None:
        callback = self.progress
        if callback is None:
            return None
        return lambda done, total: callback(name, done, total)

    def read(self, report: ReadReport, now: datetime | None = None) -> list[Article]:
        """Every source read and collected, newest first; what was found goes into ``report``.

        With ``now``, only the articles visible at that time: the others (dated later) are
        listed in ``report.embargoed`` instead."""
        folder = read_folder(
            self.settings.articles_dir, self.context, self.cache, self.phase("reading articles")
        )
        report.files, report.parsed = folder.files, folder.parsed
        report.problems.extend(folder.problems)
        upstream: list[Article] = []
        if self.fetch_upstreams and self.settings.upstream:
            from speakerfeed.sources.remote import refresh_upstreams

            fetched = refresh_upstreams(
                self.settings, self.settings.cache_dir / "upstream.json", now or datetime.now(UTC)
            )
            upstream = fetched.articles
            report.problems.extend(fetched.problems)
        collected = collect(folder.articles, upstream, now=now)
        report.problems.extend(collected.problems)
        report.embargoed = collected.embargoed
        report.drafts = collected.drafts
        report.articles = len(collected.articles)
        report.upstream_articles = sum(
            1 for a in collected.articles if a.source.startswith("upstream:")
        )
        return collected.articles


def read_articles(
    settings: Settings, *, fetch_upstreams: bool = True, now: datetime | None = None
) -> tuple[list[Article], ReadReport]:
    """Every article, and what went wrong reading them (what `check` and a digest read); with
    ``now``, those dated later are left out and listed in the report's ``embargoed``."""
    report = ReadReport()
    articles = ArticleReader(settings, fetch_upstreams=fetch_upstreams).read(report, now)
    return articles, report
