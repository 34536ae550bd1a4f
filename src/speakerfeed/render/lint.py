"""The pre-send check of a rendered digest: what would make it clipped, inaccessible, broken or
unlawful to send. An "error" blocks the send; a "warning" is reported only.

Rules (``Finding.rule``):

- ``html-size``: the HTML is over 100,000 bytes (an error; a warning from 90,000). Gmail clips a
  message whose HTML passes about 102 KB and hides the rest, unsubscribe link included. The
  margin is for the personalised links and name, which are longer than their markers.
- ``img-alt``: an ``<img>`` without an ``alt`` attribute (a decorative image has ``alt=""``).
- ``link-name``: a link with no accessible name, or a generic one ("read more", "click here"...).
  The name is the ``aria-label`` when there is one, else the text with any images' alt text.
- ``absolute-url``: an ``href``, ``src`` or ``background`` that is not an absolute http(s),
  mailto or tel URL, an in-page ``#fragment``, or a marker of ``render.placeholders`` (those
  are filled with https URLs). An email has no base address to resolve a relative URL against.
- ``remote-resource``: the HTML makes the reader's client fetch something (an image, a
  stylesheet or font, a CSS ``url()`` or ``@import``, a frame, a script, a video...) from a host
  that is neither the site's nor the app's: that host would learn who opened the email, and
  when. Links (``<a href>``) are fine: they are fetched only when followed.
- ``unsubscribe``: no link to the unsubscribe marker in the HTML, or no marker in the text part.
- ``postal-address``: no ``email.postal_address``, or it is missing from either part.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import lxml.html

from speakerfeed.config import Settings
from speakerfeed.mail import placeholders
from speakerfeed.models import RenderedDigest
from speakerfeed.render.email import our_hosts
from speakerfeed.render.resources import foreign_resources

__all__ = [
    "GENERIC_LINK_TEXT",
    "MAX_HTML_BYTES",
    "WARN_HTML_BYTES",
    "Finding",
    "lint_digest",
    "lint_email",
]

MAX_HTML_BYTES = 100_000
WARN_HTML_BYTES = 90_000
GENERIC_LINK_TEXT = frozenset(
    {"read more", "click here", "here", "more", "link", "this", "click", "read", "more info"}
)

Severity = Literal["error", "warning"]

_ABSOLUTE_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
_URL_ATTRIBUTES = ("href", "src", "background")
_PUNCTUATION = re.compile(r"[^\w\s]+")


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    rule: str
    message: str
    where: str  # "html" or "text", and for one element, which: "html: <a href=…>"

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.rule}: {self.message}"


def lint_digest(settings: Settings, rendered: RenderedDigest) -> list[Finding]:
    """Every problem found in the digest, errors and warnings, in document order per rule."""
    return _lint(
        settings,
        rendered.html,
        rendered.text,
        lambda size: _how_to_shrink(settings, rendered, size),
    )


def lint_email(settings: Settings, html: str, text: str) -> list[Finding]:
    """The same rules for another email of a list made with the same layout (the welcome):
    its HTML and text with the digest's markers."""
    return _lint(settings, html, text, lambda size: "Shorten the list's texts.")


def _lint(
    settings: Settings, html: str, text: str, how_to_shrink: Callable[[int], str]
) -> list[Finding]:
    document = lxml.html.document_fromstring(html)
    return [
        *_size(html, how_to_shrink),
        *_images(document),
        *_link_names(document),
        *_urls(document),
        *_remote(settings, document),
        *_unsubscribe(document, text),
        *_postal_address(settings, document, text),
    ]


# ------------------------------------------------------------------------------------------ size


def _size(html: str, how_to_shrink: Callable[[int], str]) -> Iterator[Finding]:
    size = len(html.encode("utf-8"))
    if size <= WARN_HTML_BYTES:
        return
    if size <= MAX_HTML_BYTES:
        yield Finding(
            "warning",
            "html-size",
            f"the HTML is {size:,} bytes, close to the {MAX_HTML_BYTES:,}-byte budget "
            "(Gmail clips messages over about 102 KB)",
            "html",
        )
        return
    yield Finding(
        "error",
        "html-size",
        f"the HTML is {size:,} bytes, over the {MAX_HTML_BYTES:,}-byte budget: Gmail clips a "
        "message over about 102 KB and hides the rest, unsubscribe link included. "
        + how_to_shrink(size),
        "html",
    )


def _how_to_shrink(settings: Settings, rendered: RenderedDigest, size: int) -> str:
    """Which setting to lower, and to what: cards are dropped from the end (the oldest) until the
    HTML fits, each card measured from its heading to the next."""
    count = len(rendered.digest.articles)
    key = _list_key(settings, rendered.digest.list_name)
    html = rendered.html
    starts = [m.start() for m in re.finditer(r"<h2[\s>]", html)]
    end = html.find("</main>")
    if count == 0 or len(starts) != count or end < starts[-1]:
        return f"Send fewer articles (lower {key}) or shorten the summaries."
    bounds = [*starts, end]
    card_sizes = [len(html[a:b].encode("utf-8")) for a, b in itertools.pairwise(bounds)]
    dropped = 0
    while dropped < count and size > MAX_HTML_BYTES:
        dropped += 1
        size -= card_sizes[-dropped]
    if size > MAX_HTML_BYTES:
        return "It is too large even without its articles: shorten the list's texts."
    return (
        f"Leave out the last {dropped} of its {count} articles: set {key} to {count - dropped} "
        "or lower, or shorten the summaries."
    )


