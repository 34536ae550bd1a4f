"""Markdown articles with YAML front matter, rendered by pulldown-cmark (Rust, through pyromark).

CommonMark with GitHub's tables and strikethrough. cmark-gfm (cmarkgfm) was measured first: as fast
as we need, but its Python binding never frees the rendered HTML nor the syntax tree (about 27 KB
leaked per article, 270 MB for a 10,000-article archive), while pyromark is ten times faster and
frees everything. Raw HTML in Markdown is allowed; like all article HTML it then passes through the
allow-list in speakerfeed.sources.sanitize.

::

    ---
    title: Budget 2023: what it means for students
    date: 2023-11-22 14:30          # time zone optional: the site's zone is assumed
    updated: 2023-11-23T09:00:00Z
    author: Jane Doe                # or a list
    tags: [politics, economy]
    summary: One or two sentences.  # else the first paragraph
    image: {url: https://…/a.jpg, alt: Describe the picture}
    slug: budget-2023               # else the file name
    draft: false
    canonical_url: https://…        # else site.url + site.article_path
    id: tag:…                       # pins the feed id, e.g. after renaming the file
    ---
    Body in Markdown.
"""

from __future__ import annotations

import difflib
import re
from datetime import date, datetime, time
from pathlib import PurePosixPath
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pyromark
import yaml
from slugify import slugify

from speakerfeed.errors import ArticleError
from speakerfeed.models import Article, Image
from speakerfeed.sources.base import (
    ReaderContext,
    plain_text,
    shown,
    stable_id,
    summarize,
    xml_safe,
)
from speakerfeed.sources.sanitize import clean_html

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}[-_]")
_KEYS = (
    "title",
    "date",
    "updated",
    "author",
    "tags",
    "summary",
    "image",
    "slug",
    "draft",
    "canonical_url",
    "id",
)
# No smart punctuation: the author's own typography is kept as typed.
_MARKDOWN_OPTIONS = pyromark.Options.ENABLE_TABLES | pyromark.Options.ENABLE_STRIKETHROUGH


class _Fields:
    """Typed access to front-matter values, raising ArticleError that names the key's line."""

    def __init__(self, data: dict[str, Any], text: str, path: str) -> None:
        self.data = data
        self.text = text
        self.path = path

    def line_of(self, key: str) -> int | None:
        # +1 for the opening "---"; only computed when there is something to report.
        for number, line in enumerate(self.text.splitlines(), start=2):
            if line.startswith(f"{key}:"):
                return number
        return None

    def fail(self, key: str, message: str) -> ArticleError:
        return ArticleError(self.path, f"front matter '{key}': {message}", self.line_of(key))

    def string(self, key: str, *, required: bool = False) -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                raise ArticleError(self.path, f"front matter: '{key}' is required", 1)
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key, f"expected text, got {type(value).__name__}")
        # A YAML escape ("\0", "\ud800") can make what xml_safe took out of the file's text.
        text = xml_safe(str(value)).strip()
        if required and not text:
            raise self.fail(key, "must not be empty")
        return text

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            items = [xml_safe(item).strip() for item in value.split(",")]
        elif isinstance(value, list) and all(isinstance(item, str | int) for item in value):
            items = [xml_safe(str(item)).strip() for item in value]
        else:
            raise self.fail(key, "expected text or a list of text")
        return tuple(dict.fromkeys(item for item in items if item))

    def flag(self, key: str) -> bool:
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {shown(value)}")
        return value

    def moment(self, key: str, zone: Any, *, required: bool = False) -> datetime | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise ArticleError(self.path, f"front matter: '{key}' is required", 1)
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                raise self.fail(
                    key,
                    "expected a date like 2023-11-29 13:06 or 2023-11-29T13:06:00Z, "
                    f"got {shown(value)}",
                ) from None
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=zone)
        if isinstance(value, date):
            return datetime.combine(value, time(), tzinfo=zone)
        raise self.fail(key, f"expected a date, got {shown(value)}")

    def url(self, key: str) -> str:
        value = self.string(key)
        if value and not _is_web_url(value):
            raise self.fail(key, f"expected an absolute http(s) URL, got {shown(value)}")
        return value

    def image(self) -> Image | None:
        value = self.data.get("image")
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) - {"url", "alt"}:
            raise self.fail("image", "expected {url: https://…, alt: text describing the image}")
        url = value.get("url")
        alt = value.get("alt")
        if not isinstance(url, str) or not _is_web_url(url):
            raise self.fail("image", f"expected an absolute http(s) url, got {shown(url)}")
        alt = xml_safe(alt).strip() if isinstance(alt, str) else ""
        if not alt:
            raise self.fail("image", "alt text is required: describe the image for screen readers")
        return Image(url=url, alt=alt)


