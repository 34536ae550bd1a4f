"""Which sends are where: the queries the scheduler, the send loop and the CLI ask of the
sends table (the ledger's rows are store.ledger's)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from speakerfeed.store.schema import sends


def unfinished_send(engine: Engine, list_name: str, cadence: str = "") -> str | None:
    """The oldest send of the list's ``cadence`` that is still sending or paused."""
    with engine.connect() as conn:
        found = conn.execute(
            select(sends.c.id)
            .where(
                sends.c.list_name == list_name,
                sends.c.cadence == cadence,
                sends.c.state.in_(("sending", "paused")),
            )
            .order_by(sends.c.created_at)
            .limit(1)
        ).scalar()
    return None if found is None else str(found)


def active_send_ids(engine: Engine) -> list[str]:
    """The sends in state "sending", oldest first: what the send loop works on."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(sends.c.id).where(sends.c.state == "sending").order_by(sends.c.created_at)
        )
        return [str(send_id) for send_id in rows.scalars()]
