"""The data that flows through speakerfeed. Depends on nothing of ours."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    alt: str


@dataclass(frozen=True, slots=True)
class Article:
    """One article, whatever it was read from.

    ``id`` is the permanent identity used in feeds (RSS guid, Atom id, JSON Feed id): it never
    depends on the title or the URL slug, so editing either does not make readers see a new item.
    """

    id: str
    title: str
    url: str
    published: datetime  # always time-zone aware
    content_html: str
    summary: str  # plain text
    source: str  # where it came from, for messages: a path relative to the project, or an upstream
    slug: str
    updated: datetime | None = None
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    image: Image | None = None
    draft: bool = False
    fingerprint: str = field(default="", compare=False)  # content hash; see collect.fingerprint

    @property
    def last_modified(self) -> datetime:
        return self.updated or self.published
