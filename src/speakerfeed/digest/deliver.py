"""Running a send through the ledger: claim a batch, hand it to the transport, record, repeat.

Each batch is claimed and committed before the transport sees it, and its results are committed
before the next batch is handed over. The next batch is claimed while the transport sends the
one before, so a crash leaves at most two batches ``sending``: the one in flight and the one
claimed next. A restart finds them and reports them as ``unknown`` instead of sending them again
(see store.ledger). Several processes can run the same send at once: each claims different rows.

A send that starts later than its maximum lateness is cancelled, not sent: a digest written for
7:00 is stale at noon. A send pauses after too many errors; ``resume`` carries on.

``run_send`` decides whether and how a send runs; the loop itself is digest.send_loop, and the
processes that share a send (and what they share) are digest.processes.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from speakerfeed.config import Settings
from speakerfeed.digest.letter import MessageTemplate
from speakerfeed.digest.note import file_sent_note
from speakerfeed.digest.processes import Progress, Shared, is_dead_here, worker_name
from speakerfeed.digest.send_loop import Batches
from speakerfeed.errors import SendNotFoundError
from speakerfeed.models import DeliveryState, Digest, RenderedDigest, SendState
from speakerfeed.store import ledger
from speakerfeed.transports.base import Transport
from speakerfeed.wording import counted

__all__ = ["FINISHED", "Progress", "SendReport", "resume", "run_send", "worker_name"]

log = logging.getLogger(__name__)

FINISHED = (
    DeliveryState.SENT,
    DeliveryState.FAILED,
    DeliveryState.UNKNOWN,
    DeliveryState.SKIPPED,
)


@dataclass
class SendReport:
    send_id: str
    state: str
    counts: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def summary(self) -> str:
        shown = ", ".join(f"{n} {state}" for state, n in self.counts.items() if n)
        return (
            f"{self.send_id}: {self.state}"
            + (f" ({shown})" if shown else "")
            + (f"; {self.note}" if self.note else "")
        )


def run_send(
    engine: Engine,
    settings: Settings,
    send_id: str,
    transport: Transport,
    *,
    secret: bytes,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    now: datetime | None = None,
    processes: int | None = None,
) -> SendReport:
    """Send ``send_id``'s pending rows until none is left, the send pauses, or ``should_stop``.

    ``processes`` (default: [sending] processes): with more than one, this process and
    ``processes - 1`` forked from it send at once, each claiming its own batches. ``progress``
    and ``should_stop`` are called in this process only; the others follow its stop."""
    sending = settings.sending
    with engine.begin() as conn:
        row = ledger.send_row(conn, send_id)
        if row is None:
            raise SendNotFoundError(send_id)
        dead = [w for w in ledger.workers_in_flight(conn, send_id) if is_dead_here(w)]
        stale = ledger.release_stale(
            conn,
            send_id,
            older_than=timedelta(seconds=sending.claim_lease_seconds),
            dead_workers=dead,
        )
        if stale:
            log.warning(
                "%s: %s left in flight by a stopped sender now unknown",
                send_id,
                counted(stale, "row"),
            )
        state = str(row["state"])
        if state in (SendState.DONE, SendState.CANCELLED, SendState.PAUSED):
            return SendReport(send_id, state, ledger.counts(conn, send_id))
        scheduled = row["scheduled_at"]
        assert isinstance(scheduled, datetime)
        counts = ledger.counts(conn, send_id)
        late = (now or datetime.now(UTC)) - scheduled
        limit = sending.max_lateness_minutes
        if counts[DeliveryState.SENT] == 0 and late > timedelta(minutes=limit):
            note = f"not sent: {_minutes(late)} late, over the maximum of {limit}"
            ledger.set_send_state(conn, send_id, SendState.CANCELLED, error=note)
            log.warning("%s: %s", send_id, note)
            return SendReport(send_id, SendState.CANCELLED, counts, note)
    named_cadences = tuple(settings.require_list(str(row["list_name"])).cadences)
    total = sum(counts.values())
    if progress is not None and not row["audience_complete"]:
        with engine.connect() as conn:  # for the progress bar: the rows still to be added
            total += ledger.audience_left(conn, send_id, named_cadences=named_cadences)
    shared = Shared(processes or sending.processes, sum(counts[s] for s in FINISHED))
    batches = Batches(
        engine,
        settings,
        send_id,
        _template(settings, row, secret),
        secret,
        shared,
        named_cadences,
    )
    # Everything that exists now (modules, settings, the template) outlives the send: frozen,
    # the garbage collector's full passes skip it, which took much of the send's CPU time.
    # Forked processes start frozen too.
    gc.freeze()
    try:
        helpers = shared.start_helpers(batches, transport)
        paused = batches.run(transport, should_stop, progress, total)
        trouble = shared.join_helpers(helpers, should_stop, progress, total)
    finally:
        gc.unfreeze()
    if paused is not None:
        return _report(engine, send_id, SendState.PAUSED, paused)
    with engine.begin() as conn:
        counts = ledger.counts(conn, send_id)
        now_row = ledger.send_row(conn, send_id)
        if now_row is not None and now_row["state"] == SendState.PAUSED:  # by another process
            return SendReport(send_id, SendState.PAUSED, counts, str(now_row["last_error"]))
        complete = now_row is not None and bool(now_row["audience_complete"])
        unfinished = counts[DeliveryState.PENDING] + counts[DeliveryState.SENDING]
        if complete and unfinished == 0:
            ledger.set_send_state(conn, send_id, SendState.DONE)
            state = SendState.DONE
            if progress is not None:  # every recipient finished: the bar ends at 100 %
                finished = sum(counts[s] for s in FINISHED)
                progress(finished, finished)
        else:
            state = SendState.SENDING
    if state == SendState.DONE and now_row is not None:
        _file_note(settings, now_row)
    report = SendReport(send_id, state, counts, trouble)
    log.info("send %s", report.summary())
    return report


def resume(engine: Engine, send_id: str, *, resend_unknown: bool = False) -> int:
    """Make a paused send runnable again; with ``resend_unknown``, its unknown rows too."""
    with engine.begin() as conn:
        row = ledger.send_row(conn, send_id)
        if row is None:
            raise SendNotFoundError(send_id)
        again = ledger.resend_unknown(conn, send_id) if resend_unknown else 0
        if row["state"] in (SendState.PAUSED, SendState.DONE) or again:
            ledger.set_send_state(conn, send_id, SendState.SENDING)
        return again


def _template(settings: Settings, row: Mapping[str, object], secret: bytes) -> MessageTemplate:
    list_settings = settings.require_list(str(row["list_name"]))
    created = row["created_at"]
    assert isinstance(created, datetime)
    digest = Digest(
        id=str(row["id"]),
        list_name=list_settings.name,
        list_title=list_settings.title,
        articles=(),
        issued=created,
    )
    rendered = RenderedDigest(
        digest=digest,
        subject=str(row["subject"]),
        preheader="",
        html=str(row["html"]),
        text=str(row["text"]),
        view_url=str(row["view_url"]),
    )
    return MessageTemplate.build(rendered, settings, list_settings, secret)


def _file_note(settings: Settings, row: Mapping[str, object]) -> None:
    """The send is done: its editor's note goes to notes/sent/ (digest.note). The send is
    recorded done already; a note that cannot be moved is logged, not a failed send."""
    try:
        file_sent_note(settings, str(row["list_name"]), str(row["id"]), str(row["editor_note"]))
    except OSError as exc:
        log.error("%s: the editor's note could not be filed as sent: %s", row["id"], exc)


def _report(engine: Engine, send_id: str, state: str, note: str) -> SendReport:
    with engine.connect() as conn:
        return SendReport(send_id, state, ledger.counts(conn, send_id), note)


def _minutes(delta: timedelta) -> str:
    return counted(int(delta.total_seconds() // 60), "minute")
