"""Rate limits kept in the database, so every process of a deployment shares them.

One row per bucket: when its window started and the hits since. A window starts at the first hit
after the previous one ended (not on the clock's hour), so "one email per address per hour"
never lets two through either side of a boundary. ``hit`` is one upsert that starts a new window
or adds one to the current one and returns the count, atomically on both engines (the upsert
locks the row), so two requests at once can never both take the last free slot.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, bindparam, case, delete

from speakerfeed.store.schema import UTCDateTime, rate_limits
from speakerfeed.store.subscribers import upsert_statement


def bucket(secret: bytes, kind: str, who: str) -> str:
    """The bucket of ``who`` (an IP or address) for ``kind``: keyed-hashed, never stored plain."""
    digest = hmac.digest(secret, f"{kind}\0{who}".encode(), hashlib.sha256)
    return f"{kind}:{digest[:24].hex()}"


@dataclass(frozen=True, slots=True)
class Hit:
    allowed: bool  # at most ``limit`` hits in the window so far, this one included
    retry_after: int  # seconds until the window ends


def hit(
    conn: Connection,
    bucket_name: str,
    *,
    limit: int,
    window: timedelta,
    now: datetime | None = None,
) -> Hit:
    """Count one hit in the bucket's current window (starting a new one if it has ended)."""
    now = now or datetime.now(UTC)
    statement = upsert_statement(conn, rate_limits).values(
        bucket=bucket_name, window_start=now, hits=1
    )
    current = rate_limits.c.window_start > bindparam("cutoff", now - window, UTCDateTime)
    row = conn.execute(
        statement.on_conflict_do_update(
            index_elements=["bucket"],
            set_={
                "hits": case((current, rate_limits.c.hits + 1), else_=1),
                "window_start": case(
                    (current, rate_limits.c.window_start), else_=statement.excluded.window_start
                ),
            },
        ).returning(rate_limits.c.hits, rate_limits.c.window_start)
    ).one()
    ends = row.window_start + window
    return Hit(int(row.hits) <= limit, max(1, math.ceil((ends - now).total_seconds())))


def forget_before(conn: Connection, moment: datetime) -> int:
    """Delete the buckets whose window started before ``moment``; how many went."""
    result = conn.execute(delete(rate_limits).where(rate_limits.c.window_start < moment))
    return int(result.rowcount or 0)
