"""The HTML allow-list every article body passes through before it reaches a feed or an email.

Upstream feeds are untrusted, and even an editor's Markdown can carry a pasted embed code, so both
go through the same ammonia (nh3) allow-list: the tags and attributes an article needs, links
limited to http, https and mailto, relative URLs resolved against the article's own address (a
feed reader has no base URL to resolve them against). Characters XML 1.0 forbids are removed
too, before parsing and after (a character reference can produce one): the result goes into feeds.
"""

from __future__ import annotations

import re
from functools import lru_cache

import nh3

from speakerfeed.sources.base import xml_safe

# Text-level and structural tags only: no div (a layout box with no meaning in a feed reader).
ARTICLE_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd",
        "del", "details", "dfn", "dl", "dt", "em", "figcaption", "figure", "h2", "h3", "h4",
        "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s",
        "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td",
        "tfoot", "th", "thead", "time", "tr", "u", "ul",
    }
)  # fmt: skip
# Whole elements whose content is code or chrome, never text for a reader.
DROPPED_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "noscript"})
ARTICLE_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    # No `cite` attribute: ammonia checks the schemes of href and src only, and a quotation's
    # source is rarely worth a javascript: risk.
    "del": {"datetime"},
    "ins": {"datetime"},
    "time": {"datetime"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "ol": {"start", "reversed"},
    "abbr": {"title"},
    "*": {"lang", "dir"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# An href or src that does not start with a scheme: relative, so it needs a base to resolve against.
_RELATIVE_URL = re.compile(r"""\b(?:href|src)\s*=\s*["']?(?![a-z][a-z0-9+.-]*:)""", re.IGNORECASE)


@lru_cache(maxsize=64)
def _cleaner(base_url: str | None) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(ARTICLE_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ARTICLE_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        url_relative=("rewrite_with_base", base_url) if base_url else "deny",
    )


def relative_url_count(fragment: str) -> int:
    """At most how many URLs ``clean_html`` would resolve against a base (each grows by it)."""
    return len(_RELATIVE_URL.findall(fragment))


def clean_html(fragment: str, base_url: str | None = None) -> str:
    """The fragment with everything outside the allow-list removed.

    Relative URLs are resolved against ``base_url``, or dropped when there is none (or when it is
    not a URL ammonia can parse). Characters XML 1.0 forbids are removed.
    """
    fragment = xml_safe(fragment)  # before parsing too: the HTML parser turns U+0000 into U+FFFD
    # Building a cleaner per base URL costs more than cleaning; most articles need none.
    base = base_url if _RELATIVE_URL.search(fragment) else None
    try:
        cleaner = _cleaner(base)
    except ValueError:  # a base ammonia's URL parser rejects (httpx may accept it): drop them
        cleaner = _cleaner(None)
    return xml_safe(cleaner.clean(fragment))
