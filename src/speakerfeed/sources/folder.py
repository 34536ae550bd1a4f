"""The articles/ folder: find the files, pick a reader per extension, reuse the incremental cache.

Only this module reads article files. It never writes to articles/.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from speakerfeed.errors import ArticleError, Problem
from speakerfeed.forked import PARALLEL_MINIMUM, Progress, map_batches, worker_count
from speakerfeed.models import Article
from speakerfeed.sources.base import ArticleReader, ReaderContext, xml_safe
from speakerfeed.sources.cache import ArticleCache, CachedArticle
from speakerfeed.sources.markdown import MarkdownReader
from speakerfeed.sources.plaintext import PlainTextReader

READERS: tuple[ArticleReader, ...] = (MarkdownReader(), PlainTextReader())
_BY_EXTENSION = {ext: reader for reader in READERS for ext in reader.extensions}
SUPPORTED = ", ".join(sorted(_BY_EXTENSION))
# Files an editor keeps beside articles that are not articles and need no warning.
_QUIET_NAMES = ("readme", "license", ".")


@dataclass(slots=True)
class FolderResult:
    articles: list[Article] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    parsed: int = 0  # files actually parsed this time (the rest came from the cache)


def iter_files(root: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(path relative to root with / separators, entry) for every file, hidden ones skipped."""
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                relative = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, relative + "/"))
                elif entry.is_file() or entry.is_symlink():  # a broken link is reported
                    yield relative, entry


def _extension(name: str) -> str:
    return os.path.splitext(name)[1].lower()  # noqa: PTH122 - no Path per file on the hot path


def content_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def article_fingerprint(article: Article) -> str:
    """A hash of everything a feed shows of the article: equal fingerprints render equal bytes."""
    digest = hashlib.blake2b(digest_size=16)
    for name in _FINGERPRINTED:
        digest.update(repr(getattr(article, name)).encode())
        digest.update(b"\x00")
    digest.update(article.content_html.encode())
    return digest.hexdigest()


_FINGERPRINTED = tuple(
    f.name for f in fields(Article) if f.name not in ("fingerprint", "content_html")
)


def read_article(relative: str, data: bytes, context: ReaderContext) -> Article:
    reader = _BY_EXTENSION[_extension(relative)]
    # No text file holds a NUL byte, but UTF-16 or UTF-32 text without a byte order mark is valid
    # UTF-8 with a NUL beside every ASCII letter: the NULs would be dropped (xml_safe) and every
    # other character silently mangled.
    nul = data.find(0)
    if nul >= 0:
        raise ArticleError(
            relative,
            f"not UTF-8 text: a NUL byte at offset {nul} (UTF-16 or UTF-32? save it as UTF-8)",
            data[:nul].count(b"\n") + 1,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ArticleError(
            relative, f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}", line
        ) from None
    article = reader.read(relative, xml_safe(text), context)
    return replace(article, fingerprint=article_fingerprint(article))


@dataclass(frozen=True, slots=True)
class _Job:
    relative: str
    path: str
    mtime_ns: int
    size: int
    known_digest: str | None  # of the cached parse, so an untouched file is not parsed again


def read_folder(
    root: Path, context: ReaderContext, cache: ArticleCache, progress: Progress | None = None
) -> FolderResult:
    """Read every article under root, parsing only files whose content changed since last time."""
    result = FolderResult()
    if not root.is_dir():
        result.problems.append(Problem(str(root), "articles folder not found"))
        return result
    outcomes: dict[str, CachedArticle] = {}
    jobs: list[_Job] = []
    known_entries = cache.entries
    # This loop runs for every file on every rebuild: it only stats, and parses nothing.
    for relative, entry in iter_files(root):
        if _extension(entry.name) not in _BY_EXTENSION:
            if not entry.name.lower().startswith(_QUIET_NAMES):
                message = f"skipped: not an article (expected {SUPPORTED})"
                result.problems.append(Problem(relative, message, warning=True))
            continue
        try:
            stat = entry.stat()
        except OSError as exc:
            problem = Problem(relative, f"cannot read: {exc.strerror}")
            outcomes[relative] = CachedArticle.failed(problem)
            continue
        known = known_entries.get(relative)
        if known is not None and known[0] == stat.st_mtime_ns and known[1] == stat.st_size:
            outcomes[relative] = known[2]
            continue
        digest = known[2].digest if known else None
        jobs.append(_Job(relative, entry.path, stat.st_mtime_ns, stat.st_size, digest))
    result.files = len(outcomes) + len(jobs)
    result.problems.sort(key=lambda problem: problem.where)
    for job, (outcome, parsed) in zip(jobs, _run_jobs(jobs, context, progress), strict=True):
        # None: the file was touched but its bytes did not change, so the cached parse stands.
        cached = outcome or cache.entries[job.relative][2]
        result.parsed += parsed
        if cached.digest:  # a file that could not be read is tried again next time
            cache.store(job.relative, job.mtime_ns, job.size, cached)
        outcomes[job.relative] = cached
    for relative in sorted(outcomes):
        cached = outcomes[relative]
        if cached.article is not None:
            result.articles.append(cached.article)
        elif cached.problem is not None:
            result.problems.append(cached.problem)
    cache.forget_except(set(outcomes))
    return result


Outcome = tuple[CachedArticle | None, bool]  # (what the file holds or None if unchanged, parsed)


def _run_jobs(jobs: list[_Job], context: ReaderContext, progress: Progress | None) -> list[Outcome]:
    if len(jobs) < PARALLEL_MINIMUM:
        outcomes = _parse_batch(jobs, context)
        if progress is not None and jobs:
            progress(len(jobs), len(jobs))
        return outcomes
    size = max(50, len(jobs) // (worker_count() * 4))
    batches = [jobs[i : i + size] for i in range(0, len(jobs), size)]

    return map_batches(lambda batch: _parse_batch(batch, context), batches, progress)


def _parse_batch(jobs: list[_Job], context: ReaderContext) -> list[Outcome]:
    return [_parse_one(job, context) for job in jobs]


def _parse_one(job: _Job, context: ReaderContext) -> Outcome:
    try:
        data = Path(job.path).read_bytes()
    except OSError as exc:
        return CachedArticle.failed(Problem(job.relative, f"cannot read: {exc.strerror}")), False
    digest = content_digest(data)
    if digest == job.known_digest:
        return None, False
    try:
        return CachedArticle(digest, read_article(job.relative, data, context), None), True
    except ArticleError as exc:
        return CachedArticle(digest, None, exc.problem), True
