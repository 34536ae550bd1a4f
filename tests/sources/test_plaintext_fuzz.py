"""Fuzz targets for the plain-text reader: whatever bytes a scraped page holds (cut short, in
another encoding, with NULs, bidi controls, odd line breaks or a megabyte on one line), reading it
either gives an article with sane values or an ArticleError naming the file and a line the editor
can find; never another exception.

Bounded in the test command (see tests/support/fuzz.py); SPEAKERFEED_FUZZ_EXAMPLES runs longer.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from lxml import html as lxml_html
from slugify import slugify

from speakerfeed.errors import ArticleError
from speakerfeed.models import Article
from speakerfeed.sources.base import SUMMARY_LIMIT, ReaderContext, xml_safe
from speakerfeed.sources.folder import read_article
from tests.support.fuzz import fuzzing, mutated
from tests.support.project import project_settings

ROOT = Path(__file__).resolve().parents[2]
SEED_PATHS = sorted((ROOT.parent / "shared" / "seeds").glob("*.txt")) or sorted(
    (ROOT / "articles").glob("*.txt")
)
SEEDS = [path.read_text(encoding="utf-8") for path in SEED_PATHS]
PATH = "articles/2023/messy page.txt"
# The publication's zone, and one east of UTC (+09:18 before 1888): a date at the very start of
# the calendar there has no UTC equivalent, and must not crash the reader.
CONTEXTS = [
    ReaderContext(site=project_settings().site),
    ReaderContext(site=project_settings(site={"timezone": "Asia/Tokyo"}).site),
]
MAX_MESSAGE = 400  # an error is read in a terminal: a huge line is shown cut short
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# What an editor counts as a line break (and what the reader's line numbers must agree with).
_EDITOR_LINES = re.compile(r"\r\n|\r|\n")

DATE_LINES = [
    "Wednesday, 29 November 2023 – 13:06",
    "29 November 2023, 13:06",
    "Monday, 1 January 0001 – 00:00",
    "Friday, 31 December 9999 – 23:59",
    "Saturday, 31 December 2039 – 12:00",
    "31 February 2023 – 10:00",
    "Tuesday, 29 November 2023 – 13:06",
    "29 November 2023 – 25:61",
    "Wednesday 29 November 2023 - 13:06",
]
ODD_TEXT = [
    "\x00",
    "\u202e",  # right-to-left override
    "\u2066\u2069",  # isolate marks
    "\u200f",
    "\ufeff",
    "\u2028",
    "\u2029",
    "\x85",
    "\x0c",
    "\x1c",
    "\r",
    "\r\n",
    "\n\n",
    "Skip to content",
    "\ud800",
    "\U0001f600",
    "<script>alert(1)</script>",
    "&amp;",
    "“",
    " ",
]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32", "latin-1", "cp1252"]


# Stands for a line hundreds of kilobytes long, made in the test: an example holding the line
# itself would be too long for Hypothesis to print when it fails.
HUGE = "\ue000HUGE\ue000"
HUGE_LINE_CHARS = 300_000


@st.composite
def messy_pages(draw: st.DrawFn, *, huge: bool = True) -> tuple[str, str, str, bool]:
    """(text, encoding, error handler, UTF-8 BOM?): a seed page, edited the ways scraped text
    goes wrong; ``encoded`` makes the bytes."""
    text = draw(st.sampled_from(SEEDS))
    lines = text.splitlines()
    if draw(st.booleans()):  # the date line, replaced
        at = next(i for i, line in enumerate(lines) if line[:1].isdigit() or "day," in line)
        lines[at] = draw(st.sampled_from(DATE_LINES))
    if draw(st.booleans()):
        lines.insert(0, draw(st.sampled_from(["Skip to content", "\ufeffSkip to content", ""])))
    text = draw(st.sampled_from(["\n", "\r", "\r\n"])).join(lines)
    actions = ["insert", "cut", "truncate"] + (["huge line"] if huge else [])
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(actions))
        if action == "insert":
            extra = draw(st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=10)))
            text = text[:at] + extra + text[at:]
        elif action == "cut":
            text = text[:at] + text[at + draw(st.integers(1, 200)) :]
        elif action == "huge line":
            text = text[:at] + HUGE + draw(st.sampled_from(["x", "word ", "\u202e"])) + text[at:]
        else:
            text = text[:at]
    encoding = draw(st.sampled_from(ENCODINGS))
    # A lone surrogate (from st.text) goes through as the UTF codecs' surrogatepass writes it.
    surrogates = "surrogatepass" if encoding.startswith("utf") else "replace"
    errors = draw(st.sampled_from(["replace", surrogates]))
    return text, encoding, errors, draw(st.booleans()) and encoding == "utf-8"


def encoded(page: tuple[str, str, str, bool]) -> bytes:
    text, encoding, errors, bom = page
    text = re.sub(HUGE + "(.)", lambda m: m.group(1) * HUGE_LINE_CHARS, text, flags=re.S)
    return (codecs.BOM_UTF8 if bom else b"") + text.encode(encoding, errors=errors)


def read_or_refused(data: bytes, context: ReaderContext = CONTEXTS[0]) -> Article | None:
    """The article, checked for what a feed can carry; None when the page was refused with an
    ArticleError that names the file and a line an editor can find."""
    try:
        article = read_article(PATH, data, context)
    except ArticleError as exc:
        message = str(exc)
        assert message.startswith(PATH + ":"), message
        assert "\n" not in message and "\r" not in message
        assert len(message) <= len(PATH) + MAX_MESSAGE, message[:200]
        line = exc.problem.line
        if line is not None:
            assert 1 <= line <= len(_EDITOR_LINES.split(data.decode("utf-8", "replace"))), line
        return None
    assert article.title and article.title == article.title.strip()
    assert article.slug and slugify(article.slug) == article.slug
    assert article.url.startswith(context.site.url)
    assert article.id.startswith("tag:")
    assert len(article.summary) <= SUMMARY_LIMIT
    for value in (article.title, article.summary, article.content_html, article.id, article.url):
        assert not _XML_ILLEGAL.search(value), value[:200]
    assert "\n" not in article.title and "\r" not in article.title
    assert "<script" not in article.content_html
    assert lxml_html.fragment_fromstring(article.content_html, create_parent="div") is not None
    # Any date the line names is kept, aware of its zone: feeds and emails render year 1 and year
    # 9999 in any zone (tests/render/test_dates.py), and a future date is an embargo.
    assert article.published.tzinfo is not None
    return article


@pytest.mark.parametrize("seed", SEEDS, ids=[path.name for path in SEED_PATHS])
def test_the_seeds_are_read(seed: str) -> None:
    article = read_or_refused(seed.encode())
    assert article is not None and article.title


@fuzzing()
@given(messy_pages(), st.sampled_from(CONTEXTS))
@example((SEEDS[0].replace("What is", "What is h\x1f", 1), "utf-8", "replace", False), CONTEXTS[0])
def test_fuzz_messy_pages_are_read_or_refused(
    page: tuple[str, str, str, bool], context: ReaderContext
) -> None:
    data = encoded(page)
    article = read_or_refused(data, context)
    # Text is never made up: every word of the headline is in the page.
    if article is not None:
        decoded = xml_safe(data.decode("utf-8"))  # controls are taken out of every article
        assert all(word in decoded for word in article.title.split()), article.title


@fuzzing()
@given(mutated(messy_pages(huge=False).map(encoded)), st.sampled_from(CONTEXTS))
@example(b"\xef\xbb\xbfSkip to content\n" + SEEDS[0].encode(), CONTEXTS[0])
def test_fuzz_broken_bytes_are_read_or_refused(data: bytes, context: ReaderContext) -> None:
    article = read_or_refused(data, context)
    # Read or refused, never a crash; what is read is this site's article.
    assert article is None or article.url.startswith(context.site.url)


@fuzzing()
@given(st.binary(max_size=2048), st.sampled_from(CONTEXTS))
def test_fuzz_any_bytes_are_read_or_refused(data: bytes, context: ReaderContext) -> None:
    article = read_or_refused(data, context)
    # Read or refused, never a crash; what is read has a headline on one line.
    assert article is None or "\n" not in article.title


# Found by these targets: each was another exception, an article no feed can carry, a mangled
# article, or an error message no one could read.
def refusal(data: bytes, context: ReaderContext = CONTEXTS[0]) -> ArticleError:
    try:
        read_article(PATH, data, context)
    except ArticleError as exc:
        assert read_or_refused(data, context) is None  # and the message passes the targets' checks
        return exc
    raise AssertionError("the page was read")


def test_a_byte_order_mark_does_not_hide_the_chrome_line() -> None:
    # Was refused: "\ufeffSkip to content" is no chrome line, so it was taken for the publication.
    article = read_or_refused(b"\xef\xbb\xbfSkip to content\n" + SEEDS[0].encode())
    assert article is not None and article.title == "What is happening in Kazakhstan?"


def test_utf16_without_a_byte_order_mark_is_refused_not_mangled() -> None:
    # Was read with its NULs dropped, and every curly quote turned into a space and a control.
    exc = refusal(SEEDS[0].encode("utf-16-be"))
    assert exc.problem.line == 1
    assert "not UTF-8 text: a NUL byte at offset 0 (UTF-16 or UTF-32? save it as UTF-8)" in str(exc)


def test_a_huge_line_is_quoted_cut_short() -> None:
    # Was a message of 300,000 characters.
    exc = refusal(b"x" * 300_000 + b"\nheadline\nbody\n")
    assert exc.problem.line == 2 and len(str(exc)) < 300
    assert "found 'headline'" in str(exc)
    exc = refusal(b"The Speaker\n" + b"x" * 300_000 + b"\nheadline\nbody\n")
    assert exc.problem.line == 2 and "found 'xxxxxxxx" in str(exc) and len(str(exc)) < 300


def test_line_numbers_count_the_line_breaks_an_editor_shows() -> None:
    # A U+2028 inside a line was counted as a line break, so later errors named the wrong line.
    exc = refusal("The Speaker\u2028still line one\n\nnot a date\nheadline\nbody\n".encode())
    assert exc.problem.line == 3
