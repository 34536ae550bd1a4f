"""Spreading a large build over the machine's cores.

Only big batches (a first build, a changed setting) go to worker processes; an incremental build
with a handful of changes stays in one process, where starting workers would cost more than it
saves. Workers are forked so they inherit the planned documents and the parsed articles instead of
receiving them through pickles; each returns only small records.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from speakerfeed.output import write_if_changed
from speakerfeed.render.feeds import EntryCache, FeedDocument, render

PARALLEL_MINIMUM = 400  # files to parse or documents to render before workers pay off
T = TypeVar("T")
R = TypeVar("R")


def worker_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# Set in the parent just before forking; read by the workers.
_SHARED: dict[str, object] = {}


def _run_shared(index: int) -> Any:
    tasks = _SHARED["tasks"]
    assert isinstance(tasks, list)
    function = _SHARED["function"]
    assert callable(function)
    return function(tasks[index])


def map_forked(
    function: Callable[[T], R],
    tasks: Sequence[T],
    on_done: Callable[[T], None] | None = None,
) -> list[R]:
    """function(task) for every task, in forked workers when there are cores to spare.

    Results come back in order; ``on_done`` is called with each task as it finishes.
    """
    workers = min(worker_count(), len(tasks))
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        results = []
        for task in tasks:
            results.append(function(task))
            if on_done is not None:
                on_done(task)
        return results
    _SHARED.update(function=function, tasks=list(tasks))
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = []
            for index, result in enumerate(pool.imap(_run_shared, range(len(tasks)))):
                results.append(cast(R, result))
                if on_done is not None:
                    on_done(tasks[index])
    finally:
        _SHARED.clear()
    return results


@dataclass(frozen=True, slots=True)
class RenderedFile:
    path: str
    written: bool
    size: int
    mtime_ns: int


Progress = Callable[[int, int], None]  # (items just finished, items in all)


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

    def work(group: list[FeedDocument]) -> list[RenderedFile]:
        return render_and_write(group, output_dir)

    def done(group: list[FeedDocument]) -> None:
        if progress is not None:
            progress(len(group), len(documents))

    return [record for batch in map_forked(work, groups, done) for record in batch]
