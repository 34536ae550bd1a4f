"""The delivery ledger: one row per (send, subscriber), so a send survives crashes and restarts.

A send's rows are its audience: the confirmed subscribers of its list (and cadence), added in
subscriber order, all at once by ``create_send`` or a batch at a time by the senders as they run
out of pending rows (``claim_audience``, which adds the rows already claimed), so a large send
starts at once.

A row's life: ``pending`` -> ``sending`` (claimed by a worker and handed to the transport) ->
``sent`` (the provider accepted it) | ``failed`` (refused for good) | ``unknown`` (the worker
died, or the connection broke, after the message may have left: never resent automatically) |
``skipped`` (the person left or was suppressed before their turn). A refusal for now (deferred)
goes back to ``pending``.

Claiming takes a batch of pending rows and marks them ``sending`` (``take``: PostgreSQL locks
them first, ``FOR UPDATE SKIP LOCKED``; on SQLite it is one UPDATE ... RETURNING, the
transaction's first statement, so it holds the one write lock before it reads: either way
several processes share a send and never take the same row), then checks each person is still
subscribed and not suppressed and marks the others ``skipped`` (``screen``). A sender commits
each on its own, so that SQLite's write lock is held for the take only. Only then is the batch
handed to the transport, and its results are written once they are in (a sender writes them in
the same transaction as its next take). A crash in between leaves ``sending`` rows, which a
later ``release_stale`` turns into ``unknown``: reported, and resent only when an operator asks
(``resend_unknown``).

Only pending rows are indexed by state (schema.PENDING): a take removes its rows from that
index, rows added already claimed never enter it, and writing a result changes no index at
all. On SQLite, ``take`` and ``claim_audience`` also return each row's rowid, by which
``screen`` and ``record`` find it again, and the statements run once per batch are SQL text on
the sqlite3 connection (ledger.sqlite: SQLAlchemy's own work per statement and per row was a
large part of their time). There ``record`` writes a batch's results in one statement per new
state, each row with its own provider id and detail (an SMTP reply differs for every message).

A batch's rows are named in each statement as one bound parameter (a JSON array on SQLite, an
array on PostgreSQL) however many there are: binding one parameter per row cost more than the
statements themselves.

The modules: ``audience`` (a send and its rows), ``batches`` (a sender's take, screen and
record), ``state`` (a send's state and the tally of its rows), ``rows`` (what they share), and
per engine the statements run once per batch, ``sqlite`` and ``postgresql``. Import the
functions from here.
"""

from __future__ import annotations

from speakerfeed.store.ledger.audience import (
    SendContent,
    audience_left,
    claim_audience,
    create_send,
)
from speakerfeed.store.ledger.batches import record, screen, suppress_bounced, take
from speakerfeed.store.ledger.rows import Taken
from speakerfeed.store.ledger.state import (
    counts,
    errors,
    release_stale,
    resend_unknown,
    send_row,
    set_send_state,
    workers_in_flight,
)

__all__ = [
    "SendContent",
    "Taken",
    "audience_left",
    "claim_audience",
    "counts",
    "create_send",
    "errors",
    "record",
    "release_stale",
    "resend_unknown",
    "screen",
    "send_row",
    "set_send_state",
    "suppress_bounced",
    "take",
    "workers_in_flight",
]
