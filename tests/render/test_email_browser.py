"""A digest's HTML in Chromium: axe-core (WCAG 2.2 A/AA) in light and dark at 375 and 600 px, the
skip link, focus rings, text sizes, no sideways scrolling, dark mode, and escaped titles; the
confirmation email likewise, its button at 4.5:1 or more in both schemes.

The page is the rendered digest with the markers filled as the personaliser fills them, served
from a temporary folder together with the article photo it shows (the folder is the app's host:
an email shows only images from the site's and the app's hosts).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from speakerfeed.models import Image
from speakerfeed.render.email import render_confirmation, render_welcome
from tests.render.test_email import (
    DAILY,
    HOSTILE_TITLE,
    SETTINGS,
    make_article,
    make_settings,
    personalise,
    render,
    seed_article,
)
from tests.support.browser import (
    ColorScheme,
    PageFactory,
    StaticServer,
    assert_no_axe_violations,
    check_skip_link,
    horizontal_overflow,
)

pytestmark = pytest.mark.browser

VIEWS = [
    pytest.param(375, "light", id="375-light"),
    pytest.param(375, "dark", id="375-dark"),
    pytest.param(600, "light", id="600-light"),
    pytest.param(600, "dark", id="600-dark"),
]
LONG_WORD = "Supercalifragilisticexpialidocious" * 3
PHOTO = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="675">'
    '<rect width="1200" height="675" fill="#6f8aa6"/>'
    '<circle cx="600" cy="338" r="180" fill="#d9e2ec"/></svg>'
)


@pytest.fixture
def digest_url(tmp_path: Path, static_server: Callable[[Path], StaticServer]) -> str:
    server = static_server(tmp_path)
    settings = make_settings(app_url=server.url("").rstrip("/"))
    (tmp_path / "photo.svg").write_text(PHOTO, encoding="utf-8")
    articles = (
        seed_article(),
        make_article(1),
        make_article(3, image=Image(server.url("photo.svg"), "Students queue to vote")),
        make_article(4, title=HOSTILE_TITLE),
        make_article(5, title=f"{LONG_WORD} and a headline that runs on", authors=(LONG_WORD,)),
    )
    rendered = render(articles, settings)
    (tmp_path / "digest.html").write_text(personalise(rendered.html), encoding="utf-8")
    return server.url("digest.html")


def _open(open_page: PageFactory, url: str, width: int, scheme: ColorScheme) -> Any:
    page = open_page(width=width, color_scheme=scheme)
    page.goto(url)
    page.wait_for_load_state("load")
    return page


@pytest.mark.parametrize(("width", "scheme"), VIEWS)
def test_no_axe_violations_and_no_sideways_scrolling(
    open_page: PageFactory, digest_url: str, width: int, scheme: ColorScheme
) -> None:
    page = _open(open_page, digest_url, width, scheme)
    assert_no_axe_violations(page, where=f"digest at {width}px, {scheme}")
    assert horizontal_overflow(page) == 0
    assert open_page.errors == [] and open_page.dialogs == []  # the hostile title stayed text
    assert page.locator("h2", has_text="<script>alert(1)</script>").count() == 1


@pytest.mark.parametrize(("width", "scheme"), VIEWS)
def test_skip_link_moves_focus_to_the_articles(
    open_page: PageFactory, digest_url: str, width: int, scheme: ColorScheme
) -> None:
    check_skip_link(_open(open_page, digest_url, width, scheme))


_FOCUS_RING = """
() => {
  const a = document.activeElement;
  const style = getComputedStyle(a);
  return { text: a.textContent.trim(), width: parseFloat(style.outlineWidth),
           outline: style.outlineStyle };
}
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_link_shows_a_focus_ring(
    open_page: PageFactory, digest_url: str, scheme: ColorScheme
) -> None:
    page = _open(open_page, digest_url, 600, scheme)
    links = page.locator("a[href]").count()
    assert links >= 12
    for _ in range(links):
        page.keyboard.press("Tab")
        focused = page.evaluate(_FOCUS_RING)
        assert focused["outline"] != "none" and focused["width"] >= 2, focused


_TEXT_SIZES = """
() => {
  const sizes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const element = node.parentElement;
    if (!node.textContent.trim() || !element.getClientRects().length) continue;
    if (element.closest(".sf-skip")) continue;  // off-screen until focused
    sizes.push([parseFloat(getComputedStyle(element).fontSize), node.textContent.trim()]);
  }
  return sizes;
}
"""


@pytest.mark.parametrize("width", [375, 600])
def test_all_visible_text_is_at_least_14px_and_summaries_16px(
    open_page: PageFactory, digest_url: str, width: int
) -> None:
    page = _open(open_page, digest_url, width, "light")
    sizes = page.evaluate(_TEXT_SIZES)
    assert sizes
    small = [(px, text[:40]) for px, text in sizes if px < 14]
    assert small == []
    summary = page.locator("p", has_text="Pupils and teachers look back").first
    assert summary.evaluate("p => getComputedStyle(p).fontSize") == "16px"


_COLOURS = """
() => {
  const card = document.querySelector(".sf-card td");
  const text = document.querySelector("main .sf-t > div");
  const link = document.querySelector("main h2 a");
  const page = document.querySelector(".sf-page");
  return [card, text, link, page].map(e => {
    const s = getComputedStyle(e);
    return e === text || e === link ? s.color : s.backgroundColor;
  });
}
"""


