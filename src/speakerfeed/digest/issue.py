"""A list's next digest put into the ledger, ready for dispatch.run_send.

The digest is selected, rendered once and linted (an error blocks it); then, in one transaction,
the send is recorded (its rows are added by the senders as they go) with the articles the digest
holds (store.inclusions: no later digest of the list's cadence holds them again), and the
digest's web copy is published.
A list with an unfinished send gets no new one until that send is finished or cancelled:
resuming it comes first.

Each of a list's cadences is a send of its own: its digest goes to the confirmed subscribers who
chose that cadence ("" for the list's own schedule), leaves out only what that cadence's digests
held, and waits only for that cadence's unfinished send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from speakerfeed.config import ListSettings, Settings
from speakerfeed.digest.archive import write_digest_archive
from speakerfeed.digest.prepare import Preview, prepare
from speakerfeed.digest.select import cadence_schedule
from speakerfeed.errors import ConfigError, Problem
from speakerfeed.store import inclusions, ledger
from speakerfeed.store.sends import unfinished_send


@dataclass(frozen=True, slots=True)
class Issued:
    """A new send, recorded and ready for run_send."""

    send_id: str


@dataclass(frozen=True, slots=True)
class Unfinished:
    """The list's (cadence's) send still sending or paused: resume it first, nothing new."""

    send_id: str


@dataclass(frozen=True, slots=True)
class Blocked:
    """The pre-send lint found errors (in ``preview.findings``): nothing was recorded."""

    preview: Preview


@dataclass(frozen=True, slots=True)
class NothingNew:
    """No article is due (every one is in an earlier digest of the list's cadence, or too old):
    no digest."""


# What ``open_send`` did: match on it (each case once, typing.assert_never for the rest).
Opened: TypeAlias = Issued | Unfinished | Blocked | NothingNew


def open_send(
    engine: Engine,
    settings: Settings,
    list_settings: ListSettings,
    *,
    now: datetime,
    scheduled_at: datetime | None = None,
    fetch_upstreams: bool = True,
    cadence: str = "",
) -> Opened:
    """Record the next digest of the list's ``cadence`` ("": its own schedule) as a send
    scheduled for ``scheduled_at`` (default: now), with the articles it holds."""
    cadence_schedule(list_settings, cadence)  # an unknown cadence is refused
    try:
        return _open(engine, settings, list_settings, now, scheduled_at, fetch_upstreams, cadence)
    except IntegrityError:
        # Another process recorded a digest of this cadence meanwhile, holding some of the same
        # articles (or with the same id): nothing of ours was. Once more, which now sees its
        # send (Unfinished) or leaves its articles out.
        return _open(engine, settings, list_settings, now, scheduled_at, fetch_upstreams, cadence)


def _open(
    engine: Engine,
    settings: Settings,
    list_settings: ListSettings,
    now: datetime,
    scheduled_at: datetime | None,
    fetch_upstreams: bool,
    cadence: str,
) -> Opened:
    unfinished = unfinished_send(engine, list_settings.name, cadence)
    if unfinished is not None:
        return Unfinished(unfinished)
    made = prepare(
        engine, settings, list_settings, fetch_upstreams=fetch_upstreams, now=now, cadence=cadence
    )
    if made is None:
        return NothingNew()
    if made.blocked:
        return Blocked(made)
    rendered = made.rendered
    content = ledger.SendContent(
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        view_url=rendered.view_url,
        # Frozen with the send: filed away as sent once it is done (digest.note).
        editor_note=made.note.source if made.note else "",
    )
    send_id = rendered.digest.id
    with engine.begin() as conn:
        created = ledger.create_send(
            conn,
            send_id,
            list_settings.name,
            content,
            scheduled_at=scheduled_at or now,
            cadence=cadence,
            named_cadences=list_settings.cadences,
            record_audience=False,  # the senders add it as they go: the first mail leaves at once
        )
        if not created:
            # A run that fired twice: the send and its web copy are the first run's.
            _check_same_digest(conn, send_id, list_settings.name, cadence)
            return Issued(send_id)
        # With the send, in one transaction: a crash before the commit leaves the articles for
        # the next digest, one after it a send that resumes; none is lost or sent twice.
        articles = [article.id for article in rendered.digest.articles]
        inclusions.record(conn, send_id, list_settings.name, cadence, articles, at=now)
        # Inside the transaction: if publishing fails, no send is recorded either.
        write_digest_archive(settings, rendered)
    return Issued(send_id)


def _check_same_digest(conn: Connection, send_id: str, list_name: str, cadence: str) -> None:
    """A send that exists already is fine when it is this digest (a run that fired twice), but
    list "a-b" and list "a" with cadence "b" make the same ids: never send one for the other."""
    row = ledger.send_row(conn, send_id)
    if row is None or (row["list_name"], row["cadence"]) == (list_name, cadence):
        return
    owner = f"list {row['list_name']}" + (f", cadence {row['cadence']}" if row["cadence"] else "")
    message = (
        f"digest id {send_id!r} is already taken by a send of {owner}; "
        "rename a list or a cadence so that their digest ids differ"
    )
    raise ConfigError([Problem("lists", message)])