def _is_web_url(value: str) -> bool:
    """An absolute http(s) URL with a host; urlsplit raises ValueError for some ("http://[::1")."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and xml_safe(value) == value


class _FrontMatterLoader(yaml.CSafeLoader):
    """YAML's safe loader, but dates stay text: `_Fields.moment` parses them, so an impossible date
    is reported against its key and line instead of failing inside the YAML library."""


_FrontMatterLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}


def split_front_matter(text: str, path: str) -> tuple[dict[str, Any], str, str]:
    """(front-matter mapping, its raw text, body) or ArticleError with the line of a YAML error."""
    if text.startswith("\ufeff"):
        text = text[1:]
    match = _FRONT_MATTER.match(text)
    if match is None:
        if text.startswith("---"):
            raise ArticleError(path, "front matter is not closed: expected a line with ---", 1)
        raise ArticleError(
            path, "expected front matter between --- lines at the top of the file", 1
        )
    raw = match.group(1)
    try:
        data = yaml.load(raw, Loader=_FrontMatterLoader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        message, line = _yaml_error_at(exc)
        raise ArticleError(path, f"front matter is not valid YAML: {message}", line) from None
    except yaml.reader.ReaderError as exc:  # a character YAML refuses, e.g. U+007F
        line = raw[: exc.position].count("\n") + 2
        raise ArticleError(
            path,
            f"front matter is not valid YAML: {exc.reason} ({shown(chr(exc.character))})",
            line,
        ) from None
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        # PyYAML's constructors fail this way on an explicit tag its value cannot hold
        # ("!!int abc", "!!bool maybe", "!!timestamp soon"); the tag's line is the likely place.
        tag = raw.find("!!")
        line = raw[:tag].count("\n") + 2 if tag >= 0 else 1
        raise ArticleError(
            path,
            f"front matter is not valid YAML: a value its tag cannot hold ({shown(exc)})",
            line,
        ) from None
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArticleError(path, f"front matter is not valid YAML: {problem}", 1) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ArticleError(path, "front matter must be a mapping of keys to values", 2)
    return data, raw, text[match.end() :]


# Contexts whose mark is where the broken construct starts (an opening quote, a key without its
# colon, an opening bracket): the scanner only notices at a later line, often the end of the front
# matter, so its problem mark points past the mistake. Other contexts ("while parsing a block
# mapping") mark the top of the mapping, and the problem mark is the better line there.
_STARTS_AT_CONTEXT = ("while scanning", "while parsing a flow")


def _yaml_error_at(exc: yaml.MarkedYAMLError) -> tuple[str, int | None]:
    """What is wrong and the file line it starts at (the front matter starts on line 2)."""
    mark = exc.problem_mark
    message = exc.problem or "cannot be read"
    context = exc.context or ""
    if exc.context_mark is not None and context.startswith(_STARTS_AT_CONTEXT):
        mark = exc.context_mark
        message = f"{message} ({context.removeprefix('while ')} that starts on this line)"
    return message, (mark.line + 2 if mark is not None else None)


def render_markdown(body: str, base_url: str) -> str:
    """Markdown to sanitised HTML; relative links resolve against the article's URL."""
    return clean_html(pyromark.html(body, options=_MARKDOWN_OPTIONS), base_url)


class MarkdownReader:
    extensions: ClassVar[tuple[str, ...]] = (".md", ".markdown")

    def read(self, relative_path: str, text: str, context: ReaderContext) -> Article:
        data, raw, body = split_front_matter(text, relative_path)
        fields = _Fields(data, raw, relative_path)
        unknown = [key for key in data if key not in _KEYS]
        if unknown:
            key = str(unknown[0])
            hint = difflib.get_close_matches(key, _KEYS, n=1)
            raise fields.fail(
                key,
                "unknown key"
                + (f"; did you mean '{hint[0]}'?" if hint else "")
                + f" (expected one of: {', '.join(_KEYS)})",
            )
        zone = context.site.zone
        title = fields.string("title", required=True)
        published = fields.moment("date", zone, required=True)
        assert published is not None
        updated = fields.moment("updated", zone)
        if updated is not None and updated < published:
            raise fields.fail("updated", "is earlier than 'date'")
        stem = PurePosixPath(relative_path).stem
        slug = fields.string("slug") or slugify(_DATE_PREFIX.sub("", stem)) or slugify(title)
        if slug != slugify(slug):
            raise fields.fail(
                "slug", f"expected lower-case letters, digits and dashes, e.g. {slugify(slug)!r}"
            )
        url = fields.url("canonical_url") or context.site.article_url(slug)
        content_html = render_markdown(body, url)
        summary = fields.string("summary") or summarize(_first_paragraph_text(content_html))
        key = str(PurePosixPath(relative_path).with_suffix(""))
        return Article(
            id=fields.string("id") or stable_id(context.site, published, key),
            title=title,
            url=url,
            published=published,
            updated=updated,
            content_html=content_html,
            summary=summary,
            source=relative_path,
            slug=slug,
            authors=fields.strings("author") or (context.site.author,),
            tags=fields.strings("tags"),
            image=fields.image(),
            draft=fields.flag("draft"),
        )


def _first_paragraph_text(content_html: str) -> str:
    start = content_html.find("<p>")
    if start < 0:
        return plain_text(content_html)
    end = content_html.find("</p>", start)
    return plain_text(content_html[start : end if end > 0 else None])
