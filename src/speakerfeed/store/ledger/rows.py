"""What the ledger's modules share: the rows a sender took, and how a batch's rows are named
and set in one statement.

A batch's rows are named in each statement as one bound parameter (a JSON array on SQLite, an
array on PostgreSQL) however many there are: binding one parameter per row cost more than the
statements themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    String,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.sql import ColumnElement

from speakerfeed.models import DeliveryState
from speakerfeed.store.ledger import sqlite
from speakerfeed.store.schema import deliveries


@dataclass(frozen=True, slots=True)
class Taken:
    """The rows ``take`` marked ``sending``: their subscriber ids in order, and on SQLite each
    row's rowid, by which ``screen`` and ``record`` find it again (one lookup in the table, not
    one in the primary key's index and then one in the table). ``confirmed``: the rows were
    added from the list's confirmed subscribers as they were taken (``claim_audience``), so
    ``screen`` need not read their subscriptions again, only whether they are suppressed."""

    ids: list[str]
    rowids: Mapping[str, int] = field(default_factory=dict)
    confirmed: bool = False


def utc_now() -> datetime:
    return datetime.now(UTC)


def is_pending(state: ColumnElement[str]) -> ColumnElement[bool]:
    """``state = 'pending'`` with the value written in: the partial index of pending rows
    (schema.PENDING) serves a query only when its condition says the same, which a bound
    parameter does not."""
    return state == literal_column("'pending'", String)


def among(conn: Connection, column: ColumnElement[Any], values: Sequence[object]) -> Any:
    """``column IN values`` with the values as one bound parameter, however many: a JSON array
    read by json_each on SQLite, an array on PostgreSQL. Binding (and SQLAlchemy expanding)
    one parameter per value took longer than the query itself for a batch of 1,000."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    each = func.json_each(bindparam(None, json.dumps(list(values)))).table_valued("value")
    return column.in_(select(each.c.value))


def set_rows(
    conn: Connection,
    send_id: str,
    subscriber_ids: Sequence[str],
    *,
    state: DeliveryState,
    now: datetime,
    worker: str | None = None,
    provider_id: str | None = None,
    detail: str | None = None,
    only_from: DeliveryState | None = None,
    rowids: Mapping[str, int] | None = None,
) -> None:
    """Set the rows of ``subscriber_ids``; on SQLite by rowid where ``rowids`` has them all."""
    values: dict[str, object] = {"state": state, "updated_at": now}
    if worker is not None:
        values["worker"] = worker
    if provider_id is not None:
        values["provider_id"] = provider_id
    if detail is not None:
        values["detail"] = detail
    if rowids and conn.dialect.name == "sqlite":
        found = [rowids[key] for key in subscriber_ids if key in rowids]
        if len(found) == len(subscriber_ids):
            sqlite.set_by_rowid(conn, send_id, found, values, only_from=only_from)
            return
    statement = update(deliveries).where(
        deliveries.c.send_id == send_id,
        among(conn, deliveries.c.subscriber_id, subscriber_ids),
    )
    if only_from is not None:
        statement = statement.where(deliveries.c.state == only_from)
    conn.execute(statement.values(**values))
