"""Rendering a digest as email (render.email) and the pre-send lint (render.lint).

The browser checks of the same HTML (axe-core, keyboard, narrow screens, dark mode) are in
test_email_browser.py, which builds its digests with the helpers here.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import parser as email_parser
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lxml_html

from speakerfeed.config import ListSettings, Settings
from speakerfeed.digest.archive import render_archive_index, web_copy, write_digest_archive
from speakerfeed.digest.letter import MessageTemplate
from speakerfeed.errors import ConfigError
from speakerfeed.mail import placeholders
from speakerfeed.models import Article, Digest, Image, RenderedDigest, Subscriber
from speakerfeed.render import email as email_render
from speakerfeed.render.email import TEXT_WIDTH, render_digest
from speakerfeed.render.lint import MAX_HTML_BYTES, WARN_HTML_BYTES, Finding, lint_digest
from speakerfeed.render.pages import DEFAULT_TEMPLATES_DIR
from speakerfeed.render.subject import render_subject
from speakerfeed.sources.base import ReaderContext
from speakerfeed.sources.plaintext import PlainTextReader
from tests.support import letters
from tests.support.project import project_settings

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "articles" / "000_d49d9c5f78f68bb1.txt"
POSTAL = "The Speaker, 20 Example Street, London EC1A 1AA, United Kingdom"
REASON = "You receive this because you subscribed to The Speaker Daily at speakernews.co.uk."
DESCRIPTION = "The morning's new articles from The Speaker, every day at seven."
SITE = "https://www.speakernews.co.uk"
ISSUED = datetime(2024, 3, 5, 7, 0, tzinfo=UTC)
HOSTILE_TITLE = '<script>alert(1)</script> Tom & Jerry\'s "big" <b>night</b>'

# What the personaliser puts in place of the markers, for tests that need a finished message.
SAMPLE_VALUES = {
    placeholders.NAME: " Sam Reader",
    placeholders.UNSUBSCRIBE_URL: f"{SITE}/unsubscribe/c2FtcGxl.dG9rZW4",
    placeholders.PREFERENCES_URL: f"{SITE}/preferences/c2FtcGxl.dG9rZW4",
}

SUMMARIES = (
    "Turnout among 18 to 24 year olds rose for the third election running, according to "
    "figures published on Thursday, as campaigners credited school visits and social media.",
    "Pupils and teachers look back on a year without smartphones in class: fewer arguments, "
    "more reading, and a black market in old Nokias that nobody saw coming.",
    "Our critics pick the five releases worth your money this spring, from a documentary about "
    "a village choir to a thriller set entirely on a night bus.",
)


def make_settings(**email_overrides: Any) -> Settings:
    email_settings = {
        "from_address": "The Speaker <digest@speakernews.co.uk>",
        "postal_address": POSTAL,
        **email_overrides,
    }
    return project_settings(
        email=email_settings,
        lists=[
            {
                "name": "daily",
                "title": "The Speaker Daily",
                "description": DESCRIPTION,
                "reason": REASON,
            },
            {"name": "weekly", "title": "Politics this week", "subject": "{{ list.title }}"},
        ],
    )


SETTINGS = make_settings()
DAILY = SETTINGS.lists[0]


def make_article(number: int, **changes: Any) -> Article:
    """A realistic article: one of three shapes (with a photo, two authors, no summary)."""
    slug = f"story-{number}"
    fields: dict[str, Any] = {
        "id": f"tag:www.speakernews.co.uk,2024-03-01:{slug}",
        "title": f"Young voters turn out in record numbers ({number})",
        "url": f"{SITE}/{slug}/",
        "published": datetime(2024, 3, 4, 18, 30, tzinfo=UTC) - timedelta(hours=number),
        "content_html": "<p>Body.</p>",
        "summary": SUMMARIES[number % 3],
        "source": f"articles/{slug}.md",
        "slug": slug,
        "authors": ("Sam Lee", "Priya Shah") if number % 3 == 1 else ("Amelia Hart",),
        "tags": ("politics",),
        "image": Image(f"{SITE}/media/{slug}.jpg", "Students queue outside a polling station")
        if number % 3 == 0
        else None,
    }
    fields.update(changes)
    return Article(**fields)


def seed_article(settings: Settings = SETTINGS) -> Article:
    return PlainTextReader().read(
        SEED.name, SEED.read_text(encoding="utf-8"), ReaderContext(site=settings.site)
    )


def make_digest(articles: tuple[Article, ...], list_settings: ListSettings = DAILY) -> Digest:
    return Digest(
        id=f"{list_settings.name}-2024-03-05-0700",
        list_name=list_settings.name,
        list_title=list_settings.title,
        articles=articles,
        issued=ISSUED,
    )


def render(
    articles: tuple[Article, ...],
    settings: Settings = SETTINGS,
    list_settings: ListSettings | None = None,
) -> RenderedDigest:
    chosen = list_settings or settings.lists[0]
    return render_digest(settings, chosen, make_digest(articles, chosen))


def personalise(text: str, values: dict[str, str] = SAMPLE_VALUES) -> str:
    """What speakerfeed.mail.mime does to each part, by plain replacement."""
    for marker, value in values.items():
        text = text.replace(marker, value)
    return text


def parse(rendered: RenderedDigest) -> Any:
    return lxml_html.document_fromstring(rendered.html)


def size(rendered: RenderedDigest) -> int:
    return len(rendered.html.encode("utf-8"))


@pytest.fixture(scope="module")
def three() -> RenderedDigest:
    return render((seed_article(), make_article(1), make_article(3)))


# -------------------------------------------------------------------------------- compilation


def test_mjml_is_compiled_once_per_digest_whatever_the_subscribers() -> None:
    before = email_render.mjml_compilations()
    rendered = render((make_article(0), make_article(1)))
    assert email_render.mjml_compilations() == email_render.MJML_COMPILATIONS == before + 1
    # Personalising is the messages module's bytes work, with no template or MJML.
    template = MessageTemplate.build(rendered, SETTINGS, DAILY, b"k" * 32)
    messages = {
        letters.personalise(
            template, Subscriber(id=f"s{n}", email=f"r{n}@example.org", name=f"R {n}")
        )
        for n in range(200)
    }
    assert len(messages) == 200
    assert email_render.mjml_compilations() == before + 1
    render((make_article(2),))
    assert email_render.mjml_compilations() == before + 2


def test_the_digest_carries_its_subject_preheader_and_view_url(three: RenderedDigest) -> None:
    assert three.subject == "The Speaker Daily: What is happening in Kazakhstan?"
    # email.app_url unset: links lead to where `serve` listens (server.host and server.port).
    assert three.view_url == "http://127.0.0.1:8080/digests/daily/daily-2024-03-05-0700/"
    assert three.preheader.startswith("What is happening in Kazakhstan? · Young voters")
    assert len(three.preheader) <= email_render.PREHEADER_CHARS
    app = make_settings(app_url="https://news.example.org/app/")
    assert render((make_article(0),), app).view_url == (
        "https://news.example.org/app/digests/daily/daily-2024-03-05-0700/"
    )


# --------------------------------------------------------------------------------- the HTML


def test_html_document_language_direction_and_colour_schemes(three: RenderedDigest) -> None:
    assert three.html.startswith("<!doctype html>")
    root = parse(three)
    assert (root.get("lang"), root.get("dir")) == ("en-GB", "ltr")
    metas = {m.get("name"): m.get("content") for m in root.iter("meta") if m.get("name")}
    assert metas["color-scheme"] == "light dark"
    assert metas["supported-color-schemes"] == "light dark"
    styles = " ".join(style.text or "" for style in root.iter("style"))
    assert "@media (prefers-color-scheme: dark)" in styles
    assert root.findtext(".//title") == three.subject

    hebrew = project_settings(
        site={"language": "he"},
        email={"from_address": "a@example.org", "postal_address": POSTAL},
        lists=[{"name": "daily", "title": "Daily"}],
    )
    rtl = parse(render((make_article(1),), hebrew))
    assert (rtl.get("lang"), rtl.get("dir")) == ("he", "rtl")
    text_cells = rtl.xpath("//td[contains(@class, 'sf-t') and not(contains(@class, 'sf-foot'))]")
    assert text_cells and {cell.get("align") for cell in text_cells} == {"right"}
    # MJML writes a direction on every section and column; it must not undo dir="rtl".
    html = render((make_article(1),), hebrew).html
    assert "direction:ltr" not in html and "direction:rtl" in html


def test_preheader_is_hidden_and_comes_first(three: RenderedDigest) -> None:
    body = parse(three).find("body")
    first = body[0]
    assert "display:none" in first.get("style").replace(" ", "")
    assert first.text_content().strip() == three.preheader
    no_articles = render((), list_settings=DAILY.model_copy(update={"subject": "Nothing new"}))
    assert no_articles.preheader == DESCRIPTION


def test_skip_link_is_the_first_thing_a_reader_meets_and_leads_to_main(
    three: RenderedDigest,
) -> None:
    root = parse(three)
    links = root.xpath("//body//a")
    assert links[0].text_content() == "Skip to content"
    assert links[0].get("href") == "#main"
    # Nothing but the hidden preheader comes before it.
    visible_before = root.xpath(
        "//a[@href='#main']/preceding::text()[normalize-space()]"
        "[not(ancestor::head) and not(ancestor::*[contains(@style, 'display:none')])]"
    )
    assert visible_before == []
    (main,) = root.xpath("//main")
    assert (main.get("id"), main.get("tabindex")) == ("main", "-1")
    titles = [h2.text_content() for h2 in main.iter("h2")]
    assert titles[0] == "What is happening in Kazakhstan?"
    assert len(titles) == 3
    assert not root.xpath("//main//h1") and root.xpath("//h1")[0].text_content() == DAILY.title


# HTML's valid global date and time: at most three digits of a second's fraction.
HTML_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})")


def test_every_time_element_carries_a_datetime_html_allows(tmp_path: Path) -> None:
    """A digest issued now, of articles scraped with microseconds: the email, its web copy and
    the archive index give whole seconds."""
    issued = datetime(2026, 12, 3, 7, 0, 4, 123456, tzinfo=UTC)
    article = make_article(1, published=datetime(2026, 12, 2, 18, 31, 9, 987654, tzinfo=UTC))
    digest = replace(make_digest((article,)), issued=issued)
    settings = SETTINGS.model_copy(update={"root": tmp_path})
    rendered = render_digest(settings, DAILY, digest)
    write_digest_archive(settings, rendered)
    pages = [
        rendered.html,
        web_copy(rendered, settings).decode(),
        render_archive_index(settings, settings.output_dir).decode(),
    ]
    values = [
        str(time.get("datetime"))
        for page in pages
        for time in lxml_html.document_fromstring(page).iter("time")
    ]
    assert len(values) == 5  # the issue and the card's article, twice; the index's issue
    assert [v for v in values if not HTML_DATETIME.fullmatch(v)] == []
    assert set(values) == {"2026-12-03T07:00:04+00:00", "2026-12-02T18:31:09+00:00"}


def test_masthead_cards_and_footer(three: RenderedDigest) -> None:
    root = parse(three)
    masthead = root.xpath("//h1/ancestor::div[1]")[0].text_content()
    assert "The Speaker" in masthead and "Tuesday 5 March 2024" in masthead
    assert root.xpath("//h1/following::time[1]/@datetime") == ["2024-03-05T07:00:00+00:00"]

    card = root.xpath("//h2")[1].xpath("ancestor::div[contains(@class, 'sf-card')][1]")[0]
    article = make_article(1)
    assert card.xpath(".//h2/a/@href") == [article.url]
    assert card.xpath(".//time/@datetime") == ["2024-03-04T17:30:00+00:00"]
    assert "4 March 2024 · By Sam Lee and Priya Shah" in card.text_content()
    assert article.summary in card.text_content()
    read = card.xpath(".//a[@class='sf-read']")[0]
    assert read.text_content() == f"Read “{article.title}”"
    assert read.get("href") == article.url

    photo = root.xpath("//img")
    assert [(img.get("src"), img.get("alt")) for img in photo] == [
        (f"{SITE}/media/story-3.jpg", "Students queue outside a polling station")
    ]

    footer = root.xpath("//main/following::*[contains(@class, 'sf-foot')]")[0]
    assert REASON in footer.text_content() and POSTAL in footer.text_content()
    assert {a.text_content(): a.get("href") for a in footer.iter("a")} == {
        "Manage preferences": placeholders.PREFERENCES_URL,
        "Unsubscribe": placeholders.UNSUBSCRIBE_URL,
        "View in browser": three.view_url,
    }


def test_layout_tables_are_presentation_and_text_is_large_enough(three: RenderedDigest) -> None:
    root = parse(three)
    tables = list(root.iter("table"))
    assert tables and all(table.get("role") == "presentation" for table in tables)
    sizes = [int(px) for px in re.findall(r"font-size:\s*(\d+)px", three.html)]
    # MJML sets 0px on layout cells (against gaps between inline blocks) and 1px on the hidden
    # preheader; every size that shows text is 14px or more, body text 16px.
    assert {s for s in sizes if s > 1} and min(s for s in sizes if s > 1) >= 14
    assert "font-size:16px;line-height:1.5" in three.html


def test_every_text_is_escaped() -> None:
    hostile = make_article(
        3,
        title=HOSTILE_TITLE,
        authors=("<img src=x onerror=alert(2)>",),
        summary="Rates & taxes: a < b, c > d </p><script>alert(3)</script>",
        image=Image(f"{SITE}/x.jpg", '" onerror="alert(4)'),
    )
    settings = project_settings(
        email={"from_address": "a@example.org", "postal_address": "1 <b>Bold</b> St & Co"},
        lists=[{"name": "daily", "title": "<i>Daily</i>", "reason": "Why? <u>Because</u>"}],
    )
    rendered = render((hostile,), settings)
    root = parse(rendered)
    assert not root.xpath("//script | //b | //i | //u | //*[@onerror]")
    assert root.xpath("//h2")[0].text_content() == HOSTILE_TITLE
    assert root.xpath("//a[@class='sf-read']")[0].text_content() == f"Read “{HOSTILE_TITLE}”"
    assert root.xpath("//img/@alt") == ['" onerror="alert(4)']
    assert (
        "By <img src=x onerror=alert(2)>" in root.xpath("//p[@class='sf-meta']")[0].text_content()
    )
    assert root.xpath("//h1")[0].text_content() == "<i>Daily</i>"
    assert "1 <b>Bold</b> St & Co" in root.text_content()
    # The text part is not HTML: there the same text appears as written.
    assert HOSTILE_TITLE in rendered.text and "&amp;" not in rendered.text


# ------------------------------------------------------------------------------------ markers


def test_markers_sit_exactly_where_the_personaliser_expects(three: RenderedDigest) -> None:
    html, text = three.html, three.text
    assert html.count(placeholders.NAME) == 1
    assert f"<p>Hello{placeholders.NAME},</p>" in html
    assert html.count(placeholders.UNSUBSCRIBE_URL) == 1
    assert html.count(placeholders.PREFERENCES_URL) == 1
    assert f'<a href="{placeholders.UNSUBSCRIBE_URL}">Unsubscribe</a>' in html
    assert f'<a href="{placeholders.PREFERENCES_URL}">Manage preferences</a>' in html

    lines = text.splitlines()
    assert [line for line in lines if placeholders.NAME in line] == [f"Hello{placeholders.NAME},"]
    assert f"Unsubscribe: {placeholders.UNSUBSCRIBE_URL}" in lines
    assert f"Manage preferences: {placeholders.PREFERENCES_URL}" in lines
    assert text.count(placeholders.UNSUBSCRIBE_URL) == text.count(placeholders.PREFERENCES_URL) == 1


@pytest.mark.parametrize(
    ("name", "greeting"), [("Jane O'Neil", "Hello Jane O'Neil,"), ("", "Hello,")]
)
def test_the_personalised_greeting_reads_well_with_and_without_a_name(
    three: RenderedDigest, name: str, greeting: str
) -> None:
    template = MessageTemplate.build(three, SETTINGS, DAILY, b"k" * 32)
    raw = letters.personalise(template, Subscriber(id="s1", email="jane@example.org", name=name))
    message = email_parser.BytesParser(policy=email_policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    parts = {part.get_content_type(): part.get_content() for part in message.iter_parts()}
    document: Any = lxml_html.document_fromstring(parts["text/html"])
    assert greeting in [p.text_content() for p in document.iter("p")]
    assert greeting in parts["text/plain"].splitlines()
    assert "SFMARK" not in parts["text/html"] + parts["text/plain"]


# ------------------------------------------------------------------------------- the text part


def test_text_part_has_its_own_structure() -> None:
    articles = (
        make_article(1),
        make_article(
            3,
            title="Council votes to keep the library open after a campaign by sixth formers",
            summary="The vote was 31 to 4. Read the minutes at "
            "https://www.example.gov.uk/council/minutes/2024/03/library-vote-full-record.pdf "
            "before Friday.",
        ),
    )
    rendered = render(articles)
    expected = f"""\
The Speaker Daily
Tuesday 5 March 2024

Hello{placeholders.NAME},

2 new articles from The Speaker.

1. Young voters turn out in record numbers (1)
   4 March 2024 · By Sam Lee and Priya Shah

   Pupils and teachers look back on a year without smartphones in class:
   fewer arguments, more reading, and a black market in old Nokias that
   nobody saw coming.

   Read it: [1]

2. Council votes to keep the library open after a campaign by sixth
   formers
   4 March 2024 · By Amelia Hart

   The vote was 31 to 4. Read the minutes at
   https://www.example.gov.uk/council/minutes/2024/03/library-vote-full-record.pdf
   before Friday.

   Read it: [2]

Links
-----

[1] {SITE}/story-1/
[2] {SITE}/story-3/

------------------------------------------------------------------------
You receive this because you subscribed to The Speaker Daily at
speakernews.co.uk.

{POSTAL}

Manage preferences: {placeholders.PREFERENCES_URL}
Unsubscribe: {placeholders.UNSUBSCRIBE_URL}
View in your browser: {rendered.view_url}
"""
    assert rendered.text == expected


def test_text_part_wraps_prose_at_72_and_never_breaks_a_url() -> None:
    long_url = "https://www.speakernews.co.uk/" + "very-long-path-segment/" * 6
    articles = tuple(
        make_article(n, summary=" ".join([SUMMARIES[n % 3], long_url, SUMMARIES[0]]))
        for n in range(4)
    )
    text = render((seed_article(), *articles)).text
    for line in text.splitlines():
        if len(line) > TEXT_WIDTH:
            assert " " not in line.strip() or re.search(r"https?://\S+$", line), line
    assert text.count(long_url) == 4
    # The text part is not an HTML dump: no tags, no entities.
    assert not re.search(r"<[a-z/]|&[a-z]+;", text)


def test_empty_digest_says_so() -> None:
    rendered = render((), list_settings=SETTINGS.lists[1])
    assert rendered.subject == "Politics this week"
    assert "Nothing new has been published" in rendered.text
    assert "Links" not in rendered.text
    assert parse(rendered).xpath("//main//p")[1].text_content().startswith("Nothing new")


# ---------------------------------------------------------------------------------- subjects


def _subject(template: str, articles: tuple[Article, ...] = (make_article(1),)) -> str:
    list_settings = DAILY.model_copy(update={"subject": template})
    return render_subject(SETTINGS, list_settings, make_digest(articles, list_settings))


def test_subject_template_sees_list_articles_and_date() -> None:
    assert _subject("{{ list.title }} – {{ date }}") == "The Speaker Daily – Tuesday 5 March 2024"
    template = "{{ articles|length }} new: {{ articles|map(attribute='title')|join(', ') }}"
    both = (make_article(1), make_article(2))
    assert _subject(template, both) == (
        "2 new: Young voters turn out in record numbers (1), Young voters turn out in record "
        "numbers (2)"
    )
    assert _subject("{{ 'ab' * 3 }}") == "ababab"


def test_subject_is_one_line_and_not_escaped() -> None:
    title = "Tom & Jerry:\n  <b>cats</b>\u2028and\tmice "
    assert _subject("{{ articles[0].title }}", (make_article(1, title=title),)) == (
        "Tom & Jerry: <b>cats</b> and mice"
    )


@pytest.mark.parametrize(
    ("template", "articles", "expected"),
    [
        ("{{ ''.__class__.__mro__ }}", (make_article(1),), "not allowed in a subject template"),
        ("{{ list.__init__.__globals__ }}", (make_article(1),), "not allowed"),
        ("{{ 'x' * 1000000000 }}", (make_article(1),), "not allowed"),
        ("{{ 9 ** 9 ** 9 }}", (make_article(1),), "not allowed"),
        ("{{ list.titel }}", (make_article(1),), "the subject template failed"),
        ("{{ list.title ", (make_article(1),), "invalid template (line 1)"),
        ("{{ list.title }}: {{ articles[0].title }}", (), "this digest has no articles"),
        ("{{ '' }}  ", (make_article(1),), "rendered an empty subject"),
    ],
)
def test_bad_subject_templates_are_config_errors_naming_the_key(
    template: str, articles: tuple[Article, ...], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _subject(template, articles)
    (problem,) = caught.value.problems
    assert problem.where == "lists[0].subject"
    assert expected in problem.message


def test_render_digest_reports_a_bad_subject_before_compiling() -> None:
    before = email_render.mjml_compilations()
    bad = SETTINGS.lists[1].model_copy(update={"subject": "{{ ().__class__ }}"})
    with pytest.raises(ConfigError, match=r"lists\[1\]\.subject"):
        render_digest(SETTINGS, bad, make_digest((make_article(1),), bad))
    assert email_render.mjml_compilations() == before


# --------------------------------------------------------------------------------- templates


def test_templates_dir_can_be_overridden_and_must_exist(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    for name in ("base.mjml.j2", "digest.mjml.j2"):
        source = (DEFAULT_TEMPLATES_DIR / "email" / name).read_text(encoding="utf-8")
        (tmp_path / "email" / name).write_text(source, encoding="utf-8")
    (tmp_path / "email" / "digest.txt.j2").write_text(
        "{{ list_title }} & {{ articles|length }}{{ unsubscribe_url }}", encoding="utf-8"
    )
    settings, list_settings = SETTINGS, DAILY
    digest = make_digest((make_article(1),))
    rendered = render_digest(settings, list_settings, digest, templates_dir=tmp_path)
    assert rendered.text == f"The Speaker Daily & 1{placeholders.UNSUBSCRIBE_URL}\n"
    with pytest.raises(FileNotFoundError, match="templates folder not found"):
        render_digest(settings, list_settings, digest, templates_dir=tmp_path / "nowhere")


def test_a_template_without_the_main_landmark_is_refused(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    base = (DEFAULT_TEMPLATES_DIR / "email" / "base.mjml.j2").read_text(encoding="utf-8")
    (tmp_path / "email" / "base.mjml.j2").write_text(
        base.replace("<mj-raw><sf-main-end></sf-main-end></mj-raw>", ""), encoding="utf-8"
    )
    for name in ("digest.mjml.j2", "digest.txt.j2"):
        source = (DEFAULT_TEMPLATES_DIR / "email" / name).read_text(encoding="utf-8")
        (tmp_path / "email" / name).write_text(source, encoding="utf-8")
    with pytest.raises(ValueError, match="<main> landmark"):
        render_digest(SETTINGS, DAILY, make_digest((make_article(1),)), templates_dir=tmp_path)


# ------------------------------------------------------------------------------------- lint


def _rules(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(finding.severity, finding.rule) for finding in findings]


def _with_html(rendered: RenderedDigest, old: str, new: str) -> RenderedDigest:
    assert rendered.html.count(old) >= 1, old
    return replace(rendered, html=rendered.html.replace(old, new, 1))


def _add_to_main(rendered: RenderedDigest, markup: str) -> RenderedDigest:
    return _with_html(rendered, "</main>", f"{markup}</main>")


def test_a_good_digest_has_no_findings(three: RenderedDigest) -> None:
    assert lint_digest(SETTINGS, three) == []
    seed_only = render((seed_article(),))
    assert lint_digest(SETTINGS, seed_only) == []


def test_image_without_alt_is_an_error_and_empty_alt_is_not(three: RenderedDigest) -> None:
    bad = _add_to_main(three, '<img src="https://www.speakernews.co.uk/banner.png">')
    (finding,) = lint_digest(SETTINGS, bad)
    assert _rules([finding]) == [("error", "img-alt")]
    assert "https://www.speakernews.co.uk/banner.png" in finding.message
    assert "banner.png" in finding.where
    decorative = _add_to_main(three, '<img src="https://www.speakernews.co.uk/rule.png" alt="">')
    assert lint_digest(SETTINGS, decorative) == []


@pytest.mark.parametrize(
    "link",
    [
        '<a href="https://www.speakernews.co.uk/a/">Read more</a>',
        '<a href="https://www.speakernews.co.uk/a/">Click here!</a>',
        '<a href="https://www.speakernews.co.uk/a/"> here </a>',
        '<a href="https://www.speakernews.co.uk/a/">More…</a>',
        '<a href="https://www.speakernews.co.uk/a/">LINK</a>',
        '<a href="https://www.speakernews.co.uk/a/">this</a>',
        '<a href="https://www.speakernews.co.uk/a/" aria-label="read more">Budget</a>',
        f'<a href="{SITE}/a/"><img src="{SITE}/i.png" alt="more"></a>',
    ],
)
def test_generic_link_text_is_an_error(three: RenderedDigest, link: str) -> None:
    (finding,) = lint_digest(SETTINGS, _add_to_main(three, link))
    assert _rules([finding]) == [("error", "link-name")]
    assert "does not say where the link goes" in finding.message
    assert "https://www.speakernews.co.uk/a/" in finding.where


def test_links_with_a_specific_name_pass(three: RenderedDigest) -> None:
    links = (
        '<a href="https://www.speakernews.co.uk/a/">Read more about the budget</a>'
        '<a href="https://www.speakernews.co.uk/a/" aria-label="Read the budget explainer">'
        "more</a><a>here</a>"  # no href: not a link
    )
    assert lint_digest(SETTINGS, _add_to_main(three, links)) == []


def test_link_without_a_name_is_an_error(three: RenderedDigest) -> None:
    bad = _add_to_main(
        three, '<a href="https://x.org/"><img src="https://www.speakernews.co.uk/i.png" alt=""></a>'
    )
    (finding,) = lint_digest(SETTINGS, bad)
    assert _rules([finding]) == [("error", "link-name")]
    assert "no text" in finding.message


@pytest.mark.parametrize(
    ("markup", "url"),
    [
        ('<a href="/about/">About The Speaker</a>', "/about/"),
        ('<a href="about.html">About The Speaker</a>', "about.html"),
        ('<a href="//cdn.example.org/x">The CDN page</a>', "//cdn.example.org/x"),
        ('<a href="javascript:alert(1)">Open the poll</a>', "javascript:alert(1)"),
        ('<img src="images/a.png" alt="A chart">', "images/a.png"),
        ('<table role="presentation" background="bg.png"><tr><td>x</td></tr></table>', "bg.png"),
    ],
)
def test_relative_urls_are_errors(three: RenderedDigest, markup: str, url: str) -> None:
    (finding,) = lint_digest(SETTINGS, _add_to_main(three, markup))
    assert _rules([finding]) == [("error", "absolute-url")]
    assert repr(url) in finding.message
    assert url in finding.where


def test_absolute_urls_fragments_and_markers_pass(three: RenderedDigest) -> None:
    markup = (
        '<a href="mailto:letters@speakernews.co.uk">Write to the editor</a>'
        '<a href="#main">Back to the top of the digest</a>'
        f'<a href="{placeholders.PREFERENCES_URL}">Change how often you hear from us</a>'
        '<a href="HTTPS://WWW.SPEAKERNEWS.CO.UK/">The Speaker home page</a>'
    )
    assert lint_digest(SETTINGS, _add_to_main(three, markup)) == []


def test_missing_unsubscribe_link_or_marker_is_an_error(three: RenderedDigest) -> None:
    no_link = _with_html(
        three, f'href="{placeholders.UNSUBSCRIBE_URL}"', f'href="{SITE}/unsubscribe/"'
    )
    (finding,) = lint_digest(SETTINGS, no_link)
    assert (_rules([finding]), finding.where) == ([("error", "unsubscribe")], "html")
    no_marker = replace(three, text=three.text.replace(placeholders.UNSUBSCRIBE_URL, "(none)"))
    (finding,) = lint_digest(SETTINGS, no_marker)
    assert (_rules([finding]), finding.where) == ([("error", "unsubscribe")], "text")


def test_postal_address_must_be_set_and_shown(three: RenderedDigest) -> None:
    unset = make_settings(postal_address="")
    (finding,) = lint_digest(unset, render((make_article(1),), unset))
    assert _rules([finding]) == [("error", "postal-address")]
    assert "email.postal_address is not set" in finding.message

    not_in_html = _with_html(three, POSTAL, "Somewhere in London")
    (finding,) = lint_digest(SETTINGS, not_in_html)
    assert (_rules([finding]), finding.where) == ([("error", "postal-address")], "html")
    not_in_text = replace(three, text=three.text.replace(POSTAL, ""))
    (finding,) = lint_digest(SETTINGS, not_in_text)
    assert (_rules([finding]), finding.where) == ([("error", "postal-address")], "text")


def test_size_warning_then_error(three: RenderedDigest) -> None:
    def padded(total: int) -> RenderedDigest:
        return _add_to_main(three, "<!--" + "x" * (total - size(three) - 7) + "-->")

    assert size(padded(WARN_HTML_BYTES)) == WARN_HTML_BYTES
    assert lint_digest(SETTINGS, padded(WARN_HTML_BYTES)) == []
    (warning,) = lint_digest(SETTINGS, padded(MAX_HTML_BYTES))
    assert _rules([warning]) == [("warning", "html-size")]
    assert "100,000 bytes" in warning.message
    (error,) = lint_digest(SETTINGS, padded(MAX_HTML_BYTES + 1))
    assert _rules([error]) == [("error", "html-size")]
    assert "100,001 bytes" in error.message and "Gmail clips" in error.message


LONG_SUMMARY = " ".join([*SUMMARIES, *SUMMARIES])  # about 1,000 characters


def test_ten_articles_with_summaries_fit_comfortably() -> None:
    rendered = render(tuple(make_article(n, summary=SUMMARIES[n % 3] * 2) for n in range(10)))
    assert size(rendered) < 0.5 * MAX_HTML_BYTES, size(rendered)
    assert lint_digest(SETTINGS, rendered) == []


def test_thirty_long_articles_are_measured_and_the_lint_agrees() -> None:
    articles = tuple(make_article(n, summary=LONG_SUMMARY) for n in range(30))
    settings = make_settings()
    wide = settings.lists[0].model_copy(update={"max_items": 30})
    rendered = render(articles, settings, wide)
    measured = size(rendered)
    size_findings = [f for f in lint_digest(settings, rendered) if f.rule == "html-size"]
    if measured > MAX_HTML_BYTES:
        (finding,) = size_findings
        assert finding.severity == "error"
        assert f"{measured:,} bytes" in finding.message
        keep = int(re.search(r"set lists\[0\]\.max_items to (\d+)", finding.message)[1])  # type: ignore[index]
        # The advice is right: that many articles fit, one more would not.
        assert size(render(articles[:keep], settings, wide)) <= MAX_HTML_BYTES
        assert size(render(articles[: keep + 1], settings, wide)) > MAX_HTML_BYTES
    else:
        assert all(f.severity == "warning" for f in size_findings)
        assert bool(size_findings) == (measured > WARN_HTML_BYTES)


def test_too_large_advice_names_the_list_setting() -> None:
    # Long enough to be over the budget whatever the template's overhead.
    huge = " ".join([LONG_SUMMARY] * 4)
    articles = tuple(make_article(n, summary=huge) for n in range(30))
    rendered = render(articles)
    assert size(rendered) > MAX_HTML_BYTES
    (finding,) = [f for f in lint_digest(SETTINGS, rendered) if f.rule == "html-size"]
    assert re.search(
        r"Leave out the last \d+ of its 30 articles: set lists\[0\]\.max_items", finding.message
    )