def test_dark_mode_repaints_the_digest(open_page: PageFactory, digest_url: str) -> None:
    light = _open(open_page, digest_url, 600, "light").evaluate(_COLOURS)
    dark = _open(open_page, digest_url, 600, "dark").evaluate(_COLOURS)
    assert light == [
        "rgb(255, 255, 255)",
        "rgb(28, 29, 31)",
        "rgb(28, 29, 31)",
        "rgb(238, 241, 244)",
    ]
    assert dark == [
        "rgb(29, 32, 36)",
        "rgb(232, 234, 237)",
        "rgb(232, 234, 237)",
        "rgb(17, 19, 21)",
    ]


def test_single_column_on_a_phone(open_page: PageFactory, digest_url: str) -> None:
    page = _open(open_page, digest_url, 375, "light")
    boxes = page.evaluate(
        "() => [...document.querySelectorAll('.sf-card')].map(e => e.getBoundingClientRect())"
        ".map(r => [Math.round(r.left), Math.round(r.right)])"
    )
    assert len(boxes) == 6  # the greeting and five articles
    assert {tuple(box) for box in boxes} == {(12, 363)}  # one column, 12px margins
    image = page.locator("img").bounding_box()
    assert image is not None and image["x"] >= 12 and image["x"] + image["width"] <= 363


def test_right_to_left_digest(
    tmp_path: Path, static_server: Callable[[Path], StaticServer], open_page: PageFactory
) -> None:
    hebrew = make_settings()
    hebrew = hebrew.model_copy(update={"site": hebrew.site.model_copy(update={"language": "he"})})
    article = make_article(1, title="בחירות: הצעירים מצביעים", summary="שיעור ההצבעה עלה (שוב).")
    (tmp_path / "digest.html").write_text(
        personalise(render((article,), hebrew).html), encoding="utf-8"
    )
    page = _open(open_page, static_server(tmp_path).url("digest.html"), 375, "light")
    assert page.locator("h2").evaluate("h => getComputedStyle(h).direction") == "rtl"
    assert_no_axe_violations(page, where="Hebrew digest at 375px")
    assert horizontal_overflow(page) == 0


# ---------------------------------------------------------------------------------- confirmation


@pytest.fixture
def confirmation_url(tmp_path: Path, static_server: Callable[[Path], StaticServer]) -> str:
    rendered = render_confirmation(
        SETTINGS, DAILY, "https://app.speakernews.co.uk/confirm/daily/c2FtcGxl.dG9rZW4"
    )
    (tmp_path / "confirm.html").write_text(rendered.html, encoding="utf-8")
    return static_server(tmp_path).url("confirm.html")


@pytest.mark.parametrize(("width", "scheme"), VIEWS)
def test_the_confirmation_has_no_axe_violations(
    open_page: PageFactory, confirmation_url: str, width: int, scheme: ColorScheme
) -> None:
    page = _open(open_page, confirmation_url, width, scheme)
    assert_no_axe_violations(page, where=f"confirmation at {width}px, {scheme}")
    assert horizontal_overflow(page) == 0
    check_skip_link(page)


@pytest.fixture
def welcome_url(tmp_path: Path, static_server: Callable[[Path], StaticServer]) -> str:
    rendered = render_welcome(
        SETTINGS,
        DAILY,
        next_issue=datetime(2026, 12, 5, 7, 0, tzinfo=ZoneInfo("Europe/London")),
        latest_url="https://app.speakernews.co.uk/digests/daily/daily-2026-12-02-0700/",
    )
    (tmp_path / "welcome.html").write_text(personalise(rendered.html), encoding="utf-8")
    return static_server(tmp_path).url("welcome.html")


@pytest.mark.parametrize(("width", "scheme"), VIEWS)
def test_the_welcome_has_no_axe_violations(
    open_page: PageFactory, welcome_url: str, width: int, scheme: ColorScheme
) -> None:
    page = _open(open_page, welcome_url, width, scheme)
    assert_no_axe_violations(page, where=f"welcome at {width}px, {scheme}")
    assert horizontal_overflow(page) == 0
    check_skip_link(page)


_BUTTON = """
() => {
  const a = document.querySelector(".sf-button a");
  let painted = a;  // the nearest box with a background of its own is what the label sits on
  while (getComputedStyle(painted).backgroundColor === "rgba(0, 0, 0, 0)") {
    painted = painted.parentElement;
  }
  const background = getComputedStyle(painted).backgroundColor;
  return [getComputedStyle(a).color, background, a.textContent.trim()];
}
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_confirm_button_reads_at_4_5_to_1(
    open_page: PageFactory, confirmation_url: str, scheme: ColorScheme
) -> None:
    """Dark mode once painted the label in the link colour, #8cbcff on #0b5cad: 3.42:1."""
    colour, background, label = _open(open_page, confirmation_url, 600, scheme).evaluate(_BUTTON)
    assert label == "Confirm my subscription"
    assert contrast(colour, background) >= 4.5, (scheme, colour, background)


def contrast(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two computed "rgb(r, g, b)" colours."""

    def luminance(colour: str) -> float:
        channels = [int(part) / 255 for part in colour[colour.index("(") + 1 : -1].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_is_wcag_s() -> None:
    assert round(contrast("rgb(140, 188, 255)", "rgb(11, 92, 173)"), 2) == 3.42
    assert round(contrast("rgb(255, 255, 255)", "rgb(0, 0, 0)"), 1) == 21.0
