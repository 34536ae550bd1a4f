"""Sending a list's digest and following the sends in the delivery ledger: send now, list the
sends, show one, resume one.

A send is recorded first (digest.issue.open_send: linted, an error blocks it) and then run
through the ledger (digest.deliver.run_send), so each reader gets it once even across crashes;
a list whose last send is unfinished carries on with that one instead of starting another.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeAlias, assert_never

from sqlalchemy import Connection

from speakerfeed.actions.database import Store
from speakerfeed.config import Settings
from speakerfeed.digest import deliver
from speakerfeed.digest.deliver import Progress, SendReport
from speakerfeed.digest.issue import Blocked, Issued, NothingNew, Unfinished, open_send
from speakerfeed.errors import SendNotFoundError
from speakerfeed.store import ledger
from speakerfeed.store.sends import SendRecord, find_send, newest_sends
from speakerfeed.transports.base import Transport
from speakerfeed.transports.registry import transport_from_settings


def transport_for(settings: Settings) -> Transport:
    """The transport [delivery] names, made now: make it before a send is recorded, so that a
    missing password or API key is reported before anything is (TransportError)."""
    return transport_from_settings(settings.delivery, settings.root)


@dataclass(frozen=True, slots=True)
class Sent:
    """The send that ran: a new one (``Issued``) or the list's unfinished one carried on."""

    opened: Issued | Unfinished
    report: SendReport


SendNow: TypeAlias = Sent | Blocked | NothingNew


def send_now(
    settings: Settings,
    store: Store,
    list_name: str,
    transport: Transport,
    *,
    cadence: str = "",
    fetch_upstreams: bool = True,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> SendNow:
    """Record the list's next digest of ``cadence`` ("": its own schedule) as a send and run
    it to its confirmed subscribers who get that cadence's digests; or carry on with the
    list's unfinished send of that cadence. ``Blocked`` (nothing recorded) when the lint finds
    an error, ``NothingNew`` when no article is new since the cadence's last digest. ``now``
    (default: the time of the call) dates the digest and is when the send's lateness is
    measured."""
    opened = open_send(
        store.engine,
        settings,
        settings.require_list(list_name),
        now=now or datetime.now(UTC),
        fetch_upstreams=fetch_upstreams,
        cadence=cadence,
    )
    match opened:
        case Issued(send_id) | Unfinished(send_id):
            report = deliver.run_send(
                store.engine,
                settings,
                send_id,
                transport,
                secret=store.secret,
                progress=progress,
                now=now,
            )
            return Sent(opened, report)
        case Blocked() | NothingNew():
            return opened
        case _:
            assert_never(opened)


@dataclass(frozen=True, slots=True)
class SendSummary:
    id: str
    state: str
    done: int  # messages sent
    total: int  # the rows in the ledger and the people still to be added to it
    created_at: datetime


def list_sends(settings: Settings, store: Store, *, limit: int = 20) -> list[SendSummary]:
    """The newest ``limit`` sends, newest first, with how far each got."""
    with store.engine.connect() as conn:
        found = []
        for send in newest_sends(conn, limit=limit):
            counts = ledger.counts(conn, send.id)
            total = sum(counts.values()) + _audience_left(conn, settings, send)
            found.append(SendSummary(send.id, send.state, counts["sent"], total, send.created_at))
    return found


@dataclass(frozen=True, slots=True)
class SendDetails:
    send: SendRecord
    counts: dict[str, int]  # rows per state, every state
    left: int  # people still to be added to the ledger as the send goes on
    errors: list[tuple[str, int]]  # the commonest failure details, with how many rows each


def show_send(settings: Settings, store: Store, send_id: str) -> SendDetails:
    """One send: its record, its rows per state and its commonest errors (SendNotFoundError
    for an unknown id)."""
    with store.engine.connect() as conn:
        send = find_send(conn, send_id)
        if send is None:
            raise SendNotFoundError(send_id)
        return SendDetails(
            send=send,
            counts=ledger.counts(conn, send_id),
            left=_audience_left(conn, settings, send),
            errors=ledger.errors(conn, send_id),
        )


@dataclass(frozen=True, slots=True)
class Resumed:
    again: int  # unknown rows made pending again (with ``resend_unknown``)
    report: SendReport


def resume_send(
    settings: Settings,
    store: Store,
    send_id: str,
    transport: Transport,
    *,
    resend_unknown: bool = False,
    progress: Progress | None = None,
) -> Resumed:
    """Carry on with an interrupted or paused send, its pending rows only; with
    ``resend_unknown``, also the rows whose fate is unknown (some may get a second copy).
    SendNotFoundError for an unknown id."""
    again = deliver.resume(store.engine, send_id, resend_unknown=resend_unknown)
    report = deliver.run_send(
        store.engine, settings, send_id, transport, secret=store.secret, progress=progress
    )
    return Resumed(again, report)


def _audience_left(conn: Connection, settings: Settings, send: SendRecord) -> int:
    """The people still to be added to a send's ledger (see ledger.claim_audience)."""
    found = settings.mailing_list(send.list_name)
    named: Collection[str] = () if found is None else found.cadences  # a list since removed
    return ledger.audience_left(conn, send.id, named_cadences=named)
