"""Independent checks of feed documents against their specifications.

Written from the specs, not from our renderer: RFC 4287 (Atom 1.0), the RSS 2.0 specification
(rssboard.org), RFC 5005 (feed paging and archiving) and JSON Feed 1.1 (jsonfeed.org). Each check
returns a list of human-readable violations; an empty list means the document conforms.
``check_document`` runs every check that applies to a file a build writes, by its name: the feed's
own specification, namespace prefixes (the W3C feed validator's "Avoid Namespace Prefix"), and the
HTML pages' ``<time datetime>`` values (HTML's date and time syntax: at most three fraction digits).
"""

from __future__ import annotations

import json
import re
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from lxml import etree, html

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
FH = "{http://purl.org/syndication/history/1.0}"
RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)
# RFC 822 with 4-digit years, as RSS 2.0 asks: "Sat, 07 Sep 2002 00:00:01 GMT" or "+0000".
RFC822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} ([+-]\d{4}|GMT|UT|[A-Z]{3})$"
)
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _is_absolute_iri(value: str) -> bool:
    parts = urlsplit(value)
    return bool(parts.scheme) and (bool(parts.netloc) or parts.scheme in ("tag", "urn", "mailto"))


def _parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, SAFE_PARSER)


def check_atom(data: bytes) -> list[str]:
    """RFC 4287 section 4.1: required elements, cardinality, dates, links, authors."""
    errors: list[str] = []
    root = _parse(data)
    if root.tag != f"{ATOM}feed":
        return [f"root element is {root.tag}, expected atom:feed"]
    errors += _atom_common(root, "feed")
    feed_has_author = root.find(f"{ATOM}author") is not None
    if not any(link.get("rel") == "self" for link in root.findall(f"{ATOM}link")):
        errors.append("feed: no link rel=self (RFC 4287 4.1.1 SHOULD)")
    for index, entry in enumerate(root.findall(f"{ATOM}entry")):
        where = f"entry[{index}]"
        errors += _atom_common(entry, where)
        if not feed_has_author and entry.find(f"{ATOM}author") is None:
            errors.append(f"{where}: no atom:author and the feed has none (4.1.2)")
        content = entry.find(f"{ATOM}content")
        links = entry.findall(f"{ATOM}link")
        alternates = [link for link in links if link.get("rel", "alternate") == "alternate"]
        if content is None and not alternates:
            errors.append(f"{where}: neither content nor an alternate link (4.1.2)")
        text_types = ("text", "html", "xhtml")
        media_content = content is not None and content.get("type", "text") not in text_types
        if media_content and entry.find(f"{ATOM}summary") is None:
            errors.append(f"{where}: non-text content without a summary (4.1.2)")
        published = entry.find(f"{ATOM}published")
        if published is not None and not RFC3339.match(published.text or ""):
            errors.append(f"{where}: published {published.text!r} is not an RFC 3339 date")
        for kind in ("summary", "title"):
            element = entry.find(f"{ATOM}{kind}")
            if element is not None and element.get("type", "text") not in text_types:
                errors.append(f"{where}: {kind} type {element.get('type')!r} not allowed (3.1.1)")
    return errors


def _atom_common(element: etree._Element, where: str) -> list[str]:
    errors: list[str] = []
    for name in ("id", "title", "updated"):
        found = element.findall(f"{ATOM}{name}")
        if len(found) != 1:
            errors.append(f"{where}: {len(found)} atom:{name} elements, expected exactly one")
    ident = element.find(f"{ATOM}id")
    if ident is not None and not _is_absolute_iri((ident.text or "").strip()):
        errors.append(f"{where}: id {ident.text!r} is not an absolute IRI (4.2.6)")
    updated = element.find(f"{ATOM}updated")
    if updated is not None and not RFC3339.match(updated.text or ""):
        errors.append(f"{where}: updated {updated.text!r} is not an RFC 3339 date (3.3)")
    for author in element.findall(f"{ATOM}author"):
        if not (author.findtext(f"{ATOM}name") or "").strip():
            errors.append(f"{where}: atom:author without a name (3.2.1)")
    seen_alternates: set[tuple[str | None, str | None]] = set()
    for link in element.findall(f"{ATOM}link"):
        href = link.get("href")
        if not href or not _is_absolute_iri(href):
            errors.append(f"{where}: link without an absolute href: {href!r}")
        rel = link.get("rel", "alternate")
        if not re.match(r"^([a-z][a-z0-9.-]*|[a-z][a-z0-9+.-]*:.+)$", rel):
            errors.append(f"{where}: link rel {rel!r} is not a registered name or an IRI")
        if rel == "alternate":
            key = (link.get("type"), link.get("hreflang"))
            if key in seen_alternates:
                errors.append(
                    f"{where}: two alternate links with the same type and hreflang (4.1.1)"
                )
            seen_alternates.add(key)
    return errors


