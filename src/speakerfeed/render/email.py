"""A digest as email: responsive, accessible HTML (Jinja2 -> MJML -> HTML) and a plain-text part.

A digest is rendered once for all its subscribers. What differs per subscriber is left as the
markers of ``mail.placeholders``, each exactly once per part, for ``speakerfeed.mail`` to
fill in as bytes. The contract, for a subscriber named Jane O'Neil:

- ``NAME`` sits in the greeting, ``Hello`` + NAME + ``,``. It becomes a space and the name, or
  nothing when the name is empty, so the line reads "Hello Jane O'Neil," or "Hello,". HTML part:
  ``" " + html.escape(name)`` (`` Jane O&#x27;Neil``); text part: ``" " + name``.
- ``UNSUBSCRIBE_URL`` is a whole ``href`` value in the HTML (``<a href="…">Unsubscribe</a>``)
  and follows "Unsubscribe: " in the text: the signed absolute https URL of the one-click
  unsubscribe page: ``html.escape``-d in the HTML part, unchanged in the text part.
- ``PREFERENCES_URL`` likewise, for "Manage preferences".

The templates are ``templates/email/digest.mjml.j2`` (extending ``base.mjml.j2``, autoescaped) and
``templates/email/digest.txt.j2`` (not escaped). MJML is compiled exactly once per digest; the
module counts compilations so tests and benchmarks can show the count never grows with the number
of subscribers.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import lxml.html
import markupsafe
import mjml

from speakerfeed.config import ListSettings, Settings
from speakerfeed.mail import placeholders
from speakerfeed.models import Article, Digest, RenderedDigest
from speakerfeed.render.pages import (
    day_text,
    html_datetime,
    local_time,
    long_date,
    text_direction,
)
from speakerfeed.render.resources import host_of
from speakerfeed.render.subject import render_subject
from speakerfeed.render.templates import loader, search_path

__all__ = [
    "HTML_TEMPLATE",
    "MJML_COMPILATIONS",
    "TEXT_TEMPLATE",
    "TEXT_WIDTH",
    "DigestNote",
    "RenderedMail",
    "mjml_compilations",
    "our_hosts",
    "render_confirmation",
    "render_digest",
    "render_welcome",
]

HTML_TEMPLATE = "email/digest.mjml.j2"
TEXT_TEMPLATE = "email/digest.txt.j2"
CONFIRM_HTML_TEMPLATE = "email/confirm.mjml.j2"
CONFIRM_TEXT_TEMPLATE = "email/confirm.txt.j2"
WELCOME_HTML_TEMPLATE = "email/welcome.mjml.j2"
WELCOME_TEXT_TEMPLATE = "email/welcome.txt.j2"
TEXT_WIDTH = 72
PREHEADER_CHARS = 140  # about what the widest inbox list shows
# MJML takes only whole elements in mj-raw, so base.mjml.j2 marks where <main> opens and closes.
_MAIN_START = ("<sf-main-start></sf-main-start>", '<main id="main" tabindex="-1">')
_MAIN_END = ("<sf-main-end></sf-main-end>", "</main>")

# MJML compilations since the process started. Read it as email.MJML_COMPILATIONS (a from-import
# copies the number once) or call mjml_compilations().
MJML_COMPILATIONS = 0


def mjml_compilations() -> int:
    """How many times this process has compiled MJML: one per render_digest call."""
    return MJML_COMPILATIONS


@dataclass(frozen=True, slots=True)
class DigestNote:
    """An editor's note for one digest, shown above its articles (made by digest.note)."""

    heading: str  # the note region's heading, e.g. "From the editor"
    html: str  # sanitised HTML (sources.sanitize), trusted by the template as it is


def render_digest(
    settings: Settings,
    list_settings: ListSettings,
    digest: Digest,
    *,
    templates_dir: Path | None = None,
    note: DigestNote | None = None,
) -> RenderedDigest:
    """The digest's subject, preheader, HTML and text, with per-subscriber markers in place,
    and ``note`` above the articles when there is one.

    ConfigError (naming ``lists[N].subject``) when the list's subject template fails.
    """
    environment = _environment(_folder(settings, templates_dir))
    subject = render_subject(settings, list_settings, digest)
    view_url = f"{settings.app_url}/{digest.archive_path}"
    context = _context(settings, list_settings, digest, subject, view_url)
    context["note"] = _note_view(note)
    source = environment.get_template(HTML_TEMPLATE).render(context)
    html = _with_main_landmark(_compile(source))
    text = environment.get_template(TEXT_TEMPLATE).render(context).rstrip("\n") + "\n"
    return RenderedDigest(
        digest=digest,
        subject=subject,
        preheader=context["preheader"],
        html=html,
        text=text,
        view_url=view_url,
    )


# --------------------------------------------------------------------------------------- context


