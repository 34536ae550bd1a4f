"""The web copy of each digest (the "view in browser" page) and the archive index of them all.

A web copy is the digest's own HTML with the per-subscriber markers filled with values that name
no one, so it can be public. Each digest keeps a small digest.json beside its page; the index is
rebuilt from those. What a list's digests held is the database's record (store.inclusions), not
these files: deleting the output folder changes nothing about what is sent. A cadence digest's
digest.json names its cadence; one of the list's own schedule names none (as before cadences).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from speakerfeed.config import Settings
from speakerfeed.mail import placeholders
from speakerfeed.models import RenderedDigest
from speakerfeed.output import write_if_changed
from speakerfeed.render.pages import (
    ARCHIVE_FOLDER,
    base_context,
    html_datetime,
    render_blocks,
    render_page,
)
from speakerfeed.store.inclusions import PastDigest

# The web copy sits at digests/<list>/<id>/: this leads back to the output folder's root.
WEB_COPY_ROOT = "../../../"
WEB_COPY_HEADER = "web/web_copy_header.html"
ARCHIVE_INDEX = f"{ARCHIVE_FOLDER}/index.html"
# The email's skip link (templates/email/base.mjml.j2): the site's header goes right after it,
# so the skip link stays the first thing a keyboard reaches.
_SKIP_LINK = '<a class="sf-skip" href="#main">Skip to content</a>'


def web_copy(rendered: RenderedDigest, settings: Settings) -> bytes:
    """The digest's HTML as the public page: no name, links to the general pages, and the
    site's header (name, navigation, sign-up call to action) that every page has."""
    values = {
        placeholders.NAME: "",
        placeholders.UNSUBSCRIBE_URL: escape(settings.app_url + "/unsubscribe/"),
        placeholders.PREFERENCES_URL: escape(settings.app_url + "/preferences/"),
    }
    html = rendered.html
    for marker, value in values.items():
        html = html.replace(marker, value)
    return _with_site_header(html, settings).encode("utf-8")


def _with_site_header(html: str, settings: Settings) -> str:
    context = base_context(settings, root=WEB_COPY_ROOT)
    blocks = render_blocks(WEB_COPY_HEADER, context, templates_dir=settings.templates_dir)
    html = html.replace("</head>", blocks["head"] + "</head>", 1)
    if _SKIP_LINK in html:
        return html.replace(_SKIP_LINK, _SKIP_LINK + blocks["header"], 1)
    # An editor's email template without the skip link: the header opens the body.
    body = html.find("<body")
    if body < 0:
        return html
    opened = html.find(">", body) + 1
    return html[:opened] + blocks["header"] + html[opened:]


def _metadata(rendered: RenderedDigest) -> bytes:
    digest = rendered.digest
    record = {
        "id": digest.id,
        "list": digest.list_name,
        "list_title": digest.list_title,
        "subject": rendered.subject,
        "issued": digest.issued.isoformat(),
        "articles": [{"id": a.id, "title": a.title, "url": a.url} for a in digest.articles],
    }
    if digest.cadence:
        record["cadence"] = digest.cadence
    return json.dumps(record, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"


def write_digest_archive(settings: Settings, rendered: RenderedDigest) -> list[str]:
    """Publish the digest's web copy and refresh the archive index; the paths written."""
    root = settings.output_dir
    folder = rendered.digest.archive_path
    written = [
        relative
        for relative, data in (
            (folder + "index.html", web_copy(rendered, settings)),
            (folder + "digest.json", _metadata(rendered)),
        )
        if write_if_changed(root / relative, data)
    ]
    if write_archive_index(settings):
        written.append(ARCHIVE_INDEX)
    return written


def write_archive_index(settings: Settings) -> bool:
    """(Re)write the archive index from the digests there are: the header of every page links
    to it, so it exists from the first build, before any digest ("No digest yet")."""
    root = settings.output_dir
    return write_if_changed(root / ARCHIVE_INDEX, render_archive_index(settings, root))


def _records(output_dir: Path, list_name: str = "*") -> list[dict[str, Any]]:
    records = []
    for path in sorted((output_dir / ARCHIVE_FOLDER).glob(f"{list_name}/*/digest.json")):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # a half-written or foreign file is not a digest
    return records


def latest_web_copy_url(settings: Settings, list_name: str) -> str:
    """The public URL of the list's latest web copy (any cadence's), as a digest's "view in
    browser" link gives it; "" before the list's first digest."""
    issues = []
    for record in _records(settings.output_dir, list_name):
        try:  # compared as times: the offsets of a list's zone change with the seasons
            issued = datetime.fromisoformat(str(record["issued"]))
            issues.append((issued.astimezone(UTC), str(record["id"])))
        except (KeyError, TypeError, ValueError):
            continue
    if not issues:
        return ""
    return f"{settings.app_url}/{ARCHIVE_FOLDER}/{list_name}/{max(issues)[1]}/"


def archived_digests(output_dir: Path) -> list[PastDigest]:
    """What each digest in the archive held, as its digest.json says: read once, when the
    database first records digests (migration 0009). A record that is not a digest's is left
    out."""
    found = []
    for record in _records(output_dir):
        try:
            issued = datetime.fromisoformat(str(record["issued"]))
            ids = tuple(str(article["id"]) for article in record.get("articles", []))
            past = PastDigest(
                str(record["id"]), str(record["list"]), str(record.get("cadence", "")), issued, ids
            )
        except (KeyError, TypeError, ValueError):
            continue
        if issued.tzinfo is not None:
            found.append(past)
    return found


def render_archive_index(settings: Settings, output_dir: Path) -> bytes:
    records = _records(output_dir)
    lists: list[dict[str, Any]] = []
    for list_settings in settings.lists:
        issues = sorted(
            (r for r in records if r.get("list") == list_settings.name),
            key=lambda r: str(r["issued"]),
            reverse=True,
        )
        lists.append(
            {
                "name": list_settings.name,
                "title": list_settings.title,
                "issues": [_issue_view(record) for record in issues],
            }
        )
    return render_page(
        "web/digest_archive.html",
        {**base_context(settings, root="../"), "lists": lists},
        templates_dir=settings.templates_dir,
    )


def _issue_view(record: dict[str, Any]) -> dict[str, Any]:
    issued = datetime.fromisoformat(str(record["issued"]))
    return {
        "href": f"{record['list']}/{record['id']}/",
        "subject": record["subject"],
        "issued": html_datetime(issued),  # <time datetime>: no microseconds
        "issued_text": f"{issued:%A} {issued.day} {issued:%B %Y}",
        "articles": len(record.get("articles", [])),
        # A cadence's digest ("" for the list's own), named like the preferences page's choice.
        "cadence": str(record.get("cadence", "")).replace("-", " ").capitalize(),
    }
