"""Markdown articles: front matter fields, errors with lines, rendering."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from speakerfeed.errors import ArticleError
from speakerfeed.models import Image
from speakerfeed.sources.base import ReaderContext
from speakerfeed.sources.markdown import MarkdownReader
from tests.support.project import project_settings

CONTEXT = ReaderContext(site=project_settings().site)
LONDON = ZoneInfo("Europe/London")

FULL = """---
title: "Budget: what it means"
date: 2023-11-22 16:45
updated: 2023-11-23T09:00:00Z
author: [Amelia Hart, Tom Ellis]
tags: politics, economy
summary: Short summary.
image: {url: "https://example.org/a.jpg", alt: "The Treasury"}
slug: budget-2023
canonical_url: https://elsewhere.example/budget
---
Intro with **bold** and a [link](https://example.org).

| a | b |
|---|---|
| 1 | 2 |

<script>alert(1)</script>
"""


def test_every_front_matter_field() -> None:
    article = MarkdownReader().read("2023/budget.md", FULL, CONTEXT)
    assert article.title == "Budget: what it means"
    assert article.published == datetime(2023, 11, 22, 16, 45, tzinfo=LONDON)
    assert article.updated == datetime(2023, 11, 23, 9, 0, tzinfo=UTC)
    assert article.authors == ("Amelia Hart", "Tom Ellis")
    assert article.tags == ("politics", "economy")
    assert article.summary == "Short summary."
    assert article.image == Image("https://example.org/a.jpg", "The Treasury")
    assert article.slug == "budget-2023"
    assert article.url == "https://elsewhere.example/budget"
    assert article.id == "tag:www.speakernews.co.uk,2023-11-22:2023/budget"
    assert "<strong>bold</strong>" in article.content_html
    assert "<table>" in article.content_html  # GFM tables
    assert "<script>" not in article.content_html  # removed by the allow-list
    assert "alert(1)" not in article.content_html
    assert 'href="https://example.org" rel="noopener noreferrer"' in article.content_html
    assert not article.draft


def test_defaults_and_allowed_raw_html() -> None:
    text = (
        "---\ntitle: Hi\ndate: 2024-07-01\n---\nFirst paragraph here.\n\n<em>x</em>\n\n"
        '<iframe src="https://evil.example/">embed</iframe><a href="/about/" onclick="x()">us</a>\n'
    )
    article = MarkdownReader().read("2024-07-01-hello-world.md", text, CONTEXT)
    assert article.slug == "hello-world"  # the date prefix of the file name is dropped
    assert article.authors == ("The Speaker",)
    assert article.summary == "First paragraph here."
    assert article.published == datetime(2024, 7, 1, tzinfo=LONDON)
    assert article.published.utcoffset() is not None
    assert "<em>x</em>" in article.content_html
    assert "iframe" not in article.content_html and "embed" not in article.content_html
    assert "onclick" not in article.content_html
    # relative links resolve against the article's URL, since feed readers have no base
    assert 'href="https://www.speakernews.co.uk/about/"' in article.content_html


def test_id_survives_title_and_slug_changes() -> None:
    first = MarkdownReader().read("a.md", "---\ntitle: One\ndate: 2024-01-02\n---\nx\n", CONTEXT)
    second = MarkdownReader().read(
        "a.md", "---\ntitle: Two\ndate: 2024-01-02\nslug: other\n---\nx\n", CONTEXT
    )
    assert first.id == second.id
    assert first.url != second.url


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("no front matter\n", 1, "expected front matter"),
        ("---\ntitle: x\n", 1, "not closed"),
        # The line where the broken construct starts, not where the scanner gave up.
        ("---\ntitle: [unclosed\ndate: 2024-01-01\n---\n", 2, "not valid YAML"),
        ('---\ntitle: "Unclosed\ndate: 2024-01-01\nauthor: Ann\n\ntags: [a]\n---\n', 2, "quoted"),
        (
            "---\ntitle: x\ndate: 2024-01-01\nsummary: 'It\\'s\nauthor: Ann\n---\n",
            4,
            "not valid YAML",
        ),
        ("---\ntitle: x\nauthor Ann\ndate: 2024-01-01\n---\n", 3, "could not find expected ':'"),
        ("---\ntitle: x\n  date: 2024-01-01\n---\n", 3, "mapping values are not allowed"),
        ("---\ndate: 2024-01-01\n---\n", 1, "'title' is required"),
        ("---\ntitle: x\n---\n", 1, "'date' is required"),
        ("---\ntitle: x\ndate: yesterday\n---\n", 3, "expected a date"),
        ("---\ntitle: x\ndate: 2024-01-01\ndraft: maybe\n---\n", 4, "true or false"),
        ("---\ntitle: x\ndate: 2024-01-01\ntittle: y\n---\n", 4, "did you mean 'title'"),
        ("---\ntitle: x\ndate: 2024-01-01\nimage: {url: 'https://e.org/a.png'}\n---\n", 4, "alt"),
        ("---\ntitle: x\ndate: 2024-01-01\nslug: Not A Slug\n---\n", 4, "not-a-slug"),
        ("---\ntitle: x\ndate: 2024-01-02\nupdated: 2024-01-01\n---\n", 4, "earlier"),
        ("---\ntitle: x\ndate: 2024-01-01\ncanonical_url: /rel\n---\n", 4, "absolute"),
        ("---\n- a\n- b\n---\n", 2, "mapping"),
    ],
)
def test_errors_name_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ArticleError) as caught:
        MarkdownReader().read("bad.md", text, CONTEXT)
    problem = caught.value.problem
    assert (problem.where, problem.line) == ("bad.md", line), problem
    assert fragment in problem.message


def test_quotation_sources_cannot_carry_script_urls() -> None:
    body = '<blockquote cite="javascript:alert(1)">Q</blockquote>'
    text = f"---\ntitle: Q\ndate: 2024-01-01\n---\n{body}\n"
    html = MarkdownReader().read("q.md", text, CONTEXT).content_html
    assert "javascript" not in html
    assert "<blockquote>" in html
