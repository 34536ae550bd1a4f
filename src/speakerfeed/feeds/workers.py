"""Rendering a large build's documents over the machine's cores.

Only big batches (a first build, a changed setting) go to worker processes; an incremental build
with a handful of changes stays in one process, where starting workers would cost more than it
saves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from speakerfeed.forked import PARALLEL_MINIMUM, Progress, map_batches, worker_count
from speakerfeed.output import write_if_changed
from speakerfeed.render.feeds import EntryCache, FeedDocument, render


@dataclass(frozen=True, slots=True)
class RenderedFile:
    path: str
    written: bool
    size: int
    mtime_ns: int


def render_and_write(
    documents: Sequence[FeedDocument], output_dir: Path, progress: Progress | None = None
) -> list[RenderedFile]:
    """Render each document (sharing entries between them) and write those whose bytes changed."""
    cache = EntryCache(documents)
    records = []
    for doc in documents:
        path = output_dir / doc.path
        written = write_if_changed(path, render(doc, cache))
        stat = path.stat()
        records.append(RenderedFile(doc.path, written, stat.st_size, stat.st_mtime_ns))
        if progress is not None:
            progress(1, len(documents))
    return records


def render_in_workers(
    documents: Sequence[FeedDocument], output_dir: Path, progress: Progress | None = None
) -> list[RenderedFile]:
    """Split by format (entries are shared across documents of one format) over the workers."""
    if len(documents) < PARALLEL_MINIMUM or worker_count() < 2:
        return render_and_write(documents, output_dir, progress)
    by_format: dict[str, list[FeedDocument]] = {}
    for doc in documents:
        by_format.setdefault(doc.format, []).append(doc)
    # RSS and Atom cost about the same and gain the most from sharing entries, so each gets a
    # worker; JSON entries are cheap to make twice, so its documents are dealt out to both.
    json_documents = by_format.get("json", [])
    groups = [
        by_format.get("rss", []) + json_documents[0::2],
        by_format.get("atom", []) + json_documents[1::2],
    ]
    groups = [group for group in groups if group]

    return map_batches(lambda group: render_and_write(group, output_dir), groups, progress)