def _context(
    settings: Settings, list_settings: ListSettings, digest: Digest, subject: str, view_url: str
) -> dict[str, Any]:
    zone = ZoneInfo(settings.site.timezone)
    language = settings.site.language
    hosts = our_hosts(settings)
    return {
        "lang": language,
        "dir": text_direction(language),
        "title": subject,
        "preheader": _preheader(digest.articles, list_settings),
        "site_title": settings.site.title,
        "site_url": settings.site.url + "/",
        "list_title": list_settings.title,
        "list_description": list_settings.description,
        "reason": _reason(list_settings),
        "date_iso": html_datetime(digest.issued),
        "date_text": long_date(digest.issued),
        "articles": [_article_view(article, zone, hosts) for article in digest.articles],
        "postal_address": settings.email.postal_address,
        "view_url": view_url,
        "name": placeholders.NAME,
        "unsubscribe_url": placeholders.UNSUBSCRIBE_URL,
        "preferences_url": placeholders.PREFERENCES_URL,
    }


def _note_view(note: DigestNote | None) -> dict[str, Any] | None:
    if note is None:
        return None
    # Markup: the HTML went through the article allow-list already; autoescape would show tags.
    html = markupsafe.Markup(note.html)  # noqa: S704 - sanitised by sources.sanitize
    return {"heading": note.heading, "html": html, "text": _note_text(note.html)}


_LIST_TAGS = frozenset({"ul", "ol"})


def _note_text(html: str) -> str:
    """The note's HTML as the text part shows it: a paragraph per block, wrapped; list items
    with a dash or their number, a quotation after "> "; a link's URL after its text; an image
    as its alt text."""
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    for image in root.iter("img"):
        image.tail = f"[{image.get('alt') or 'image'}]" + (image.tail or "")
    for link in root.iter("a"):
        href = link.get("href", "")
        if href and href.removeprefix("mailto:") != link.text_content().strip():
            link.tail = f" <{href}>" + (link.tail or "")
    blocks = [_wrap(root.text)] if root.text and root.text.strip() else []
    for element in root:
        if element.tag in _LIST_TAGS:
            for number, item in enumerate(element.iterchildren("li"), start=1):
                bullet = f"{number}. " if element.tag == "ol" else "- "
                blocks.append(_wrap(bullet + item.text_content(), hanging=" " * len(bullet)))
        elif element.tag == "pre":
            blocks.append(element.text_content().rstrip("\n"))
        elif element.tag == "hr":
            blocks.append("* * *")
        elif element.tag == "blockquote":
            blocks.append(_wrap(element.text_content(), indent="> "))
        elif element.text_content().strip():
            blocks.append(_wrap(element.text_content()))
        if element.tail and element.tail.strip():
            blocks.append(_wrap(element.tail))
    return "\n\n".join(block for block in blocks if block.strip())


def our_hosts(settings: Settings) -> frozenset[str]:
    """The hosts an email may load from: the site's and the app's."""
    return frozenset({host_of(settings.site.url), host_of(settings.app_url)} - {""})


def _article_view(article: Article, zone: ZoneInfo, hosts: frozenset[str]) -> dict[str, str]:
    published = local_time(article.published, zone)
    # An image on another host (an upstream feed's, a CDN's) would tell that host who opened
    # the email: such a card goes without its image, and the link to the article stays.
    image = article.image if article.image and host_of(article.image.url) in hosts else None
    return {
        "title": article.title,
        "url": article.url,
        "date_iso": html_datetime(published),
        "date_text": day_text(published),
        "byline": _byline(article.authors),
        "summary": " ".join(article.summary.split()),
        "image_url": image.url if image else "",
        "image_alt": image.alt if image else "",
    }


def _reason(list_settings: ListSettings) -> str:
    """The footer's "why you receive this": the list's own sentence, else one that is true of
    every subscriber (each confirmed a sign-up)."""
    return list_settings.reason or (
        f"You receive this because you subscribed to {list_settings.title}."
    )


def _byline(authors: Sequence[str]) -> str:
    names = [name for name in authors if name.strip()]
    if not names:
        return ""
    if len(names) == 1:
        return f"By {names[0]}"
    return f"By {', '.join(names[:-1])} and {names[-1]}"


def _preheader(articles: Sequence[Article], list_settings: ListSettings) -> str:
    """The line inboxes show after the subject: the first titles, else what the list is."""
    if not articles:
        return list_settings.description or list_settings.title
    text = " · ".join(" ".join(article.title.split()) for article in articles[:3])
    return textwrap.shorten(text, PREHEADER_CHARS, placeholder=" …")


# ------------------------------------------------------------------------------------- machinery


