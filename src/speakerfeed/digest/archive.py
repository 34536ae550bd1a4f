"""The web copy of each digest (the "view in browser" page) and the archive index of them all.

A web copy is the digest's own HTML with the per-subscriber markers filled with values that name
no one, so it can be public. Each digest keeps a small digest.json beside its page; the index is
rebuilt from those, so the output folder alone is the archive's record. A cadence digest's
digest.json names its cadence; one of the list's own schedule names none (as before cadences).
"""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from speakerfeed.config import Settings
from speakerfeed.mail import placeholders
from speakerfeed.models import RenderedDigest
from speakerfeed.output import write_if_changed
from speakerfeed.render.pages import base_context, render_page

ARCHIVE_FOLDER = "digests"


def web_copy(rendered: RenderedDigest, settings: Settings) -> bytes:
    """The digest's HTML as the public page: no name, and links to the general pages."""
    values = {
        placeholders.NAME: "",
        placeholders.UNSUBSCRIBE_URL: escape(settings.app_url + "/unsubscribe/"),
        placeholders.PREFERENCES_URL: escape(settings.app_url + "/preferences/"),
    }
    html = rendered.html
    for marker, value in values.items():
        html = html.replace(marker, value)
    return html.encode("utf-8")


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
    index = f"{ARCHIVE_FOLDER}/index.html"
    if write_if_changed(root / index, render_archive_index(settings, root)):
        written.append(index)
    return written


def _records(output_dir: Path, list_name: str = "*") -> list[dict[str, Any]]:
    records = []
    for path in sorted((output_dir / ARCHIVE_FOLDER).glob(f"{list_name}/*/digest.json")):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # a half-written or foreign file is not a digest
    return records


def last_issued(settings: Settings, list_name: str, cadence: str = "") -> datetime | None:
    """When the latest published digest of the list's ``cadence`` ("": its own schedule) was
    issued: that cadence's next digest starts after it, whatever the other cadences sent."""
    times = [
        datetime.fromisoformat(str(record["issued"]))
        for record in _records(settings.output_dir, list_name)
        if record.get("cadence", "") == cadence
    ]
    return max(times, default=None)


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
        {**base_context(settings), "lists": lists},
        templates_dir=settings.templates_dir,
    )


def _issue_view(record: dict[str, Any]) -> dict[str, Any]:
    issued = datetime.fromisoformat(str(record["issued"]))
    return {
        "href": f"{record['list']}/{record['id']}/",
        "subject": record["subject"],
        "issued": issued.isoformat(),
        "issued_text": f"{issued:%A} {issued.day} {issued:%B %Y}",
        "articles": len(record.get("articles", [])),
        # A cadence's digest ("" for the list's own), named like the preferences page's choice.
        "cadence": str(record.get("cadence", "")).replace("-", " ").capitalize(),
    }
