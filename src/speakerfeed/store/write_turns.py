"""SQLite: the threads of one process take turns at the write lock (see WriteTurns)."""

from __future__ import annotations

import os
import re
import threading
import weakref
from typing import Any

from sqlalchemy import Connection, Engine, event


def take_write_turn(conn: Connection) -> None:
    """For a write through the sqlite3 connection itself (unseen by the engine's events): take
    this process's turn at SQLite's write lock first (see WriteTurns)."""
    turns = _TURNS.get(conn.engine)
    if turns is not None:
        turns.take(conn)


# The statements that take SQLite's write lock (the sqlite3 module begins a transaction before
# them; a SELECT alone takes none).
_WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)
_HOLDS_TURN = "speakerfeed_write_turn"
_TURNS: weakref.WeakKeyDictionary[Engine, WriteTurns] = weakref.WeakKeyDictionary()


class WriteTurns:
    """The threads of one process take turns at SQLite's write lock on a lock of their own.

    SQLite lets one writer in at a time and makes the others poll it, sleeping 1, 2, 5, 10 ms
    and up to 100 ms between tries, so under load a waiter often slept on long after the lock
    was free, and one could lose every try for the whole busy timeout ("database is locked"):
    a reader's sign-up behind a send's batches took seconds (bench/load.py). Here a transaction
    takes the turn before its first write and gives it back at its commit or rollback; the next
    waiter wakes at once. A turn not had within the busy timeout (a thread writing on two
    connections at once, say) is gone without: SQLite's own lock and timeout decide, as before.
    Other processes still meet at SQLite's lock (digest.processes.Shared.writing for a send's)."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout  # seconds: the busy timeout
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._lock = threading.Lock()  # a thread of the parent may have held it: not here

    def install(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before_execute)
        event.listen(engine, "commit", self._give_back)
        event.listen(engine, "rollback", self._give_back)
        event.listen(engine.pool, "checkin", self._checked_in)
        _TURNS[engine] = self

    def take(self, conn: Connection) -> None:
        info = conn.connection.info
        if _HOLDS_TURN not in info and self._lock.acquire(timeout=self._timeout):
            info[_HOLDS_TURN] = self._lock

    def _before_execute(self, conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if _WRITES.match(statement):
            self.take(conn)

    def _give_back(self, conn: Connection) -> None:
        self._release(conn.connection.info)

    def _checked_in(self, _dbapi_connection: Any, record: Any) -> None:
        self._release(record.info)  # a connection closed mid-transaction: its rollback ran

    @staticmethod
    def _release(info: dict[Any, Any]) -> None:
        lock = info.pop(_HOLDS_TURN, None)
        if lock is not None:
            lock.release()
