"""The plain-text reader: the seed round-trips exactly, and properties hold for any input."""

from __future__ import annotations

from datetime import datetime
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import html as lxml_html

from speakerfeed.errors import ArticleError
from speakerfeed.sources.base import ReaderContext
from speakerfeed.sources.plaintext import PlainTextReader, looks_like_heading, parse_text
from tests.support.project import project_settings

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "articles" / "000_d49d9c5f78f68bb1.txt"
LONDON = ZoneInfo("Europe/London")


SITE = project_settings().site


@pytest.fixture(scope="module")
def context() -> ReaderContext:
    return ReaderContext(site=SITE)


def test_the_seed_in_articles_is_the_shared_seed_unmodified() -> None:
    shared = ROOT.parent / "shared" / "seeds" / SEED.name
    if shared.exists():
        assert SEED.read_bytes() == shared.read_bytes()
    assert SEED.read_bytes().endswith(b"Skip to content")


def test_seed_round_trip(context: ReaderContext) -> None:
    text = SEED.read_text(encoding="utf-8")
    article = PlainTextReader().read(SEED.name, text, context)

    assert article.title == "What is happening in Kazakhstan?"
    assert article.published == datetime(2023, 11, 29, 13, 6, tzinfo=LONDON)
    assert article.published.utcoffset() is not None
    doc = lxml_html.fragment_fromstring(article.content_html, create_parent="div")
    headings = [h.text_content() for h in doc.findall("h2")]
    assert headings == ["What has caused the unrest?", "What will happen next?"]
    paragraphs = [p.text_content() for p in doc.findall("p")]
    # Every paragraph of the source, in order, with its typography, and nothing else.
    source_lines = [line.strip() for line in text.splitlines() if line.strip()]
    expected = [
        line
        for line in source_lines[3:]  # after publication name, date line and headline
        if line not in headings and line != "Skip to content"
    ]
    assert paragraphs == expected
    assert len(paragraphs) == 16
    body = unescape(article.content_html)
    for mark in ("’", "“", "”", "‘", "–"):
        assert mark in body
    assert "Skip to content" not in body
    assert "The Speaker" not in body.split("</p>")[0]
    assert article.summary.startswith("Dozens have been reportedly killed")
    assert article.slug == "what-is-happening-in-kazakhstan"
    assert article.url == "https://www.speakernews.co.uk/what-is-happening-in-kazakhstan/"
    assert article.authors == ("The Speaker",)


def test_seed_id_does_not_depend_on_title(context: ReaderContext) -> None:
    text = SEED.read_text(encoding="utf-8")
    retitled = text.replace("What is happening in Kazakhstan?", "Kazakhstan: what is happening?")
    first = PlainTextReader().read(SEED.name, text, context)
    second = PlainTextReader().read(SEED.name, retitled, context)
    assert first.slug != second.slug
    assert first.id == second.id


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", None, "empty"),
        ("The Speaker\nNot a date\n\nHeadline\n\nBody.", 2, "expected a date line"),
        ("The Speaker\nTuesday, 29 November 2023 – 13:06\n\nHeadline\n\nBody.", 2, "Wednesday"),
        ("The Speaker\nThursday, 31 November 2023 – 13:06\n\nHeadline\n\nBody.", 2, "impossible"),
        ("The Speaker\nWednesday, 29 November 2023 – 13:06\n", 2, "headline"),
        ("The Speaker\nWednesday, 29 November 2023 – 13:06\n\nHeadline only\n", 4, "text"),
    ],
)
def test_bad_input_names_the_line(
    context: ReaderContext, text: str, line: int | None, fragment: str
) -> None:
    with pytest.raises(ArticleError) as caught:
        PlainTextReader().read("bad.txt", text, context)
    assert caught.value.problem.where == "bad.txt"
    assert caught.value.problem.line == line
    assert fragment in caught.value.problem.message


def test_date_line_without_publication_name_and_with_hyphen(context: ReaderContext) -> None:
    parsed = parse_text("1 June 2024 - 07:05\nHeadline\nA paragraph.", "x.txt", context)
    assert parsed.publication is None
    assert parsed.published == datetime(2024, 6, 1, 7, 5, tzinfo=LONDON)
    assert parsed.published.utcoffset() is not None
    assert parsed.published.utcoffset().total_seconds() == 3600  # type: ignore[union-attr]


# ---- properties -------------------------------------------------------------------------------

_WORD = st.text(
    alphabet=st.characters(
        whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="’“”–&<>'\""
    ),
    min_size=1,
    max_size=10,
)


def _sentence(words: list[str]) -> str:
    return " ".join(words) + "."


_PLAIN_WORD = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd")), min_size=1, max_size=10
)
_PARAGRAPH = st.lists(_WORD, min_size=13, max_size=40).map(_sentence)
# A heading starts with a letter or digit: a line opening with a quote mark reads as a pull quote.
_HEADING = st.tuples(_PLAIN_WORD, st.lists(_WORD, max_size=7)).map(
    lambda parts: " ".join([parts[0], *parts[1]]) + "?"
)
_BLOCKS = st.lists(
    st.one_of(_PARAGRAPH.map(lambda p: (p, False)), _HEADING.map(lambda h: (h, True))),
    min_size=1,
    max_size=12,
).filter(lambda blocks: not blocks[-1][1])  # an article ends with text, not a heading
_WHEN = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0)
)


def _render_scraped(when: datetime, title: str, blocks: list[tuple[str, bool]], gaps: int) -> str:
    date_line = f"{when:%A}, {when.day} {when:%B %Y} – {when:%H:%M}"
    parts = ["The Speaker", date_line, "", title, ""]
    for text, heading in blocks:
        parts += [""] * (gaps if heading else 0) + [text, ""]
    parts.append("Skip to content")
    return "\n".join(parts)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(when=_WHEN, title=_HEADING, blocks=_BLOCKS, gaps=st.integers(0, 2))
def test_property_generated_articles_round_trip(
    context: ReaderContext, when: datetime, title: str, blocks: list[tuple[str, bool]], gaps: int
) -> None:
    text = _render_scraped(when, title, blocks, gaps)
    parsed = parse_text(text, "gen.txt", context)
    assert parsed.title == title
    assert parsed.published.replace(tzinfo=None) == when
    assert [(b.text, b.heading) for b in parsed.blocks] == blocks
    article = PlainTextReader().read("gen.txt", text, context)
    doc = lxml_html.fragment_fromstring(article.content_html, create_parent="div")
    assert [el.text_content() for el in doc] == [text for text, _ in blocks]
    assert "Skip to content" not in article.content_html


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_property_any_text_reads_or_fails_cleanly(text: str) -> None:
    site_context = ReaderContext(site=SITE)
    try:
        article = PlainTextReader().read("any.txt", text, site_context)
    except ArticleError as exc:
        problem = exc.problem
        article = None
    if article is None:
        assert problem.where == "any.txt"
        assert problem.message
        return
    # Nothing the reader accepted is lost: every body line is in the HTML, escaped.
    doc = lxml_html.fragment_fromstring(article.content_html, create_parent="div")
    rendered = [el.text_content() for el in doc]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert all(line in lines for line in rendered)
    assert article.title in lines


@given(st.text(min_size=1, max_size=120).filter(lambda s: s.strip() == s and s))
def test_property_headings_never_end_like_sentences(line: str) -> None:
    if looks_like_heading(line, is_last=False):
        assert not line.endswith((".", ",", ";", ":"))
        assert len(line.split()) <= 12
    assert not looks_like_heading(line, is_last=True)
