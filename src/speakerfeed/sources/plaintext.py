"""Plain-text articles as scraped from The Speaker's site.

The shape (see articles/000_d49d9c5f78f68bb1.txt)::

    The Speaker                                   publication name (optional)
    Wednesday, 29 November 2023 – 13:06           date line, local time of the publication
                                                  blank lines
    What is happening in Kazakhstan?              headline
    Paragraph.                                    one paragraph per non-empty line
    What has caused the unrest?                   a short stand-alone line becomes a subheading
    ...
    Skip to content                               site chrome at either end is dropped

Text is kept exactly as written (curly quotes, en dashes); only HTML-special characters are escaped.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import PurePosixPath
from typing import ClassVar

from slugify import slugify

from speakerfeed.errors import ArticleError
from speakerfeed.models import Article
from speakerfeed.sources.base import (
    ReaderContext,
    shown,
    stable_id,
    summarize,
)

_MONTHS = {name: number for number, name in enumerate(calendar.month_name) if name}
_DAYS = tuple(calendar.day_name)
DATE_LINE = re.compile(
    r"^(?:(?P<weekday>" + "|".join(_DAYS) + r"),?\s+)?"
    r"(?P<day>\d{1,2})\s+(?P<month>" + "|".join(_MONTHS) + r")\s+(?P<year>\d{4})"
    r"(?:\s*[–—-]\s*|,?\s+)(?P<hour>\d{1,2}):(?P<minute>\d{2})$"
)

# Line breaks as an editor counts them, so that an error's line number is one the editor shows:
# str.splitlines() also breaks at U+2028, U+0085 and others, which editors show inside a line.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

# A subheading is a short stand-alone line that does not end like a sentence. A question mark or an
# exclamation mark is allowed: "What has caused the unrest?" is a heading in the seed article.
HEADING_MAX_CHARS = 90
HEADING_MAX_WORDS = 12
_SENTENCE_ENDINGS = (".", ",", ";", ":", "…", "”", '"', "’", "'", ")", "]")


@dataclass(frozen=True, slots=True)
class Block:
    """One line of body text: a paragraph or a subheading."""

    text: str
    heading: bool


@dataclass(frozen=True, slots=True)
class ParsedText:
    publication: str | None
    published: datetime
    title: str
    blocks: tuple[Block, ...]


def looks_like_heading(line: str, *, is_last: bool) -> bool:
    if is_last or len(line) > HEADING_MAX_CHARS or len(line.split()) > HEADING_MAX_WORDS:
        return False
    return not line.endswith(_SENTENCE_ENDINGS) and line[0] not in "“‘\"'—–-•*"


def parse_date_line(line: str, context: ReaderContext, path: str, number: int) -> datetime:
    match = DATE_LINE.match(line)
    if match is None:
        raise ArticleError(
            path,
            f"expected a date line like 'Wednesday, 29 November 2023 – 13:06', found {shown(line)}",
            number,
        )
    fields = match.groupdict()
    try:
        when = datetime(
            int(fields["year"]),
            _MONTHS[fields["month"]],
            int(fields["day"]),
            int(fields["hour"]),
            int(fields["minute"]),
            tzinfo=context.site.zone,
        )
    except ValueError as exc:
        raise ArticleError(path, f"impossible date in {shown(line)}: {exc}", number) from None
    weekday = fields["weekday"]
    if weekday and weekday != _DAYS[when.weekday()]:
        raise ArticleError(
            path,
            f"the date line says {weekday} but {when:%-d %B %Y} is a {_DAYS[when.weekday()]}",
            number,
        )
    return when


def parse_text(text: str, path: str, context: ReaderContext) -> ParsedText:
    """Split the scraped text into its parts; raises ArticleError naming the line when it can't."""
    chrome = set(context.chrome_lines)
    # (line number, stripped text) of every non-empty line, with the number of blank lines before it
    lines: list[tuple[int, str, int]] = []
    blanks = 0
    # A byte order mark is no part of the first line (it would hide a chrome or date line).
    text = text.removeprefix("\ufeff")
    for number, raw in enumerate(_LINE_BREAK.split(text), start=1):
        stripped = raw.strip()
        if not stripped:
            blanks += 1
            continue
        lines.append((number, stripped, blanks))
        blanks = 0
    while lines and lines[0][1] in chrome:
        lines.pop(0)
    while lines and lines[-1][1] in chrome:
        lines.pop()
    if not lines:
        raise ArticleError(path, "the file is empty: expected a date line, a headline and text")

    publication: str | None = None
    position = 0
    if not DATE_LINE.match(lines[0][1]):
        # The first line names the publication; the date line must come next.
        publication = lines[0][1]
        position = 1
        if len(lines) < 2:
            raise ArticleError(path, "expected a date line after the publication name", lines[0][0])
    number, line, _ = lines[position]
    published = parse_date_line(line, context, path, number)
    position += 1
    if position >= len(lines):
        raise ArticleError(path, "expected a headline after the date line", number)
    title = lines[position][1]
    body = lines[position + 1 :]
    if not body:
        raise ArticleError(
            path, "expected the article's text after the headline", lines[position][0]
        )
    blocks = tuple(
        Block(line, looks_like_heading(line, is_last=index == len(body) - 1))
        for index, (_, line, _) in enumerate(body)
    )
    return ParsedText(publication, published, title, blocks)


def blocks_to_html(blocks: tuple[Block, ...]) -> str:
    return "\n".join(
        f"<h2>{escape(block.text, quote=False)}</h2>"
        if block.heading
        else f"<p>{escape(block.text, quote=False)}</p>"
        for block in blocks
    )


class PlainTextReader:
    extensions: ClassVar[tuple[str, ...]] = (".txt",)

    def read(self, relative_path: str, text: str, context: ReaderContext) -> Article:
        parsed = parse_text(text, relative_path, context)
        first_paragraph = next((b.text for b in parsed.blocks if not b.heading), parsed.title)
        slug = slugify(parsed.title) or slugify(PurePosixPath(relative_path).stem) or "article"
        key = str(PurePosixPath(relative_path).with_suffix(""))
        return Article(
            id=stable_id(context.site, parsed.published, key),
            title=parsed.title,
            url=context.site.article_url(slug),
            published=parsed.published,
            content_html=blocks_to_html(parsed.blocks),
            summary=summarize(first_paragraph),
            source=relative_path,
            slug=slug,
            authors=(context.site.author,),
        )
