"""The incremental-build cache: parsed articles keyed by path and content hash, and the manifest of
output files written, so that a rebuild parses and renders only what changed.

It is a pickle in var/cache (our own file, never shared), thrown away whole when speakerfeed's
version or the settings that shape an article change.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from speakerfeed import __version__
from speakerfeed.errors import Problem
from speakerfeed.models import Article

log = logging.getLogger(__name__)
CACHE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class CachedArticle:
    digest: str
    article: Article | None
    problem: Problem | None

    @classmethod
    def failed(cls, problem: Problem) -> CachedArticle:
        return cls("", None, problem)


@dataclass(frozen=True, slots=True)
class WrittenFile:
    fingerprint: str  # of the inputs the document was rendered from
    size: int
    mtime_ns: int


@dataclass(slots=True)
class ArticleCache:
    key: str  # speakerfeed version + settings that shape articles and documents
    entries: dict[str, tuple[int, int, CachedArticle]] = field(default_factory=dict)
    outputs: dict[str, WrittenFile] = field(default_factory=dict)
    dirty: bool = False

    def by_stat(self, path: str, mtime_ns: int, size: int) -> CachedArticle | None:
        entry = self.entries.get(path)
        if entry is not None and entry[0] == mtime_ns and entry[1] == size:
            return entry[2]
        return None

    def by_digest(self, path: str, digest: str) -> CachedArticle | None:
        entry = self.entries.get(path)
        if entry is not None and entry[2].digest == digest:
            return entry[2]
        return None

    def store(self, path: str, mtime_ns: int, size: int, cached: CachedArticle) -> None:
        self.entries[path] = (mtime_ns, size, cached)
        self.dirty = True

    def forget_except(self, paths: set[str]) -> None:
        for gone in set(self.entries) - paths:
            del self.entries[gone]
            self.dirty = True


def cache_key(*parts: object) -> str:
    text = repr((CACHE_FORMAT, __version__, *parts))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def load_cache(path: Path, key: str) -> ArticleCache:
    try:
        with path.open("rb") as handle:
            cache = pickle.load(handle)  # noqa: S301 - our own file in our own cache folder
    except FileNotFoundError:
        return ArticleCache(key)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError) as exc:
        log.warning("ignoring unreadable build cache %s (%s): rebuilding everything", path, exc)
        return ArticleCache(key)
    if not isinstance(cache, ArticleCache) or cache.key != key:
        return ArticleCache(key)
    cache.dirty = False
    return cache


def save_cache(path: Path, cache: ArticleCache) -> None:
    if not cache.dirty:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".cache-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(cache, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    cache.dirty = False
