"""Upstream dates checked against the fetch: a date before 1970 or more than a day after the
fetch is a bad date, not news from the past or an embargo.

A bad ``published`` date is replaced by the time the entry was first seen (kept in the upstream
state, so it is the same on every build), a bad ``updated`` date is dropped, and each entry so
changed is named in a warning. Without this an entry dated 9999 tops the main feed for ever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from speakerfeed.sources.upstream_entry import Entry

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
AHEAD = timedelta(days=1)  # clocks and time zones differ; a day ahead is the most we believe


def sane_dates(
    entries: Sequence[Entry], first_seen: Mapping[str, datetime], fetched: datetime
) -> tuple[list[Entry], list[str]]:
    """``entries`` with their bad dates replaced, and one line per changed entry saying why."""
    latest = fetched + AHEAD if fetched < datetime.max.replace(tzinfo=UTC) - AHEAD else fetched
    kept: list[Entry] = []
    reasons: list[str] = []
    for entry in entries:
        seen = first_seen.get(entry.id, fetched)
        bad_published = _why_bad(entry.published, latest)
        bad_updated = _why_bad(entry.updated, latest)
        if not bad_published and not bad_updated:
            kept.append(entry)
            continue
        kept.append(
            replace(
                entry,
                published=seen if bad_published else entry.published,
                updated=None if bad_updated else entry.updated,
            )
        )
        what = []
        if bad_published:
            what.append(
                f"published date {bad_published}: dated when first seen, {seen:%Y-%m-%d %H:%M} UTC"
            )
        if bad_updated:
            what.append(f"updated date {bad_updated}: ignored")
        reasons.append(f"entry {entry.title!r} (id {entry.id}): " + "; ".join(what))
    return kept, reasons


def _why_bad(moment: datetime | None, latest: datetime) -> str:
    """Why ``moment`` is not believable ("" when it is, or when there is none)."""
    if moment is None:
        return ""
    if moment < EARLIEST:
        return f"{moment.date().isoformat()} is before 1970"
    if moment > latest:
        return f"{moment.date().isoformat()} is more than a day after the fetch"
    return ""
