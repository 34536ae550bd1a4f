"""What an HTML document makes its reader's client fetch on opening, and from which hosts.

A link (``<a href>``) is fetched only when followed, so it is not a resource; an image, a
stylesheet, a font, a frame, a script, a video's poster or a CSS background is fetched as soon as
the email or page is opened, and tells the host who opened it and when. The document is parsed
(lxml); only CSS text, which lxml leaves as text, is searched for ``url()`` and ``@import``.
Outlook's conditional comments (``<!--[if mso]>…<![endif]-->``) are parsed too: Outlook fetches
what they hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import lxml.etree
import lxml.html

__all__ = ["Resource", "css_urls", "foreign_resources", "host_of", "resources"]

# Attributes whose URL is fetched on sight, on any element (SVG's href: only on the few below).
_FETCHED_ATTRIBUTES = ("src", "poster", "background", "data", "lowsrc", "dynsrc")
_SRCSET_ATTRIBUTES = ("srcset", "imagesrcset")
_SVG_FETCHING = frozenset({"image", "use", "feimage"})
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
# <link rel> values whose href the client fetches; canonical, alternate and the like it does not.
_FETCHING_RELS = frozenset(
    {
        "stylesheet",
        "preload",
        "prefetch",
        "modulepreload",
        "preconnect",
        "dns-prefetch",
        "prerender",
        "icon",
        "apple-touch-icon",
        "apple-touch-icon-precomposed",
        "mask-icon",
        "manifest",
    }
)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_CSS_IMAGE_SET = re.compile(r"""image-set\(([^)]*)\)""", re.IGNORECASE)
_CSS_STRING = re.compile(r""""([^"]*)"|'([^']*)'""")
_CONDITIONAL = re.compile(r"^\s*\[if [^\]]*\]>(.*?)<!\[endif\]\s*$", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Resource:
    url: str
    element: str  # the tag, e.g. "img", "link", "style"
    attribute: str  # "src", "href", "style", "css" (a <style> element's text), ...

    @property
    def host(self) -> str:
        return host_of(self.url)

    def __str__(self) -> str:
        return f'<{self.element} {self.attribute}="{self.url}">'


def host_of(url: str) -> str:
    """The URL's host in lower case; "" for a relative, data:, cid: or otherwise host-less URL."""
    try:
        return (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:  # a malformed URL such as "http://[::1": no host a client would reach
        return ""


def resources(document: lxml.html.HtmlElement) -> Iterator[Resource]:
    """Every URL the document's client fetches on opening it, in document order."""
    for element in document.iter():
        if isinstance(element, lxml.html.HtmlComment):
            yield from _conditional(element.text or "")
            continue
        if not isinstance(element.tag, str):
            continue  # processing instructions and entities
        tag = element.tag.rsplit("}", 1)[-1].lower()
        yield from _element(element, tag)


def foreign_resources(
    document: lxml.html.HtmlElement, allowed_hosts: Iterable[str]
) -> Iterator[Resource]:
    """The resources fetched from a host not in ``allowed_hosts`` (relative and data: URLs are
    the document's own)."""
    allowed = {host.lower() for host in allowed_hosts}
    for resource in resources(document):
        host = resource.host
        if host and host not in allowed:
            yield resource


def _element(element: lxml.html.HtmlElement, tag: str) -> Iterator[Resource]:
    for attribute in _FETCHED_ATTRIBUTES:
        value = element.get(attribute)
        if value and value.strip():
            yield Resource(value.strip(), tag, attribute)
    for attribute in _SRCSET_ATTRIBUTES:
        for url in _srcset(element.get(attribute) or ""):
            yield Resource(url, tag, attribute)
    if tag == "link" and _FETCHING_RELS & set((element.get("rel") or "").lower().split()):
        href = (element.get("href") or "").strip()
        if href:
            yield Resource(href, tag, "href")
    if tag in _SVG_FETCHING:
        for attribute in ("href", _XLINK_HREF):
            href = (element.get(attribute) or "").strip()
            if href and not href.startswith("#"):
                yield Resource(href, tag, "href")
    style = element.get("style")
    if style:
        for url in css_urls(style):
            yield Resource(url, tag, "style")
    if tag == "style":
        for url in css_urls(element.text_content()):
            yield Resource(url, tag, "css")


def _srcset(value: str) -> Iterator[str]:
    # "a.jpg 1x, b.jpg 2x": each candidate is a URL and an optional descriptor.
    for candidate in value.split(","):
        parts = candidate.split()
        if parts:
            yield parts[0]


def css_urls(css: str) -> Iterator[str]:
    """The URLs a piece of CSS (a stylesheet or a style attribute) loads: url(), @import and
    image-set() strings."""
    css = _CSS_COMMENT.sub(" ", css)
    found: list[str] = []
    for pattern in (_CSS_URL, _CSS_IMPORT):
        for match in pattern.finditer(css):
            found.append(next((group for group in match.groups() if group is not None), ""))
    for match in _CSS_IMAGE_SET.finditer(css):
        found += [a or b for a, b in _CSS_STRING.findall(match.group(1))]
    yield from dict.fromkeys(url.strip() for url in found if url.strip())


def _conditional(comment: str) -> Iterator[Resource]:
    match = _CONDITIONAL.match(comment)
    if not match or not match.group(1).strip():
        return
    try:
        fragments = lxml.html.fragments_fromstring(match.group(1))
    except (ValueError, lxml.etree.ParserError):
        return  # nothing parseable: nothing Outlook would fetch either
    for fragment in fragments:
        if isinstance(fragment, lxml.html.HtmlElement):
            yield from resources(fragment)
