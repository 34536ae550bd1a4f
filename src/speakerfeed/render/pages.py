"""The pages of the output folder (the feeds index; render.feed_pages makes each feed's page) and
what every page shares: the base context, text direction, HTML date-times, the template loader.

Templates are found by ``render.templates`` (``web/`` for HTML pages): the shipped ones,
under an editor's override folder. Every function takes ``templates_dir``, the override
folder (``Settings.templates_dir``, from ``[build] templates_dir``); a function given the
settings uses theirs when it is not passed.

Everything here is a pure function of its arguments: the same settings and feed sets give the same
bytes, so an unchanged page is never rewritten.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import jinja2

from speakerfeed.config import Settings
from speakerfeed.errors import ConfigError, Problem
from speakerfeed.render.feeds import FORMATS
from speakerfeed.render.templates import (
    SHIPPED_TEMPLATES_DIR,
    loader,
    search_path,
)

__all__ = [
    "ARCHIVE_FOLDER",
    "DEFAULT_TEMPLATES_DIR",
    "FAVICON_TYPES",
    "FeedSetLink",
    "base_context",
    "day_text",
    "favicon_data_url",
    "feed_label",
    "format_label",
    "html_datetime",
    "local_time",
    "long_date",
    "nav_links",
    "render_blocks",
    "render_feeds_index",
    "render_page",
    "signup_url_for",
    "template_digest",
    "text_direction",
]

# The shipped templates (render.templates finds them in the package or the checkout).
DEFAULT_TEMPLATES_DIR = SHIPPED_TEMPLATES_DIR

# The digest archive's folder under the output root (digest.archive writes it).
ARCHIVE_FOLDER = "digests"

# The icon every page links to unless [site] favicon names another, and the types it may be.
FAVICON = "web/favicon.svg"
MAX_FAVICON_BYTES = 64 * 1024
FAVICON_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}

# Names people know the formats by, for link text; a format missing here shows its key.
_FORMAT_LABELS = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}

# Primary language subtags written right to left.
_RTL_LANGUAGES = frozenset(
    {"ar", "arc", "ckb", "dv", "fa", "ha", "he", "khw", "ks", "ku", "ps", "sd", "ur", "yi"}
)


@dataclass(frozen=True, slots=True)
class FeedSetLink:
    """One feed (the main feed or a tag's) as the index lists it.

    ``path`` is the feed set's folder relative to the output root: "" for the main feed,
    "tags/politics/" for a tag. The documents in it are named as in ``render.feeds.FORMATS``.
    """

    title: str
    path: str

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise ValueError("a feed set needs a title")
        if self.path:
            parts = self.path.removesuffix("/").split("/")
            if (
                not self.path.endswith("/")
                or "\\" in self.path
                or any(part in ("", ".", "..") for part in parts)
            ):
                raise ValueError(
                    "feed set path must be '' or a relative folder ending in '/', "
                    f"got {self.path!r}"
                )

    def href(self, format_name: str) -> str:
        """The URL of one of its documents, relative to the output root."""
        return self.path + FORMATS[format_name].filename


def text_direction(language: str) -> str:
    """The text direction, "rtl" or "ltr", of a BCP 47 language tag."""
    primary = language.split("-", 1)[0].lower()
    return "rtl" if primary in _RTL_LANGUAGES else "ltr"


def base_context(settings: Settings, *, root: str = "/") -> dict[str, Any]:
    """What ``templates/web/base.html`` needs; every page's context starts with it.

    ``root`` is how the page reaches the output folder's root: "/" for the app's own pages
    (``serve`` serves the output folder at "/"), or a relative prefix ("", "../") for a page
    written into the output folder, so its links work from ``serve`` and from a static host
    alike. The sign-up form lives only in the app: a written page links to it by
    ``app_url``, an app page by its path.
    """
    site = settings.site
    signup_url = signup_url_for(settings, in_app=root == "/")
    return {
        "lang": site.language,
        "dir": text_direction(site.language),
        "site_title": site.title,
        "site_url": site.url + "/",
        "site_description": site.description,
        "nav": nav_links(root=root, signup_url=signup_url, archive=bool(settings.lists)),
        "signup_url": signup_url,
        "favicon": favicon_data_url(settings),
    }


def nav_links(*, root: str, signup_url: str, archive: bool) -> list[dict[str, str]]:
    """The header's navigation: (label, href) of the sign-up form (when there is one), the
    feeds index and (when there are lists, so digests) the digest archive."""
    links = []
    if signup_url:
        links.append({"label": "Newsletters", "href": signup_url})
    links.append({"label": "Feeds", "href": root or "./"})
    if archive:
        links.append({"label": "Archive", "href": f"{root}{ARCHIVE_FOLDER}/"})
    return links


def signup_url_for(settings: Settings, *, in_app: bool) -> str:
    """Where the sign-up form is: its path for the app's own pages, ``app_url`` for a page
    written into the output folder (a static host has no form); "" without lists."""
    if not settings.lists:
        return ""
    return "/subscribe" if in_app else settings.app_url + "/subscribe"


def favicon_data_url(settings: Settings) -> str:
    """The site's icon as a data: URL for ``<link rel=icon>``: no request, no remote host, and
    the same on a static host as under ``serve``. [site] favicon names the file; the shipped
    SVG otherwise."""
    configured = settings.site.favicon
    path = settings.path(configured) if configured else SHIPPED_TEMPLATES_DIR / FAVICON
    return _data_url(path.resolve())


@functools.lru_cache(maxsize=8)
def _data_url(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([Problem("site.favicon", f"cannot read {path}: {reason}")]) from None
    if len(data) > MAX_FAVICON_BYTES:
        message = (
            f"{path} is {len(data)} bytes; an icon inlined in every page must be at most 64 KB"
        )
        raise ConfigError([Problem("site.favicon", message)])
    media_type = FAVICON_TYPES[path.suffix.lower()]
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def html_datetime(moment: datetime) -> str:
    """A ``<time datetime>`` value: whole seconds, as HTML allows at most three fraction digits
    and nobody reads them."""
    text = moment.replace(microsecond=0, tzinfo=None).isoformat()
    offset = moment.utcoffset()
    if offset is None:
        return text
    # HTML's offsets are hours and minutes: local mean time before ~1900 (Europe/London was
    # -00:01:15) has seconds, which isoformat() would write and validators refuse.
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_time(moment: datetime, zone: tzinfo) -> datetime:
    """``moment`` in ``zone``, for showing. Total, whatever the date: where the zone's offset
    runs past the calendar (year 1 west of UTC, year 9999 east of it) the calendar's first or
    last moment in that zone is shown instead of an OverflowError."""
    try:
        return moment.astimezone(zone)
    except OverflowError:
        edge = datetime.min if moment.year < datetime.max.year // 2 else datetime.max
        return edge.replace(tzinfo=zone)


def day_text(moment: datetime) -> str:
    """The day as a reader sees it on a card: "3 December 2026"."""
    return f"{moment.day} {moment:%B} {moment.year}"


def long_date(moment: datetime) -> str:
    """The day spelt out, "Thursday 3 December 2026": not locale-formatted, as the emails' own
    words are English."""
    return f"{moment:%A} {day_text(moment)}"


def feed_label(title: str, site_title: str) -> str:
    """A tag feed's short name: "The Speaker: politics" under the site's name is "politics"."""
    return title.removeprefix(f"{site_title}: ") or title


def format_label(format_name: str) -> str:
    return _FORMAT_LABELS.get(format_name, format_name)


def render_feeds_index(
    settings: Settings,
    feed_sets: Sequence[FeedSetLink],
    *,
    templates_dir: Path | None = None,
) -> bytes:
    """The feeds index page (index.html at the output root): every feed in every format, with
    autodiscovery links for feed readers and browsers."""
    site_title = settings.site.title
    feeds = [_feed_view(link, site_title) for link in feed_sets]
    context = {
        **base_context(settings, root=""),
        "main_feeds": [feed for feed in feeds if feed["is_main"]],
        "tag_feeds": [feed for feed in feeds if not feed["is_main"]],
        "feeds": feeds,
    }
    overrides = templates_dir or settings.templates_dir
    return render_page("web/feeds_index.html", context, templates_dir=overrides)


def render_page(name: str, context: dict[str, Any], *, templates_dir: Path | None = None) -> bytes:
    """One page from a template under templates/ (which extends web/base.html), as UTF-8;
    ``templates_dir`` is the editor's override folder, if any."""
    template = _environment(_resolve(templates_dir)).get_template(name)
    return (template.render(context).rstrip("\n") + "\n").encode("utf-8")


def render_blocks(
    name: str, context: dict[str, Any], *, templates_dir: Path | None = None
) -> dict[str, str]:
    """Each top-level block of a fragment template, rendered on its own (for HTML that is
    put into another document at more than one place)."""
    template = _environment(_resolve(templates_dir)).get_template(name)
    scope = template.new_context(context)
    return {block: "".join(render(scope)) for block, render in template.blocks.items()}


def template_digest(names: Sequence[str], *, templates_dir: Path | None = None) -> str:
    """A digest of the templates' sources: it changes when an editor edits one of them."""
    environment = _environment(_resolve(templates_dir))
    assert environment.loader is not None
    digest = hashlib.blake2b(digest_size=8)
    for name in names:
        source, _, _ = environment.loader.get_source(environment, name)
        digest.update(source.encode("utf-8") + b"\x00")
    return digest.hexdigest()


def _feed_view(link: FeedSetLink, site_title: str) -> dict[str, Any]:
    is_main = link.path == ""
    label = link.title if is_main else feed_label(link.title, site_title)
    formats = [
        {
            "name": name,
            "label": format_label(name),
            "media_type": fmt.media_type,
            "href": link.href(name),
        }
        for name, fmt in FORMATS.items()
    ]
    return {"title": link.title, "label": label, "is_main": is_main, "formats": formats}


def _resolve(templates_dir: Path | None) -> tuple[Path, ...]:
    return search_path(templates_dir)


@functools.lru_cache(maxsize=8)
def _environment(folders: tuple[Path, ...]) -> jinja2.Environment:
    return jinja2.Environment(
        loader=loader(folders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