def check_rss(data: bytes) -> list[str]:
    """RSS 2.0 specification: required channel and item elements, dates, guid, self link."""
    errors: list[str] = []
    root = _parse(data)
    if root.tag != "rss" or root.get("version") != "2.0":
        return [
            f"root is <{root.tag} version={root.get('version')!r}>, expected <rss version='2.0'>"
        ]
    channels = root.findall("channel")
    if len(channels) != 1:
        return [f"{len(channels)} channel elements, expected one"]
    channel = channels[0]
    for name in ("title", "link", "description"):
        if len(channel.findall(name)) != 1 or not (channel.findtext(name) or "").strip():
            errors.append(f"channel: required <{name}> missing, empty or repeated")
    if not _is_absolute_iri(channel.findtext("link") or ""):
        errors.append("channel: <link> is not an absolute URL")
    for name in ("pubDate", "lastBuildDate"):
        value = channel.findtext(name)
        if value is not None and not _rfc822(value):
            errors.append(f"channel: <{name}> {value!r} is not an RFC 822 date")
    if not any(link.get("rel") == "self" for link in channel.findall(f"{ATOM}link")):
        errors.append("channel: no atom:link rel=self (recommended by the RSS Advisory Board)")
    language = channel.findtext("language")
    if language is not None and not re.match(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", language):
        errors.append(f"channel: language {language!r} is not a language tag")
    guids: set[str] = set()
    for index, item in enumerate(channel.findall("item")):
        where = f"item[{index}]"
        if item.find("title") is None and item.find("description") is None:
            errors.append(f"{where}: needs a title or a description")
        for name in ("title", "link", "description", "pubDate", "guid", "author"):
            if len(item.findall(name)) > 1:
                errors.append(f"{where}: <{name}> repeated")
        link = item.findtext("link")
        if link is not None and not _is_absolute_iri(link):
            errors.append(f"{where}: <link> {link!r} is not absolute")
        pub = item.findtext("pubDate")
        if pub is not None and not _rfc822(pub):
            errors.append(f"{where}: pubDate {pub!r} is not an RFC 822 date")
        guid = item.find("guid")
        if guid is not None:
            permalink = guid.get("isPermaLink", "true")
            if permalink not in ("true", "false"):
                errors.append(f"{where}: isPermaLink must be true or false")
            if permalink == "true" and not _is_absolute_iri(guid.text or ""):
                errors.append(f"{where}: guid is a permalink but not a URL")
            if (guid.text or "") in guids:
                errors.append(f"{where}: guid {guid.text!r} repeated in the channel")
            guids.add(guid.text or "")
        author = item.findtext("author")
        if author is not None and "@" not in author:
            errors.append(f"{where}: <author> must be an e-mail address (use dc:creator)")
        for encoded in item.findall(f"{CONTENT}encoded"):
            if not (encoded.text or "").strip():
                errors.append(f"{where}: empty content:encoded")
    return errors


def _rfc822(value: str) -> bool:
    if not RFC822.match(value):
        return False
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return True


# JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/), as a JSON Schema.
_AUTHOR = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "url": {"type": "string", "format": "uri"},
        "avatar": {"type": "string", "format": "uri"},
    },
    "anyOf": [{"required": ["name"]}, {"required": ["url"]}, {"required": ["avatar"]}],
}
_DATE = {"type": "string", "pattern": RFC3339.pattern}
JSON_FEED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "title", "items"],
    "properties": {
        "version": {"const": "https://jsonfeed.org/version/1.1"},
        "title": {"type": "string", "minLength": 1},
        "home_page_url": {"type": "string", "format": "uri"},
        "feed_url": {"type": "string", "format": "uri"},
        "description": {"type": "string"},
        "user_comment": {"type": "string"},
        "next_url": {"type": "string", "format": "uri"},
        "icon": {"type": "string"},
        "favicon": {"type": "string"},
        "authors": {"type": "array", "items": _AUTHOR},
        "language": {"type": "string"},
        "expired": {"type": "boolean"},
        "hubs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "url"],
                "properties": {"type": {"type": "string"}, "url": {"type": "string"}},
            },
        },
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id"],
                "anyOf": [{"required": ["content_html"]}, {"required": ["content_text"]}],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "url": {"type": "string", "format": "uri"},
                    "external_url": {"type": "string", "format": "uri"},
                    "title": {"type": "string"},
                    "content_html": {"type": "string"},
                    "content_text": {"type": "string"},
                    "summary": {"type": "string"},
                    "image": {"type": "string", "format": "uri"},
                    "banner_image": {"type": "string", "format": "uri"},
                    "date_published": _DATE,
                    "date_modified": _DATE,
                    "authors": {"type": "array", "items": _AUTHOR},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "language": {"type": "string"},
                    "attachments": {"type": "array"},
                },
                "additionalProperties": {"not": {}},
                "patternProperties": {"^_": {}},
            },
        },
    },
    "patternProperties": {"^_": {}},
    "additionalProperties": False,
}