def _compile(source: str) -> str:
    global MJML_COMPILATIONS
    MJML_COMPILATIONS += 1
    # fonts={}: MJML otherwise links Google Fonts for any font named in the template, and every
    # open would be reported to Google. The templates use system font stacks only.
    html: str = mjml.mjml2html(source, disable_comments=True, fonts={})
    # mj-image writes height="auto" on <img>, which HTML does not allow (a number only); the
    # inline style says height:auto already. Autoescaping turns any quote in the data into
    # &#34;, so the literal attribute can only be MJML's.
    return html.replace(' height="auto"', "")


def _with_main_landmark(html: str) -> str:
    for placeholder, element in (_MAIN_START, _MAIN_END):
        if html.count(placeholder) != 1:
            raise ValueError(
                f"the email template must hold {placeholder} exactly once "
                f"(found {html.count(placeholder)}): it marks the <main> landmark"
            )
        html = html.replace(placeholder, element)
    return html


def _wrap(text: str, indent: str = "", hanging: str = "") -> str:
    """Prose wrapped for the text part, every line indented by ``indent`` and all but the first
    by ``hanging`` more; words are never broken, so URLs stay whole."""
    return textwrap.fill(
        " ".join(text.split()),
        TEXT_WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + hanging,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _folder(settings: Settings, templates_dir: Path | None) -> tuple[Path, ...]:
    # The editor's overrides ([build] templates_dir) unless the caller names a folder.
    return search_path(templates_dir or settings.templates_dir)


@functools.lru_cache(maxsize=8)
def _environment(folders: tuple[Path, ...]) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=loader(folders),
        # MJML templates are escaped; the text part ("*.txt.j2") must not be.
        autoescape=jinja2.select_autoescape(disabled_extensions=("txt.j2",), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["wrap"] = _wrap
    return environment


# ---------------------------------------------------------------------------------- confirmation


@dataclass(frozen=True, slots=True)
class RenderedMail:
    subject: str
    html: str
    text: str


def render_confirmation(
    settings: Settings,
    list_settings: ListSettings,
    confirm_url: str,
    *,
    templates_dir: Path | None = None,
) -> RenderedMail:
    """The double opt-in email for ``list_settings`` with its signed ``confirm_url``."""
    environment = _environment(_folder(settings, templates_dir))
    subject = f"Confirm your subscription to {list_settings.title}"
    language = settings.site.language
    context = {
        "lang": language,
        "dir": text_direction(language),
        "title": subject,
        "preheader": f"One click and you will receive {list_settings.title}.",
        "site_title": settings.site.title,
        "site_url": settings.site.url + "/",
        "list_title": list_settings.title,
        "list_description": list_settings.description,
        "confirm_url": confirm_url,
        "hours": settings.signup.confirm_link_hours,
        "postal_address": settings.email.postal_address,
    }
    source = environment.get_template(CONFIRM_HTML_TEMPLATE).render(context)
    html = _with_main_landmark(_compile(source))
    text = environment.get_template(CONFIRM_TEXT_TEMPLATE).render(context).rstrip("\n") + "\n"
    return RenderedMail(subject=subject, html=html, text=text)


# --------------------------------------------------------------------------------------- welcome


def render_welcome(
    settings: Settings,
    list_settings: ListSettings,
    *,
    next_issue: datetime | None,
    latest_url: str,
    templates_dir: Path | None = None,
) -> RenderedMail:
    """The welcome email of ``list_settings``, with the digest's per-subscriber markers (the
    name, the unsubscribe and preferences links) for speakerfeed.mail to fill in.

    ``next_issue`` is the next scheduled issue in the zone to show it in (None: none planned);
    ``latest_url`` the latest issue's web copy ("" when there is none yet).
    """
    environment = _environment(_folder(settings, templates_dir))
    subject = f"Welcome to {list_settings.title}"
    language = settings.site.language
    next_text = ""
    if next_issue is not None:
        next_text = f"{long_date(next_issue)} at {next_issue:%H:%M} ({next_issue.tzinfo})"
    context = {
        "lang": language,
        "dir": text_direction(language),
        "title": subject,
        "preheader": list_settings.description or f"You are subscribed to {list_settings.title}.",
        "site_title": settings.site.title,
        "site_url": settings.site.url + "/",
        "list_title": list_settings.title,
        "list_description": list_settings.description,
        "reason": _reason(list_settings),
        "next_issue_iso": html_datetime(next_issue) if next_issue else "",
        "next_issue_text": next_text,
        "latest_url": latest_url,
        "postal_address": settings.email.postal_address,
        "name": placeholders.NAME,
        "unsubscribe_url": placeholders.UNSUBSCRIBE_URL,
        "preferences_url": placeholders.PREFERENCES_URL,
    }
    source = environment.get_template(WELCOME_HTML_TEMPLATE).render(context)
    html = _with_main_landmark(_compile(source))
    text = environment.get_template(WELCOME_TEXT_TEMPLATE).render(context).rstrip("\n") + "\n"
    return RenderedMail(subject=subject, html=html, text=text)
