"""A digest with an editor's note in Chromium: axe-core (WCAG 2.2 A/AA) in light and dark, and the
note as a region named by its heading, read before the first article."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from speakerfeed.digest.note import parse_note
from speakerfeed.render.email import render_digest
from tests.render.test_email import make_article, make_digest, make_settings, personalise
from tests.support.browser import (
    ColorScheme,
    PageFactory,
    StaticServer,
    assert_no_axe_violations,
)

pytestmark = pytest.mark.browser

NOTE = """---
heading: A word before the holidays
---
We publish **twice** next week. Read [our ethics policy](/ethics/) and
[tell us](mailto:desk@speakernews.co.uk) what you think.

- Tuesday: the budget
- Friday: the *results*
"""


@pytest.mark.parametrize(("width", "scheme"), [(375, "light"), (600, "dark")])
def test_the_note_is_an_accessible_region_before_the_articles(
    open_page: PageFactory,
    static_server: Callable[[Path], StaticServer],
    tmp_path: Path,
    width: int,
    scheme: ColorScheme,
) -> None:
    server = static_server(tmp_path)
    settings = make_settings(app_url=server.url("").rstrip("/"))
    note = parse_note(NOTE, "notes/daily.md", base_url=settings.site.url + "/")
    list_settings = settings.lists[0]
    articles = (make_article(1), make_article(2))
    rendered = render_digest(
        settings, list_settings, make_digest(articles, list_settings), note=note
    )
    (tmp_path / "digest.html").write_text(personalise(rendered.html), encoding="utf-8")
    page = open_page(width=width, color_scheme=scheme)
    page.goto(server.url("digest.html"))
    page.wait_for_load_state("load")
    assert_no_axe_violations(page, where=f"digest with a note at {width}px, {scheme}")
    region = page.get_by_role("region", name="A word before the holidays")
    assert region.count() == 1
    assert region.get_by_role("listitem").count() == 2
    headings = page.get_by_role("heading", level=2).all_inner_texts()
    assert headings[0] == "A word before the holidays" and len(headings) == 3
