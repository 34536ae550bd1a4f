"""The upstream entry model: an entry as a feed gives it (RawEntry) and once checked (Entry).

Shared by the readers (``xmlfeed``, ``jsonfeed``), the checker (``upstream_parse``) and the state
file (``upstream_state``), with the two small text helpers they all use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


class UnreadableFeedError(Exception):
    """The body is not a feed we will read; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class RawEntry:
    """An entry as the feed gave it, before any checking: RSS, Atom and JSON Feed alike."""

    id: str
    title: str
    title_is_html: bool
    link: str
    published: datetime | None
    updated: datetime | None
    authors: list[str]
    tags: list[str]
    content_html: str
    summary_html: str
    image_url: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry as parsed and sanitised: what the state file keeps, so a 304 reuses it."""

    id: str
    title: str
    link: str
    published: datetime | None
    updated: datetime | None
    authors: tuple[str, ...]
    tags: tuple[str, ...]
    content_html: str  # sanitised
    summary: str  # plain text
    image_url: str  # "" when none


def as_str(value: Any) -> str:
    """``value`` if it is a string, else "": parsed feeds put anything anywhere."""
    return value if isinstance(value, str) else ""


def one_line(value: object) -> str:
    """``value`` as one short line for a problem message."""
    return " ".join(str(value).split())[:200] or type(value).__name__
