"""Fuzz targets for Markdown front matter: whatever an editor types between the --- lines
(malformed YAML, alias bombs, wrong types, huge values, dates out of range), reading the file either
gives an article with sane values or an ArticleError naming the file, the line and the key; never
another exception, and never a hang.

Bounded in the test command (see tests/support/fuzz.py); SPEAKERFEED_FUZZ_EXAMPLES runs longer.
"""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st
from slugify import slugify

from speakerfeed.errors import ArticleError
from speakerfeed.models import Article
from speakerfeed.sources.base import ReaderContext
from speakerfeed.sources.folder import read_article
from tests.support.fuzz import fuzzing, mutated
from tests.support.project import project_settings

PATH = "articles/2023-11-22-budget.md"
CONTEXTS = [
    ReaderContext(site=project_settings().site),
    ReaderContext(site=project_settings(site={"timezone": "Asia/Tokyo"}).site),
]
MAX_MESSAGE = 400  # an error is read in a terminal: a huge value is shown cut short
_EDITOR_LINES = re.compile(r"\r\n|\r|\n")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# "a" nine levels deep, each level nine times the one below: 9**9 strings if expanded.
_ANCHORS = "abcdefghi"


def _alias_level(n: int) -> str:
    items = ["lol"] * 9 if n == 0 else ["*" + _ANCHORS[n - 1]] * 9
    return f"&{_ANCHORS[n]} [{', '.join(items)}]"


ALIAS_BOMB = "\n".join(f"{_ANCHORS[n]}: {_alias_level(n)}" for n in range(9))
# The same as one flow sequence, a value for any key.
INLINE_ALIAS_BOMB = "[" + ", ".join(_alias_level(n) for n in range(9)) + "]"
DATES = [
    "2023-11-22 14:30",
    "2023-11-22",
    "2023-11-22T14:30:00Z",
    "0001-01-01",
    "0001-01-01T00:00+14:00",
    "9999-12-31T23:00-05:00",
    "9999-12-31",
    "2023-02-30",
    "2023-11-22T25:00",
    "20231122",
    "yesterday",
    "2023-11-22 14:30 +0000",
    "[2023, 11, 22]",
    "{year: 2023}",
    "true",
    "~",
    "''",
    "*i",
    '"2023-11-22T14:30:00+24:00"',
]
TEXTS = [
    "Budget 2023: what it means",
    "'quoted: text'",
    '"\\u0000 nul"',
    '"\\ud800"',
    "é\u202eevil",
    "[a, b]",
    "{a: b}",
    "123",
    "1.5e300",
    ".nan",
    "true",
    "~",
    "''",
    "*i",
    "!!binary aGk=",
    "!!python/object:os.system ls",
    "|\n  multi\n  line",
    "x" * 50_000,
    INLINE_ALIAS_BOMB,
]
URLS = [
    "https://elsewhere.example/a",
    "http://[::1",
    "https://[fe80::1%25eth0]/",
    "javascript:alert(1)",
    "//no-scheme.example/",
    "https://",
    "https://example.org:99999/",
]
IMAGES = [
    "{url: 'https://example.org/a.jpg', alt: A picture}",
    "{url: 'http://[::1', alt: x}",
    "{url: 'https://example.org/a.jpg'}",
    "{url: 7, alt: [x]}",
    "[a, b]",
    "https://example.org/a.jpg",
    "{url: 'https://example.org/a.jpg', alt: A, extra: 1}",
]
KEYS = ["title", "date", "updated", "author", "tags", "summary", "image", "slug", "draft"]
KEYS += ["canonical_url", "id", "titel", "Date", "? [complex]", "1", "~"]
RAW_LINES = [
    "key: [unclosed",
    "\tindented: tab",
    "- a list item",
    "&anchor",
    "*undefined",
    "%YAML 1.1",
    "---",
    "...",
    ": no key",
    "x: !!int abc",
    "x: !!float abc",
    "x: !!bool maybe",
    "x: !!timestamp soon",
    "x: !!int 0x",
    "[" * 2000 + "]" * 2000,
    "x: " + "[" * 2000,
    "\x00",
    "\ufeff",
]


@st.composite
def front_matters(draw: st.DrawFn) -> str:
    """YAML front matter as an editor might get it wrong: values of every type for every key."""
    lines = []
    if draw(st.booleans()):
        lines.append("base: &i [1, 2]")
    if draw(st.integers(0, 9)) == 0:
        lines.append(ALIAS_BOMB)
    values = {
        "title": st.sampled_from(TEXTS),
        "date": st.sampled_from(DATES),
        "updated": st.sampled_from(DATES),
        "slug": st.sampled_from(["budget-2023", "Budget 2023", "", "ü", "a" * 3000, *TEXTS]),
        "canonical_url": st.sampled_from(URLS + TEXTS),
        "image": st.sampled_from(IMAGES + TEXTS),
        "draft": st.sampled_from(["false", "true", "yes", "0", "'no'", "*i", INLINE_ALIAS_BOMB]),
    }
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=8)):
        value = draw(values.get(key, st.sampled_from(TEXTS + DATES)))
        lines.append(f"{key}: {value}")
    if draw(st.booleans()):  # the two a reader needs, most of the time
        lines[0:0] = [
            f"title: {draw(st.sampled_from(TEXTS))}",
            f"date: {draw(st.sampled_from(DATES))}",
        ]
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(RAW_LINES)))
    return "\n".join(lines)


@st.composite
def markdown_files(draw: st.DrawFn) -> bytes:
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    body = draw(st.sampled_from(["Body text.", "", "# H\n\n<script>x</script>", "[a](/b)"]))
    text = f"---\n{draw(front_matters())}\n---\n{body}\n".replace("\n", newline)
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode("utf-8", errors="surrogatepass")


