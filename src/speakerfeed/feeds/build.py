"""Build the feeds: read every source, collect, plan the documents, render what changed, write.

A Builder keeps its cache in memory between builds (for `serve` and the benchmark) and on disk
between runs (for the CLI), so a rebuild after one article changed parses one file and renders only
the documents that contain it.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter
from pathlib import Path

from speakerfeed.config import Settings
from speakerfeed.feeds.plan import FeedSet, feed_sets, plan_documents
from speakerfeed.feeds.workers import render_in_workers
from speakerfeed.output import write_if_changed
from speakerfeed.render.feeds import FeedDocument, FeedMeta
from speakerfeed.render.pages import FeedSetLink, render_feeds_index
from speakerfeed.sources.cache import ArticleCache, WrittenFile, save_cache
from speakerfeed.sources.collect import Clock, system_clock
from speakerfeed.sources.read import ArticleReader, ProgressCallback, ReadReport
from speakerfeed.wording import counted

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BuildReport(ReadReport):
    documents: int = 0
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{counted(self.articles, 'article')} ({counted(self.files, 'file')}, "
            f"{self.parsed} parsed, {self.upstream_articles} from upstream feeds, "
            f"{counted(self.drafts, 'draft')} and {len(self.embargoed)} embargoed left out); "
            f"{counted(self.documents, 'document')}, {len(self.written)} written, "
            f"{len(self.removed)} removed, {counted(len(self.problems), 'problem')}; "
            f"{self.seconds:.2f} s"
        )


def document_fingerprint(doc: FeedDocument) -> str:
    """Changes whenever the rendered bytes could: the document's own fields and its items'."""
    own = (
        doc.format,
        doc.path,
        _meta_digest(doc.meta),
        doc.self_url,
        doc.subscription_url,
        doc.prev_archive_url or "",
        doc.next_archive_url or "",
        str(doc.archive),
        str(doc.full_content),
        doc.page_version,
    )
    text = "\x00".join(own) + "".join(map(_FINGERPRINT, doc.items))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


_FINGERPRINT = attrgetter("fingerprint")


def feed_set_fingerprint(feed_set: FeedSet) -> str:
    text = f"{feed_set.folder}\x00{feed_set.title}\x00{feed_set.meta_id}\x00"
    text += "".join(map(_FINGERPRINT, feed_set.articles))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@lru_cache(maxsize=1024)
def _meta_digest(meta: FeedMeta) -> str:
    return hashlib.blake2b(repr(meta).encode(), digest_size=16).hexdigest()


class Builder:
    def __init__(
        self,
        settings: Settings,
        *,
        fetch_upstreams: bool = True,
        progress: ProgressCallback | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.settings = settings
        self.clock = clock  # what is embargoed: articles dated after the build's time
        self.reader = ArticleReader(settings, fetch_upstreams=fetch_upstreams, progress=progress)
        self.output_dir = settings.output_dir
        self._output_prefix = str(self.output_dir)
        # Outputs this Builder has written or checked on disk: a warm rebuild (serve) trusts its
        # own record of them instead of stat-ing thousands of unchanged files again.
        self._verified: set[str] = set()
        # Feed set folder -> (fingerprint of its articles, its documents' paths) as last written.
        self._written_sets: dict[str, tuple[str, tuple[str, ...]]] = {}

    def build(self) -> BuildReport:
        with _collector_paused():
            return self._build()

    def _build(self) -> BuildReport:
        started = time.perf_counter()
        report = BuildReport()
        # Embargoed articles are left out before any feed set, archive page or index is planned,
        # and the plan's fingerprints are of the visible articles only: when an embargo ends the
        # feed sets differ, so nothing cached can hold the article back (or leak it early).
        articles = self.reader.read(report, self.clock())
        cache = self.reader.cache
        sets = feed_sets(self.settings, articles)
        documents, wanted = self._plan(sets)
        report.documents = len(documents) + len(wanted)
        self._write_documents(documents, cache, report, wanted)
        self._write_pages(sets, cache, report, wanted)
        self._remove_stale(cache, report, wanted)
        save_cache(self.reader.cache_path, cache)
        report.seconds = time.perf_counter() - started
        log.info("build: %s", report.summary())
        return report

    def _plan(self, sets: list[FeedSet]) -> tuple[list[FeedDocument], set[str]]:
        """The documents of every feed set that may have changed, and the paths of those that
        cannot have: a feed set whose articles are all as this Builder last wrote them."""
        documents: list[FeedDocument] = []
        unchanged: set[str] = set()
        for feed_set in sets:
            fingerprint = feed_set_fingerprint(feed_set)
            known = self._written_sets.get(feed_set.folder)
            if (
                known is not None
                and known[0] == fingerprint
                and self._verified.issuperset(known[1])
            ):
                unchanged.update(known[1])
                continue
            planned = plan_documents(self.settings, [feed_set])
            self._written_sets[feed_set.folder] = (fingerprint, tuple(d.path for d in planned))
            documents.extend(planned)
        return documents, unchanged

    def _write_documents(
        self,
        documents: list[FeedDocument],
        cache: ArticleCache,
        report: BuildReport,
        wanted: set[str],
    ) -> None:
        stale: list[FeedDocument] = []
        fingerprints: dict[str, str] = {}
        for doc in documents:
            wanted.add(doc.path)
            fingerprint = fingerprints[doc.path] = document_fingerprint(doc)
            if not self._is_current(doc.path, fingerprint, cache):
                stale.append(doc)
        progress = self.reader.phase("writing feeds")
        for record in render_in_workers(stale, self.output_dir, progress):
            if record.written:
                report.written.append(record.path)
            cache.record_output(
                record.path, WrittenFile(fingerprints[record.path], record.size, record.mtime_ns)
            )
            self._verified.add(record.path)

    def _write_pages(
        self, sets: list[FeedSet], cache: ArticleCache, report: BuildReport, wanted: set[str]
    ) -> None:
        links = [FeedSetLink(title=s.title, path=s.folder) for s in sets]
        pages = {"index.html": render_feeds_index(self.settings, links)}
        for name, data in pages.items():
            wanted.add(name)
            fingerprint = hashlib.blake2b(data, digest_size=16).hexdigest()
            if not self._is_current(name, fingerprint, cache):
                self._write(name, fingerprint, data, cache, report)

    def _is_current(self, relative: str, fingerprint: str, cache: ArticleCache) -> bool:
        record = cache.outputs.get(relative)
        if record is None or record.fingerprint != fingerprint:
            return False
        if relative in self._verified:
            return True
        try:
            # os.path, not Path: this runs for thousands of files on every rebuild.
            stat = os.stat(os.path.join(self._output_prefix, relative))  # noqa: PTH116, PTH118
        except FileNotFoundError:
            return False
        # Someone else changed or replaced the file: render it again.
        current = stat.st_size == record.size and stat.st_mtime_ns == record.mtime_ns
        if current:
            self._verified.add(relative)
        return current

    def _write(
        self, relative: str, fingerprint: str, data: bytes, cache: ArticleCache, report: BuildReport
    ) -> None:
        path = self.output_dir / relative
        if write_if_changed(path, data):
            report.written.append(relative)
        stat = path.stat()
        cache.record_output(relative, WrittenFile(fingerprint, stat.st_size, stat.st_mtime_ns))
        self._verified.add(relative)

    def _remove_stale(self, cache: ArticleCache, report: BuildReport, wanted: set[str]) -> None:
        """Delete files an earlier build wrote that no longer belong (e.g. a tag that is gone)."""
        for relative in sorted(set(cache.outputs) - wanted):
            (self.output_dir / relative).unlink(missing_ok=True)
            _prune_empty_parents(self.output_dir / relative, self.output_dir)
            cache.record_output(relative, None)
            self._verified.discard(relative)
            report.removed.append(relative)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A build allocates many short-lived, acyclic objects over a large heap of cached articles:
    the cyclic garbage collector would rescan that heap again and again for nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _prune_empty_parents(path: Path, root: Path) -> None:
    parent = path.parent
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent
