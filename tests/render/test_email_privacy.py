"""No email loads anything from a host that is not ours: MJML's web fonts are off, an article
image on another host is left out, and the lint's ``remote-resource`` rule blocks a digest whose
template (an editor's override, say) would load a font, a pixel, a stylesheet, a frame... from
elsewhere. Links to articles on other sites stay links.

The browser proof (Chromium recording every request) is in test_privacy_browser.py.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import lxml.html
import pytest

from speakerfeed.config import Settings
from speakerfeed.models import Image, RenderedDigest
from speakerfeed.render.email import render_confirmation, render_digest
from speakerfeed.render.lint import Finding, lint_digest
from speakerfeed.render.pages import DEFAULT_TEMPLATES_DIR
from speakerfeed.render.resources import css_urls, resources
from tests.render.test_email import (
    DAILY,
    SETTINGS,
    make_article,
    make_digest,
    make_settings,
    render,
    seed_article,
)

SITE = "https://www.speakernews.co.uk"
APP = "https://app.speakernews.co.uk"
PIXEL = "https://t.mailtrack.example.com/open/8f3a9c.gif?u=reader"
GOOGLE_FONT = "https://fonts.googleapis.com/css2?family=Lato:wght@400;700&display=swap"


def _remote(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.rule == "remote-resource"]


def _with_main(rendered: RenderedDigest, markup: str) -> RenderedDigest:
    return replace(rendered, html=rendered.html.replace("</main>", f"{markup}</main>", 1))


@pytest.fixture(scope="module")
def three() -> RenderedDigest:
    return render((seed_article(), make_article(1), make_article(3)))


# ---------------------------------------------------------------------------- our own templates


def test_our_emails_name_no_other_host_and_no_web_font() -> None:
    digest = render((seed_article(), make_article(1), make_article(3)))
    confirmation = render_confirmation(SETTINGS, DAILY, f"{APP}/confirm/daily/abc.def")
    for html in (digest.html, confirmation.html):
        document = lxml.html.document_fromstring(html)
        assert [str(r) for r in resources(document) if not r.url.startswith(SITE)] == []
        assert "googleapis" not in html and "@import" not in html
        assert document.xpath("//link") == []
    assert lint_digest(SETTINGS, digest) == []


def test_an_article_image_on_another_host_is_left_out_and_its_card_stays() -> None:
    upstream = make_article(
        3,
        title="Campus housing costs, by city",
        url="https://www.partner-paper.example.net/housing/",
        image=Image("https://images.partner-cdn.example.net/housing.jpg?w=1200", "A rent chart"),
    )
    ours = make_article(6, image=Image(f"{SITE}/media/turnout.jpg", "Queue at a polling station"))
    on_app = make_article(9, image=Image(f"{APP}/media/map.png", "Map of polling stations"))
    rendered = render((upstream, ours, on_app), make_settings(app_url=APP))
    document = lxml.html.document_fromstring(rendered.html)
    assert document.xpath("//img/@src") == [f"{SITE}/media/turnout.jpg", f"{APP}/media/map.png"]
    links = document.xpath("//h2/a[text()='Campus housing costs, by city']/@href")
    assert links == ["https://www.partner-paper.example.net/housing/"]
    assert lint_digest(make_settings(app_url=APP), rendered) == []


# ------------------------------------------------------------------ an editor's template, blocked


def _templates_with(tmp_path: Path, *edits: tuple[str, str, str]) -> Path:
    """A copy of the shipped templates with (file name, old, new) edits made."""
    folder = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES_DIR, folder)
    for name, old, new in edits:
        path = folder / name
        source = path.read_text(encoding="utf-8")
        assert old in source, (name, old)
        path.write_text(source.replace(old, new, 1), encoding="utf-8")
    return folder


def _render_with(folder: Path, settings: Settings = SETTINGS) -> RenderedDigest:
    digest = make_digest((make_article(1), make_article(2)))
    return render_digest(settings, settings.lists[0], digest, templates_dir=folder)


def test_a_template_with_a_google_font_is_blocked(tmp_path: Path) -> None:
    base = "email/base.mjml.j2"
    folder = _templates_with(
        tmp_path,
        (base, "<mj-attributes>", f'<mj-font name="Lato" href="{GOOGLE_FONT}" /><mj-attributes>'),
        (base, '<mj-all font-family="', '<mj-all font-family="Lato, '),
    )
    findings = _remote(lint_digest(SETTINGS, _render_with(folder)))
    assert findings, "a Google Font must block the digest"
    assert {f.severity for f in findings} == {"error"}
    assert all("fonts.googleapis.com" in f.message for f in findings)
    # MJML writes it twice: a <link rel=stylesheet> and an @import in a <style>.
    assert {f.where for f in findings} == {
        f'html: <link href="{GOOGLE_FONT}">',
        f'html: <style css="{GOOGLE_FONT}">',
    }
    # With email.app_url unset, the app is where `serve` listens (127.0.0.1 by default).
    assert (
        "not the site's or the app's host (127.0.0.1 or www.speakernews.co.uk)"
        in findings[0].message
    )


def test_a_template_with_a_one_pixel_tracker_is_blocked(tmp_path: Path) -> None:
    pixel = f'<img src="{PIXEL}" width="1" height="1" alt="" style="display:block">'
    folder = _templates_with(
        tmp_path,
        ("email/digest.mjml.j2", "<p>Hello{{ name }},</p>", f"<p>Hello{{{{ name }}}},</p>{pixel}"),
    )
    (finding,) = lint_digest(SETTINGS, _render_with(folder))
    assert (finding.severity, finding.rule) == ("error", "remote-resource")
    assert finding.where == f'html: <img src="{PIXEL}">'
    assert "t.mailtrack.example.com" in finding.message
    assert "would learn who opened the email" in finding.message


def test_the_app_host_is_ours_too(tmp_path: Path) -> None:
    logo = f'<img src="{APP}/static/logo.png" width="120" alt="The Speaker">'
    folder = _templates_with(
        tmp_path,
        ("email/digest.mjml.j2", "<p>Hello{{ name }},</p>", f"{logo}<p>Hello{{{{ name }}}},</p>"),
    )
    settings = make_settings(app_url=APP)
    assert lint_digest(settings, _render_with(folder, settings)) == []
    # Without an app URL of its own, the app is the site: the same logo is another host's.
    (finding,) = lint_digest(SETTINGS, _render_with(folder))
    assert finding.rule == "remote-resource" and "app.speakernews.co.uk" in finding.message


# ---------------------------------------------------------------- every way to fetch, in the HTML

EVIL = "https://cdn.tracker.example.org"


@pytest.mark.parametrize(
    ("markup", "where"),
    [
        (f'<img src="{SITE}/a.png" srcset="{SITE}/a.png 1x, {EVIL}/a2.png 2x" alt="Chart">',
         f'<img srcset="{EVIL}/a2.png">'),
        (f'<picture><source srcset="{EVIL}/p.webp" type="image/webp"><img src="{SITE}/p.png" '
         'alt="Photo"></picture>', f'<source srcset="{EVIL}/p.webp">'),
        (f'<video poster="{EVIL}/poster.jpg"></video>', f'<video poster="{EVIL}/poster.jpg">'),
        (f'<audio><source src="{EVIL}/a.mp3"></audio>', f'<source src="{EVIL}/a.mp3">'),
        (f'<iframe src="{EVIL}/poll" title="Poll"></iframe>', f'<iframe src="{EVIL}/poll">'),
        (f'<script src="{EVIL}/t.js"></script>', f'<script src="{EVIL}/t.js">'),
        (f'<object data="{EVIL}/o.swf"></object>', f'<object data="{EVIL}/o.swf">'),
        (f'<embed src="{EVIL}/e.swf">', f'<embed src="{EVIL}/e.swf">'),
        (f'<link rel="stylesheet" href="{EVIL}/s.css">', f'<link href="{EVIL}/s.css">'),
        (f'<link rel="Preload" as="font" href="{EVIL}/f.woff2">', f'<link href="{EVIL}/f.woff2">'),
        (f'<link rel="shortcut icon" href="{EVIL}/favicon.ico">',
         f'<link href="{EVIL}/favicon.ico">'),
        (f"<div style=\"background-image: url('{EVIL}/bg.png')\">Hi</div>",
         f'<div style="{EVIL}/bg.png">'),
        (f'<div style="background:URL( {EVIL}/bg2.png )">Hi</div>',
         f'<div style="{EVIL}/bg2.png">'),
        (f'<style>@import "{EVIL}/more.css"; p {{ color: red }}</style>',
         f'<style css="{EVIL}/more.css">'),
        (f"<style>@font-face {{ font-family: X; src: url({EVIL}/x.woff2) format('woff2') }}"
         "</style>", f'<style css="{EVIL}/x.woff2">'),
        (f'<div style="background-image: image-set(\'{EVIL}/hd.png\' 2x)">Hi</div>',
         f'<div style="{EVIL}/hd.png">'),
        (f'<table role="presentation" background="{EVIL}/bg.gif"><tr><td>x</td></tr></table>',
         f'<table background="{EVIL}/bg.gif">'),
        (f'<svg width="1" height="1"><image href="{EVIL}/s.png"/></svg>',
         f'<image href="{EVIL}/s.png">'),
        ('<img src="//cdn.tracker.example.org/p.gif" alt="">',
         '<img src="//cdn.tracker.example.org/p.gif">'),
        (f'<!--[if mso]><v:rect fill="true"><v:fill src="{EVIL}/outlook.gif" /></v:rect>'
         "<![endif]-->", f'<v:fill src="{EVIL}/outlook.gif">'),
    ],
)  # fmt: skip
def test_every_way_of_loading_from_another_host_is_blocked(
    three: RenderedDigest, markup: str, where: str
) -> None:
    findings = _remote(lint_digest(SETTINGS, _with_main(three, markup)))
    assert [f.where for f in findings] == [f"html: {where}"]
    assert findings[0].severity == "error"


@pytest.mark.parametrize(
    "markup",
    [
        '<a href="https://www.partner-paper.example.net/story/">The partner paper\'s story</a>',
        f'<link rel="canonical" href="{EVIL}/page">',
        f'<link rel="alternate" type="application/rss+xml" href="{EVIL}/rss.xml">',
        f'<img src="{SITE}/media/chart.png" alt="Turnout chart">',
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="">',
        f"<!-- a note about {EVIL}/x.png -->",
        f'<div style="color: red">url({EVIL}/text-only.png) written in prose</div>',
        '<svg width="10" height="10"><use href="#dot"/></svg>',
    ],
)
def test_links_our_own_hosts_and_inline_data_pass(three: RenderedDigest, markup: str) -> None:
    assert _remote(lint_digest(SETTINGS, _with_main(three, markup))) == []


def test_css_urls_reads_the_forms_css_allows() -> None:
    css = (
        "/* url(https://commented.example/x.png) */"
        "@import url('https://a.example/a.css') screen;"
        '@import "https://b.example/b.css";'
        "p { background: url(  https://c.example/c.png  ) }"
        'q { background: url("https://d.example/d.png"), url(e.png) }'
    )
    assert list(css_urls(css)) == [
        "https://a.example/a.css",
        "https://c.example/c.png",
        "https://d.example/d.png",
        "e.png",
        "https://b.example/b.css",
    ]
