"""What every article source shares: the reader interface, the registry and small helpers.

A file reader is small (Pelican's readers are the model): the extensions it handles and a pure
``read`` from text to an Article. Only the folder walker touches the disk.
"""

from __future__ import annotations

import html
import re
import reprlib
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol
from urllib.parse import urlsplit

import nh3

from speakerfeed.config import SiteSettings
from speakerfeed.models import Article

SUMMARY_LIMIT = 300
# Characters XML 1.0 forbids (C0 controls but tab, LF and CR; surrogates; U+FFFE, U+FFFF): a feed
# holding one is not well-formed, so they are removed from everything read.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class ReaderContext:
    site: SiteSettings
    chrome_lines: tuple[str, ...] = ("Skip to content",)


class ArticleReader(Protocol):
    """Turns one file's text into an Article, or raises ArticleError naming the line."""

    extensions: ClassVar[tuple[str, ...]]

    def read(self, relative_path: str, text: str, context: ReaderContext) -> Article: ...


def xml_safe(text: str) -> str:
    return _XML_ILLEGAL.sub("", text)


# Values quoted in error messages: a scraped line can be a megabyte long, and a YAML alias bomb
# a structure of millions of items (it shares its parts, so only printing it in full is costly).
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxstring, _SHOWN.maxother = 2, 4, 80, 80
SHOWN_MAX_CHARS = 100


def shown(value: object) -> str:
    """``value`` for an error message: its repr (so control characters show), cut short."""
    text = _SHOWN.repr(value)
    return text if len(text) <= SHOWN_MAX_CHARS else text[: SHOWN_MAX_CHARS - 3] + "..."


def stable_id(site: SiteSettings, published: datetime, key: str) -> str:
    """An RFC 4151 tag URI that survives title and slug edits: it uses the file's path, not either.

    An editor who renames a file and wants to keep the id sets ``id:`` in the front matter.
    """
    host = urlsplit(site.url).hostname or "localhost"
    return f"tag:{host},{published.date().isoformat()}:{key}"


def plain_text(fragment: str) -> str:
    """Text of an HTML fragment, whitespace collapsed."""
    return " ".join(html.unescape(nh3.clean(fragment, tags=set())).split())


def summarize(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """The text cut at a word boundary to at most ``limit`` characters, with an ellipsis if cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:–—-")
    return cut + "…"