def read_or_refused(data: bytes, context: ReaderContext = CONTEXTS[0]) -> Article | None:
    """The article, checked for what a feed can carry; None when the file was refused with an
    ArticleError naming the file and a line an editor can find."""
    try:
        article = read_article(PATH, data, context)
    except ArticleError as exc:
        message = str(exc)
        assert message.startswith(PATH + ":"), message
        assert "\n" not in message and "\r" not in message, message[:300]
        assert len(message) <= len(PATH) + MAX_MESSAGE, message[:300]
        line = exc.problem.line
        if line is not None:
            assert 1 <= line <= len(_EDITOR_LINES.split(data.decode("utf-8", "replace"))), line
        return None
    assert article.title and article.title == article.title.strip()
    assert article.slug and slugify(article.slug) == article.slug
    assert re.match(r"https?://[^/?#]", article.url), article.url
    assert article.image is None or re.match(r"https?://", article.image.url)
    for value in (article.title, article.summary, article.id, *article.authors, *article.tags):
        assert isinstance(value, str) and not _XML_ILLEGAL.search(value), value[:200]
    assert "<script" not in article.content_html
    assert isinstance(article.draft, bool)
    # Any date is kept, aware of its zone: feeds and emails render year 1 and year 9999 in any
    # zone (tests/render/test_dates.py), and a future date is an embargo.
    for moment in (article.published, article.updated):
        assert moment is None or moment.tzinfo is not None
    assert article.updated is None or article.updated >= article.published
    return article


def test_a_plain_article_is_read() -> None:
    data = b"---\ntitle: Budget 2023\ndate: 2023-11-22 14:30\n---\nBody text.\n"
    article = read_or_refused(data)
    assert article is not None and article.title == "Budget 2023"


@fuzzing()
@given(markdown_files(), st.sampled_from(CONTEXTS))
@example(f"---\ntitle: T\ndate: 2023-11-22\n{ALIAS_BOMB}\n---\nx\n".encode(), CONTEXTS[0])
def test_fuzz_front_matter_is_read_or_refused(data: bytes, context: ReaderContext) -> None:
    article = read_or_refused(data, context)
    # Read or refused, never a crash; what is read has a date a feed can carry, with its zone.
    assert article is None or article.published.tzinfo is not None


@fuzzing()
@given(mutated(markdown_files()), st.sampled_from(CONTEXTS))
def test_fuzz_broken_bytes_are_read_or_refused(data: bytes, context: ReaderContext) -> None:
    article = read_or_refused(data, context)
    # Read or refused, never a crash; no script survives whatever the bytes became.
    assert article is None or "<script" not in article.content_html


@fuzzing()
@given(st.text(max_size=300), st.sampled_from(CONTEXTS))
def test_fuzz_any_front_matter_text_is_read_or_refused(text: str, context: ReaderContext) -> None:
    data = f"---\ntitle: T\ndate: 2023-11-22\n{text}\n---\nBody.\n".encode("utf-8", "surrogatepass")
    article = read_or_refused(data, context)
    # Read or refused, never a crash; what is read links to the web only.
    assert article is None or article.url.startswith(("http://", "https://"))


# Found by these targets; each was another exception, an article no feed can carry, or a message
# spread over lines.
def refusal(data: bytes) -> ArticleError:
    try:
        read_article(PATH, data, CONTEXTS[0])
    except ArticleError as exc:
        assert read_or_refused(data) is None  # and the message passes the targets' checks
        return exc
    raise AssertionError("the file was read")


def test_a_character_yaml_refuses_is_reported_on_one_line_with_its_line() -> None:
    # Was a two-line message ("in <unicode string>, position 26") pointing at line 1.
    exc = refusal(b"---\ntitle: T\ndate: 2023-11-22\n\x7f\n---\nx\n")
    assert exc.problem.line == 4
    assert str(exc).endswith("not valid YAML: control characters are not allowed ('\\x7f')")


def test_a_nul_from_a_yaml_escape_is_removed_like_one_in_the_file() -> None:
    article = read_or_refused(
        b'---\ntitle: "\\u0000 nul"\ndate: 2023-11-22\ntags: ["a\\0b"]\n---\nx\n'
    )
    assert article is not None and article.title == "nul" and article.tags == ("ab",)


def test_a_url_urlsplit_cannot_split_is_refused() -> None:
    for url in (b"http://[::1", b"https://example.org:99999/"):
        exc = refusal(b"---\ntitle: T\ndate: 2023-11-22\ncanonical_url: " + url + b"\n---\nx\n")
        assert exc.problem.line == 4 and "expected an absolute http(s) URL" in str(exc)


def test_an_alias_bomb_is_reported_in_a_short_message() -> None:
    exc = refusal(f"---\ntitle: T\ndate: 2023-11-22\ndraft: {INLINE_ALIAS_BOMB}\n---\nx\n".encode())
    assert "front matter 'draft': expected true or false, got [['lol', 'lol'," in str(exc)
    assert len(str(exc)) < 200


def test_a_value_its_yaml_tag_cannot_hold_is_reported_with_its_line() -> None:
    # Was a ValueError, KeyError or AttributeError out of PyYAML's constructors.
    for tagged in ("!!int abc", "!!float abc", "!!bool maybe", "!!timestamp soon", "!!int 0x"):
        exc = refusal(f"---\ntitle: T\ndate: 2023-11-22\nx: {tagged}\n---\nx\n".encode())
        assert exc.problem.line == 4
        assert "front matter is not valid YAML: a value its tag cannot hold (" in str(exc)