def check_json_feed(data: bytes) -> list[str]:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"not UTF-8 JSON: {exc}"]
    validator = jsonschema.Draft202012Validator(
        JSON_FEED_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(document)
    ]
    ids = [item.get("id") for item in document.get("items", [])]
    if len(ids) != len(set(ids)):
        errors.append("items: repeated ids")
    return errors


# The namespaces a feed may use, by the prefix readers and validators expect for them.
PREFIXES = {
    "http://www.w3.org/2005/Atom": "atom",
    "http://purl.org/syndication/history/1.0": "fh",
    "http://search.yahoo.com/mrss/": "media",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/rss/1.0/modules/content/": "content",
}


def check_namespaces(data: bytes) -> list[str]:
    """Every namespace declared once, on the root, with its usual prefix; in an Atom document the
    Atom namespace is the default one (no atom: or ns0: prefix on its elements)."""
    errors: list[str] = []
    root = _parse(data)
    atom_document = root.tag == f"{ATOM}feed"
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # comments, processing instructions
        parent = element.getparent()
        declared = set(element.nsmap.items()) - set(
            parent.nsmap.items() if parent is not None else ()
        )
        if parent is not None and declared:
            errors.append(f"<{element.tag}> declares namespaces below the root: {sorted(declared)}")
        if element.prefix is not None and re.fullmatch(r"ns\d+", element.prefix):
            errors.append(f"<{element.tag}> has a generated prefix {element.prefix}:")
        if atom_document and element.prefix is not None and element.tag.startswith(ATOM):
            errors.append(f"<{element.tag}> in an Atom document has a prefix ({element.prefix}:)")
    for prefix, uri in root.nsmap.items():
        expected = PREFIXES.get(uri)
        if prefix is not None and expected is not None and prefix != expected:
            errors.append(f"namespace {uri} is declared as {prefix}:, expected {expected}:")
    return errors


# HTML's "valid date string", "valid global date and time string" or "valid local date and time
# string" (WHATWG HTML 2.4.5): seconds are optional, a fraction has one to three digits.
HTML_DATETIME = re.compile(
    r"^\d{4,}-\d{2}-\d{2}"
    r"([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)


def check_html_datetimes(data: bytes) -> list[str]:
    """Every <time datetime> value in an HTML page is one HTML allows."""
    document = html.document_fromstring(data)
    errors = []
    for element in document.iter("time"):
        value = element.get("datetime")
        if value is None:
            continue
        if not HTML_DATETIME.match(value):
            errors.append(f"<time datetime={value!r}> is not an HTML date or date and time")
    return errors


def check_document(path: str, data: bytes) -> list[str]:
    """Every check that applies to a file a build writes, chosen by its name and root element."""
    if path.endswith(".json"):
        return check_json_feed(data)
    if path.endswith(".html"):
        return check_html_datetimes(data)
    if path.endswith(".xml"):
        root = _parse(data)
        spec = check_atom if root.tag == f"{ATOM}feed" else check_rss
        return spec(data) + check_namespaces(data)
    return [f"{path}: no check for this kind of file"]
