"""Which lists' schedules an editor has paused (a list's pause holds its cadences too)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, delete, select

from speakerfeed.store.schema import schedule_pauses


def is_paused(engine: Engine, list_name: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(
            select(schedule_pauses.c.list_name).where(schedule_pauses.c.list_name == list_name)
        )
        return found.first() is not None


def set_paused(engine: Engine, list_name: str, paused: bool) -> None:
    with engine.begin() as conn:
        conn.execute(delete(schedule_pauses).where(schedule_pauses.c.list_name == list_name))
        if paused:
            conn.execute(
                schedule_pauses.insert().values(list_name=list_name, paused_at=datetime.now(UTC))
            )
