"""JSON Feed bodies (https://www.jsonfeed.org/version/1.1/, and 1.0) to raw entries.

feedparser 6 does not read JSON Feed, so this small reader does.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

from speakerfeed.sources.upstream_entry import RawEntry, UnreadableFeedError, as_str, one_line


def looks_like_json(body: bytes, content_type: str) -> bool:
    """Whether to read the body as JSON Feed rather than XML."""
    return "json" in content_type.lower() or body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def read_json_feed(body: bytes) -> list[RawEntry]:
    """The items of a JSON Feed; UnreadableFeedError when the body is not one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise UnreadableFeedError(f"invalid JSON: {one_line(exc)}") from None
    version = data.get("version") if isinstance(data, dict) else None
    items = data.get("items") if isinstance(data, dict) else None
    if not as_str(version).startswith("https://jsonfeed.org/version/") or not isinstance(
        items, list
    ):
        raise UnreadableFeedError("not a JSON Feed (no jsonfeed.org version or no items)")
    return [_from_json_item(item) for item in items if isinstance(item, dict)]


def _from_json_item(item: dict[str, Any]) -> RawEntry:
    authors = item.get("authors")
    if not isinstance(authors, list):
        authors = [item.get("author")]  # JSON Feed 1.0
    tags = item.get("tags")
    raw_id = item.get("id")
    return RawEntry(
        id=str(raw_id) if isinstance(raw_id, str | int) else "",
        title=as_str(item.get("title")),
        title_is_html=False,
        link=as_str(item.get("url")) or as_str(item.get("external_url")),
        published=_from_iso(item.get("date_published")),
        updated=_from_iso(item.get("date_modified")),
        authors=[as_str(a.get("name")) for a in authors if isinstance(a, dict)],
        tags=[as_str(t) for t in tags] if isinstance(tags, list) else [],
        content_html=(
            as_str(item.get("content_html")) or html.escape(as_str(item.get("content_text")))
        ),
        summary_html=html.escape(as_str(item.get("summary"))),
        image_url=as_str(item.get("image")) or as_str(item.get("banner_image")),
    )


def _from_iso(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(as_str(value))
    except ValueError:
        return None
    try:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, 9999 west: kept at the edge, to be reported
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)
