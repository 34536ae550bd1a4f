"""The upstream state file: per upstream, the validators and entries of the last good fetch.

A 304 or a failed fetch still serves that upstream's articles from here, and the time each entry
was first seen dates undated entries the same way on every run. Written atomically; an unreadable
file is a warning and a fresh start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from speakerfeed.errors import Problem
from speakerfeed.output import write_atomic
from speakerfeed.sources.upstream_entry import Entry, one_line

STATE_VERSION = 1


@dataclass(slots=True)
class UpstreamState:
    url: str = ""  # the validators belong to this URL only
    etag: str | None = None
    last_modified: str | None = None
    entries: list[Entry] = field(default_factory=list)
    first_seen: dict[str, datetime] = field(default_factory=dict)
    # Why entries' dates were replaced (upstream_dates): reported on every build, a 304 too.
    bad_dates: list[str] = field(default_factory=list)


def load_state(path: Path) -> tuple[dict[str, UpstreamState], list[Problem]]:
    """Per-upstream state from ``path``; an unreadable file is a warning and a fresh start."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, ValueError) as exc:
        return {}, [_state_warning(path, exc)]
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return {}, [
            Problem(str(path), "unknown upstream state format; starting afresh", warning=True)
        ]
    try:
        return {name: _state_from_json(s) for name, s in data["upstreams"].items()}, []
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return {}, [_state_warning(path, exc)]


def _state_warning(path: Path, exc: Exception) -> Problem:
    return Problem(
        str(path), f"upstream state unreadable ({one_line(exc)}); starting afresh", warning=True
    )


def save_state(path: Path, states: Mapping[str, UpstreamState]) -> None:
    """Write atomically: a crash mid-write leaves the old file, never half of a new one."""
    data = {
        "version": STATE_VERSION,
        "upstreams": {name: _state_to_json(state) for name, state in states.items()},
    }
    text = json.dumps(data, ensure_ascii=False, indent=1)
    write_atomic(path, text.encode("utf-8"), mode=0o600, durable=True)


def _state_to_json(state: UpstreamState) -> dict[str, Any]:
    return {
        "url": state.url,
        "etag": state.etag,
        "last_modified": state.last_modified,
        "entries": [_entry_to_json(e) for e in state.entries],
        "first_seen": {key: moment.isoformat() for key, moment in state.first_seen.items()},
        "bad_dates": state.bad_dates,
    }


def _state_from_json(data: dict[str, Any]) -> UpstreamState:
    return UpstreamState(
        url=str(data["url"]),
        etag=data["etag"],
        last_modified=data["last_modified"],
        entries=[_entry_from_json(e) for e in data["entries"]],
        first_seen={k: datetime.fromisoformat(v) for k, v in data["first_seen"].items()},
        bad_dates=[str(line) for line in data.get("bad_dates", [])],
    )


def _entry_to_json(entry: Entry) -> dict[str, Any]:
    data = asdict(entry)
    for key in ("published", "updated"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


def _entry_from_json(data: dict[str, Any]) -> Entry:
    def moment(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return Entry(
        id=data["id"],
        title=data["title"],
        link=data["link"],
        published=moment(data["published"]),
        updated=moment(data["updated"]),
        authors=tuple(data["authors"]),
        tags=tuple(data["tags"]),
        content_html=data["content_html"],
        summary=data["summary"],
        image_url=data["image_url"],
    )
