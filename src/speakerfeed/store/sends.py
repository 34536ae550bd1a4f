"""Which sends are where: the queries the scheduler, the send loop and the editors' commands ask
of the sends table (the ledger's rows are store.ledger's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, RowMapping, select

from speakerfeed.models import SendState
from speakerfeed.store.schema import sends


@dataclass(frozen=True, slots=True)
class SendRecord:
    """A send as the editors' commands show it (its content aside)."""

    id: str
    list_name: str
    cadence: str
    state: str
    subject: str
    scheduled_at: datetime
    created_at: datetime
    finished_at: datetime | None


_RECORD = select(
    sends.c.id,
    sends.c.list_name,
    sends.c.cadence,
    sends.c.state,
    sends.c.subject,
    sends.c.scheduled_at,
    sends.c.created_at,
    sends.c.finished_at,
)


def _record(row: RowMapping) -> SendRecord:
    return SendRecord(
        id=str(row["id"]),
        list_name=str(row["list_name"]),
        cadence=str(row["cadence"]),
        state=str(row["state"]),
        subject=str(row["subject"]),
        scheduled_at=row["scheduled_at"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


def find_send(conn: Connection, send_id: str) -> SendRecord | None:
    """The send with this id, or None."""
    row = conn.execute(_RECORD.where(sends.c.id == send_id)).mappings().first()
    return None if row is None else _record(row)


def newest_sends(conn: Connection, *, limit: int) -> list[SendRecord]:
    """Up to ``limit`` sends, newest first."""
    rows = conn.execute(_RECORD.order_by(sends.c.created_at.desc()).limit(limit)).mappings()
    return [_record(row) for row in rows]


def unfinished_send(engine: Engine, list_name: str, cadence: str = "") -> str | None:
    """The oldest send of the list's ``cadence`` that is still sending or paused."""
    with engine.connect() as conn:
        found = conn.execute(
            select(sends.c.id)
            .where(
                sends.c.list_name == list_name,
                sends.c.cadence == cadence,
                sends.c.state.in_((SendState.SENDING, SendState.PAUSED)),
            )
            .order_by(sends.c.created_at)
            .limit(1)
        ).scalar()
    return None if found is None else str(found)


def active_send_ids(engine: Engine) -> list[str]:
    """The sends in state "sending", oldest first: what the send loop works on."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(sends.c.id)
            .where(sends.c.state == SendState.SENDING)
            .order_by(sends.c.created_at)
        )
        return [str(send_id) for send_id in rows.scalars()]
