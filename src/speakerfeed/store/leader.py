"""Electing the one process that runs the scheduler.

On PostgreSQL a session-level advisory lock, held on a connection kept for the purpose: the
server releases it the moment that process or its connection dies, so another takes over at
its next try. On SQLite, where every process is on one machine, a lease row renewed while the
holder lives: a holder that stops renewing loses it when it expires.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import SQLAlchemyError

from speakerfeed.store.schema import leases
from speakerfeed.store.subscribers import upsert_statement


def _lock_key(name: str) -> int:
    # A stable signed 64-bit key per role name, as pg_advisory_lock takes.
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


class Leadership:
    def __init__(self, engine: Engine, name: str, holder: str, *, ttl: timedelta) -> None:
        self.engine, self.name, self.holder, self.ttl = engine, name, holder, ttl
        self._connection: Connection | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None if self._postgresql else self._lease_held

    @property
    def _postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    _lease_held = False

    def try_acquire(self) -> bool:
        """Take or keep the role; True while this process holds it. Call it periodically."""
        if self._postgresql:
            return self._try_advisory_lock()
        self._lease_held = self._renew_lease()
        return self._lease_held

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _lock_key(self.name)}
                )
                self._connection.commit()
            finally:
                self._connection.close()
                self._connection = None
        elif self._lease_held:
            with self.engine.begin() as conn:
                conn.execute(
                    leases.delete().where(
                        leases.c.name == self.name, leases.c.holder == self.holder
                    )
                )
            self._lease_held = False

    def _try_advisory_lock(self) -> bool:
        if self._connection is not None:
            try:  # still connected: the lock is still ours
                self._connection.execute(text("SELECT 1"))
                self._connection.commit()
                return True
            except SQLAlchemyError:  # the connection died, and the lock with it
                self._connection = None
        connection = self.engine.connect()
        got = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": _lock_key(self.name)}
        ).scalar()
        connection.commit()
        if got:
            self._connection = connection
            return True
        connection.close()
        return False

    def _renew_lease(self) -> bool:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            statement = upsert_statement(conn, leases).values(
                name=self.name, holder=self.holder, expires_at=now + self.ttl
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["name"],
                    set_={"holder": self.holder, "expires_at": now + self.ttl},
                    where=(leases.c.holder == self.holder) | (leases.c.expires_at < now),
                )
            )
            holder = conn.execute(select(leases.c.holder).where(leases.c.name == self.name))
            return holder.scalar() == self.holder
