"""The processes of one send: who holds a claimed row (``worker_name``), what the processes
share (``Shared``: rows finished, errors, a stop, SQLite's write turns), and the helpers forked
to send beside the first process."""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from multiprocessing.process import BaseProcess
from typing import Protocol

from sqlalchemy import Engine

from speakerfeed.transports.base import Transport

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (rows finished, rows in the send)


class Sender(Protocol):
    """What a forked process runs: the send loop (digest.send_loop.Batches), over ``engine``."""

    @property
    def engine(self) -> Engine: ...

    def run(
        self,
        transport: Transport,
        should_stop: Callable[[], bool],
        progress: Progress | None,
        total: int,
    ) -> str | None: ...


def worker_name() -> str:
    """Who holds a claimed row: this machine and process."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


def is_dead_here(worker: str) -> bool:
    """True for a worker of this machine whose process is gone: its rows need not wait for the
    lease to run out. A worker on another machine is left to the lease."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname()[:40] or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


class Shared:
    """What the processes of one send share: rows finished, errors, and a stop. Plain numbers
    for one process; shared memory (from ``multiprocessing``, forked) for several."""

    def __init__(self, processes: int, finished: int) -> None:
        if processes > 1 and "fork" not in multiprocessing.get_all_start_methods():
            log.warning("this system cannot fork: sending from one process")
            processes = 1
        self.processes = processes
        self._context = multiprocessing.get_context("fork") if processes > 1 else None
        if self._context is None:
            self._counts = [finished, 0]  # rows finished, errors
            self._stopped = False
            return
        self._finished = self._context.Value("q", finished)
        self._errors = self._context.Value("q", 0)
        self._stop = self._context.Event()
        self._write_lock = self._context.Lock()

    def writing(self, engine: Engine) -> AbstractContextManager[object]:
        """Held around each write transaction of a send on SQLite by several processes.

        SQLite lets one writer in at a time and makes the others poll, sleeping 1, 2, 5, 10 ms
        and longer between tries: a process that waited for the lock often slept on well
        after it was free. Taking turns on a lock of their own, they wake as soon as it is."""
        if self._context is None or engine.dialect.name != "sqlite":
            return nullcontext()
        return self._write_lock

    def add(self, finished: int, errors: int) -> tuple[int, int]:
        """Count a batch's finished rows and errors; the send's totals so far."""
        if self._context is None:
            self._counts[0] += finished
            self._counts[1] += errors
            return self._counts[0], self._counts[1]
        with self._finished.get_lock():
            self._finished.value += finished
            with self._errors.get_lock():
                self._errors.value += errors
                return self._finished.value, self._errors.value

    def finished(self) -> int:
        return self._counts[0] if self._context is None else int(self._finished.value)

    def stop(self) -> None:
        if self._context is None:
            self._stopped = True
        else:
            self._stop.set()

    def stopped(self) -> bool:
        return self._stopped if self._context is None else self._stop.is_set()

    def start_helpers(self, batches: Sender, transport: Transport) -> list[BaseProcess]:
        """The other processes, forked before this one opens the transport (or any
        connection a child must not share)."""
        if self._context is None:
            return []
        # No pooled connection is inherited: a child makes its own, and never uses (or, for
        # PostgreSQL, closes) this process's.
        batches.engine.dispose()
        helpers: list[BaseProcess] = [
            self._context.Process(
                target=_helper, args=(batches, transport), name=f"speakerfeed-send-{number}"
            )
            for number in range(1, self.processes)
        ]
        for helper in helpers:
            helper.start()
        return helpers

    def join_helpers(
        self,
        helpers: list[BaseProcess],
        should_stop: Callable[[], bool],
        progress: Progress | None,
        total: int,
    ) -> str:
        """Wait for the other processes, passing on a stop and reporting progress meanwhile;
        what went wrong with them, if anything."""
        failed = []
        for helper in helpers:
            while helper.exitcode is None:
                helper.join(0.5)
                if should_stop():
                    self.stop()
                if progress is not None:
                    progress(self.finished(), total)
            if helper.exitcode != 0:
                failed.append(f"{helper.name} stopped with exit code {helper.exitcode}")
                log.error("%s", failed[-1])
        if helpers and progress is not None:
            progress(self.finished(), total)
        return "; ".join(failed)


def _helper(batches: Sender, transport: Transport) -> None:
    """A forked sender: the same loop, over connections of its own (the engine's pool was
    emptied before the fork), until a stop or no row is left."""
    try:
        batches.run(transport, lambda: False, None, 0)
    finally:
        batches.engine.dispose()
