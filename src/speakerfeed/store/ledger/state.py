"""A send's state and the tally of its rows: what the send loop, the scheduler and the CLI read
(``send_row``, ``counts``, ``errors``) and change (``set_send_state``), and the
rows a stopped sender left in flight (``workers_in_flight``, ``release_stale``,
``resend_unknown``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from sqlalchemy import Connection, func, or_, select, update

from speakerfeed.models import DeliveryState, SendState
from speakerfeed.store.ledger.rows import utc_now
from speakerfeed.store.schema import DELIVERY_STATES, deliveries, sends


def release_stale(
    conn: Connection, send_id: str, *, older_than: timedelta, dead_workers: Sequence[str] = ()
) -> int:
    """Rows left ``sending`` by a worker known to be dead, or longer than ``older_than`` (a
    worker elsewhere that stopped answering), become ``unknown``."""
    stale = deliveries.c.updated_at < utc_now() - older_than
    if dead_workers:
        stale = or_(stale, deliveries.c.worker.in_(list(dead_workers)))
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.send_id == send_id, deliveries.c.state == DeliveryState.SENDING, stale)
        .values(
            state=DeliveryState.UNKNOWN,
            detail="the sender stopped while this message was in flight",
        )
    )
    return int(result.rowcount or 0)


def workers_in_flight(conn: Connection, send_id: str) -> list[str]:
    """The workers holding rows of the send in flight."""
    found = conn.execute(
        select(deliveries.c.worker)
        .where(deliveries.c.send_id == send_id, deliveries.c.state == DeliveryState.SENDING)
        .distinct()
    )
    return [str(worker) for worker in found.scalars()]


def resend_unknown(conn: Connection, send_id: str) -> int:
    """An operator's choice: try the ``unknown`` rows again (some may get a second copy)."""
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.send_id == send_id, deliveries.c.state == DeliveryState.UNKNOWN)
        .values(state=DeliveryState.PENDING, updated_at=utc_now())
    )
    return int(result.rowcount or 0)


def counts(conn: Connection, send_id: str) -> dict[str, int]:
    """Rows per state, every state present (0 when none)."""
    found: dict[str, int] = dict.fromkeys(DELIVERY_STATES, 0)
    rows = conn.execute(
        select(deliveries.c.state, func.count())
        .where(deliveries.c.send_id == send_id)
        .group_by(deliveries.c.state)
    ).all()
    for state, number in rows:
        found[str(state)] = int(number)
    return found


def errors(conn: Connection, send_id: str, *, limit: int = 20) -> list[tuple[str, int]]:
    """The commonest failure details of a send, with how many rows each."""
    rows = conn.execute(
        select(deliveries.c.detail, func.count().label("n"))
        .where(
            deliveries.c.send_id == send_id,
            deliveries.c.state.in_((DeliveryState.FAILED, DeliveryState.UNKNOWN)),
        )
        .group_by(deliveries.c.detail)
        .order_by(func.count().desc())
        .limit(limit)
    ).all()
    return [(str(row.detail), int(row.n)) for row in rows]


def set_send_state(
    conn: Connection, send_id: str, state: SendState, *, error: str = "", add_errors: int = 0
) -> None:
    values: dict[str, object] = {"state": state}
    if state in (SendState.DONE, SendState.CANCELLED):
        values["finished_at"] = utc_now()
    if error:
        values["last_error"] = error[:2000]
    if add_errors:
        values["errors"] = sends.c.errors + add_errors
    conn.execute(update(sends).where(sends.c.id == send_id).values(**values))


def send_row(conn: Connection, send_id: str) -> Mapping[str, object] | None:
    row = conn.execute(select(sends).where(sends.c.id == send_id)).first()
    return None if row is None else dict(row._mapping)