def _list_key(settings: Settings, list_name: str) -> str:
    for index, configured in enumerate(settings.lists):
        if configured.name == list_name:
            return f"lists[{index}].max_items"
    return "the list's max_items"


# -------------------------------------------------------------------------------------- elements


def _images(document: lxml.html.HtmlElement) -> Iterator[Finding]:
    for image in document.iter("img"):
        if image.get("alt") is None:
            src = image.get("src", "")
            yield Finding(
                "error",
                "img-alt",
                f'image {src!r} has no alt attribute: describe it, or use alt="" if it is '
                "decorative",
                f'html: <img src="{src}">',
            )


def _accessible_name(link: lxml.html.HtmlElement) -> str:
    label = (link.get("aria-label") or "").strip()
    if label:
        return " ".join(label.split())
    parts = [link.text_content(), *(img.get("alt", "") for img in link.iter("img"))]
    return " ".join(" ".join(parts).split())


def _link_names(document: lxml.html.HtmlElement) -> Iterator[Finding]:
    for link in document.iter("a"):
        if link.get("href") is None:
            continue
        name = _accessible_name(link)
        where = f'html: <a href="{link.get("href")}">'
        if not name:
            yield Finding("error", "link-name", "a link has no text, alt text or aria-label", where)
        elif " ".join(_PUNCTUATION.sub(" ", name.casefold()).split()) in GENERIC_LINK_TEXT:
            yield Finding(
                "error",
                "link-name",
                f"link text {name!r} does not say where the link goes: name the article or "
                "page, e.g. “Read ‘Budget 2024 explained’”",
                where,
            )


def _is_absolute(url: str) -> bool:
    url = url.strip()
    if url in placeholders.ALL or url.startswith("#"):
        return True
    parts = urlsplit(url)
    if parts.scheme.lower() not in _ABSOLUTE_SCHEMES:
        return False
    return bool(parts.netloc) or parts.scheme.lower() in ("mailto", "tel")


def _urls(document: lxml.html.HtmlElement) -> Iterator[Finding]:
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        for attribute in _URL_ATTRIBUTES:
            url = element.get(attribute)
            if url is None or _is_absolute(url):
                continue
            what = _describe(element)
            yield Finding(
                "error",
                "absolute-url",
                f"{attribute}={url!r} on {what} is not an absolute http(s) URL: an email has "
                "no address to resolve it against",
                f'html: <{element.tag} {attribute}="{url}">',
            )


def _describe(element: lxml.html.HtmlElement) -> str:
    if element.tag == "a":
        return f"the link {_accessible_name(element)!r}"
    if element.tag == "img":
        return f"the image {element.get('alt', '')!r}"
    return f"<{element.tag}>"


def _remote(settings: Settings, document: lxml.html.HtmlElement) -> Iterator[Finding]:
    ours = our_hosts(settings)
    named = " or ".join(sorted(ours))
    for resource in foreign_resources(document, ours):
        yield Finding(
            "error",
            "remote-resource",
            f"<{resource.element}> loads {resource.url!r} from {resource.host}, which is not "
            f"the site's or the app's host ({named}): that host would learn who opened the "
            "email and when. Serve it from the site, or leave it out.",
            f"html: {resource}",
        )


# ---------------------------------------------------------------------------------- the law's due


def _unsubscribe(document: lxml.html.HtmlElement, text: str) -> Iterator[Finding]:
    marker = placeholders.UNSUBSCRIBE_URL
    if not any(link.get("href") == marker for link in document.iter("a")):
        yield Finding(
            "error",
            "unsubscribe",
            f'no unsubscribe link: the HTML needs <a href="{marker}">',
            "html",
        )
    if marker not in text:
        yield Finding(
            "error",
            "unsubscribe",
            f"no unsubscribe URL: the text part needs the {marker} marker",
            "text",
        )


def _postal_address(
    settings: Settings, document: lxml.html.HtmlElement, text: str
) -> Iterator[Finding]:
    address = " ".join(settings.email.postal_address.split())
    if not address:
        yield Finding(
            "error",
            "postal-address",
            "email.postal_address is not set: every email must show the sender's postal address",
            "config",
        )
        return
    body = document.find("body")
    html_text = (body if body is not None else document).text_content()
    for where, content in (("html", html_text), ("text", text)):
        if address not in " ".join(content.split()):
            yield Finding(
                "error",
                "postal-address",
                f"the postal address {address!r} (email.postal_address) is not in the {where} part",
                where,
            )
