"""Running one function over many tasks in forked worker processes, when there are cores to
spare. Workers are forked so they inherit their tasks (planned documents, files to parse) instead
of receiving them through pickles; each returns only small records.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

PARALLEL_MINIMUM = 400  # files to parse or documents to render before workers pay off
T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[int, int], None]  # (items just finished, items in all)


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


def map_batches(
    function: Callable[[list[T]], list[R]],
    batches: Sequence[list[T]],
    progress: Progress | None = None,
) -> list[R]:
    """``map_forked`` over batches of items, the results flattened in order; ``progress`` is told
    (items in the batch, items in all) as each batch finishes."""
    total = sum(map(len, batches))

    def done(batch: list[T]) -> None:
        if progress is not None:
            progress(len(batch), total)

    return [result for results in map_forked(function, batches, done) for result in results]
