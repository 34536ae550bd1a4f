"""Running a send through the ledger: claim a batch, hand it to the transport, record, repeat.

Each batch is claimed and committed before the transport sees it, and its results are committed
before the next batch is handed over. The next batch is claimed while the transport sends the
one before, so a crash leaves at most two batches ``sending``: the one in flight and the one
claimed next. A restart finds them and reports them as ``unknown`` instead of sending them again
(see store.ledger). Several processes can run the same send at once: each claims different rows.

A send that starts later than its maximum lateness is cancelled, not sent: a digest written for
7:00 is stale at noon. A send pauses after too many errors; ``resume`` carries on.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.process import BaseProcess

from sqlalchemy import Connection, Engine

from speakerfeed.config import Settings
from speakerfeed.digest.letter import MessageTemplate
from speakerfeed.errors import TransportError
from speakerfeed.models import (
    DeliveryResult,
    DeliveryState,
    Digest,
    Outcome,
    RenderedDigest,
    SendState,
    Subscriber,
)
from speakerfeed.store import ledger
from speakerfeed.transports.base import InFlight, Transport

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (rows finished, rows in the send)
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


def worker_name() -> str:
    """Who holds a claimed row: this machine and process."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


def _is_dead_here(worker: str) -> bool:
    """True for a worker of this machine whose process is gone: its rows need not wait for the
    lease to run out. A worker on another machine is left to the lease."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname()[:40] or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


class TokenBucket:
    """At most ``rate`` messages a second on average (0: no limit), in bursts of one batch."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.clock = rate, clock
        self.allowance_at = clock()

    def wait(self, messages: int, sleep: Callable[[float], None] = time.sleep) -> None:
        if self.rate <= 0:
            return
        now = self.clock()
        self.allowance_at = max(self.allowance_at, now) + messages / self.rate
        ahead = self.allowance_at - now - messages / self.rate
        if ahead > 0:
            sleep(ahead)


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
            raise LookupError(f"no send with id {send_id!r}")
        dead = [w for w in ledger.workers_in_flight(conn, send_id) if _is_dead_here(w)]
        stale = ledger.release_stale(
            conn,
            send_id,
            older_than=timedelta(seconds=sending.claim_lease_seconds),
            dead_workers=dead,
        )
        if stale:
            log.warning(
                "%s: %d rows left in flight by a stopped sender are now unknown", send_id, stale
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
    shared = _Shared(processes or sending.processes, sum(counts[s] for s in FINISHED))
    batches = _Batches(
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
        else:
            state = SendState.SENDING
    report = SendReport(send_id, state, counts, trouble)
    log.info("send %s", report.summary())
    return report


class _Shared:
    """What the processes of one send share: rows finished, errors, and a stop. Plain numbers
    for one process; shared memory (from ``multiprocessing``, forked) for several."""

    def __init__(self, processes: int, finished: int) -> None:
        if processes > 1 and "fork" not in multiprocessing.get_all_start_methods():
            log.warning("this system cannot fork: sending from one process")
            processes = 1
        self.processes = processes
        self._context = multiprocessing.get_context("fork") if processes > 1 else None
        if self._context is None:
            self._counts = [finished, 0]  # rows finished, errors
            self._stopped = False
            return
        self._finished = self._context.Value("q", finished)
        self._errors = self._context.Value("q", 0)
        self._stop = self._context.Event()
        self._write_lock = self._context.Lock()

    def writing(self, engine: Engine) -> AbstractContextManager[object]:
        """Held around each write transaction of a send on SQLite by several processes.

        SQLite lets one writer in at a time and makes the others poll, sleeping 1, 2, 5, 10 ms
        and longer between tries: a process that waited for the lock often slept on well
        after it was free. Taking turns on a lock of their own, they wake as soon as it is."""
        if self._context is None or engine.dialect.name != "sqlite":
            return nullcontext()
        return self._write_lock

    def add(self, finished: int, errors: int) -> tuple[int, int]:
        """Count a batch's finished rows and errors; the send's totals so far."""
        if self._context is None:
            self._counts[0] += finished
            self._counts[1] += errors
            return self._counts[0], self._counts[1]
        with self._finished.get_lock():
            self._finished.value += finished
            with self._errors.get_lock():
                self._errors.value += errors
                return self._finished.value, self._errors.value

    def finished(self) -> int:
        return self._counts[0] if self._context is None else int(self._finished.value)

    def stop(self) -> None:
        if self._context is None:
            self._stopped = True
        else:
            self._stop.set()

    def stopped(self) -> bool:
        return self._stopped if self._context is None else self._stop.is_set()

    def start_helpers(self, batches: _Batches, transport: Transport) -> list[BaseProcess]:
        """The other processes, forked before this one opens the transport (or any
        connection a child must not share)."""
        if self._context is None:
            return []
        # No pooled connection is inherited: a child makes its own, and never uses (or, for
        # PostgreSQL, closes) this process's.
        batches.engine.dispose()
        helpers: list[BaseProcess] = [
            self._context.Process(
                target=_helper, args=(batches, transport), name=f"speakerfeed-send-{number}"
            )
            for number in range(1, self.processes)
        ]
        for helper in helpers:
            helper.start()
        return helpers

    def join_helpers(
        self,
        helpers: list[BaseProcess],
        should_stop: Callable[[], bool],
        progress: Progress | None,
        total: int,
    ) -> str:
        """Wait for the other processes, passing on a stop and reporting progress meanwhile;
        what went wrong with them, if anything."""
        failed = []
        for helper in helpers:
            while helper.exitcode is None:
                helper.join(0.5)
                if should_stop():
                    self.stop()
                if progress is not None:
                    progress(self.finished(), total)
            if helper.exitcode != 0:
                failed.append(f"{helper.name} stopped with exit code {helper.exitcode}")
                log.error("%s", failed[-1])
        if helpers and progress is not None:
            progress(self.finished(), total)
        return "; ".join(failed)


@dataclass
class _Batches:
    """The send loop: claim a batch, hand it to the transport, record, repeat."""

    engine: Engine
    settings: Settings
    send_id: str
    template: MessageTemplate
    secret: bytes
    shared: _Shared
    named_cadences: tuple[str, ...]  # the list's, for adding the send's audience

    def run(
        self,
        transport: Transport,
        should_stop: Callable[[], bool],
        progress: Progress | None,
        total: int,
    ) -> str | None:
        """Until no row is left, or a stop; the note when the send paused.

        Two batches at a time: the next batch is claimed and handed over (``Transport.start``)
        while the provider answers for the one before, so this process has work meanwhile. Once
        two are out, the older one's results are written in the same transaction as the next
        take: one write, and one turn at SQLite's write lock, per batch instead of two. On a
        stop or a pause nothing more is claimed, and the batches already handed over are seen
        through and recorded."""
        bucket = TokenBucket(self.settings.sending.messages_per_second / self.shared.processes)
        worker = worker_name()
        in_flight: deque[tuple[_Claimed, InFlight]] = deque()
        note: str | None = None
        with transport:
            while True:
                answered = in_flight.popleft() if len(in_flight) == 2 else None
                claim = not (should_stop() or self.shared.stopped())
                claimed, note = self._record_and_claim(answered, worker, claim, progress, total)
                if note is not None or claimed is None:
                    break
                if not claimed.people:  # every one of them left or was suppressed
                    self._count(claimed.taken, {}, [], progress, total)
                    continue
                bucket.wait(len(claimed.people))
                try:
                    in_flight.append(
                        (claimed, transport.start(self.template.batch(claimed.people)))
                    )
                except TransportError as exc:  # raised before anything was sent
                    note = self._pause(claimed, exc)
                    break
            while in_flight:  # a pause's other batch too: it may have been sent
                later = self._record_and_claim(in_flight.popleft(), worker, False, progress, total)
                note = later[1] or note
        return note

    def _record_and_claim(
        self,
        answered: tuple[_Claimed, InFlight] | None,
        worker: str,
        claim: bool,
        progress: Progress | None,
        total: int,
    ) -> tuple[_Claimed | None, str | None]:
        """Write the results of ``answered`` (waiting for them), then, with ``claim`` and unless
        its errors pause the send, take the next batch, in one transaction; then screen that
        batch in a transaction of its own (SQLite's write lock, which the other processes wait
        for, is not held for it). (The batch, or None when no row is pending and the send's
        audience is all in the ledger; the note when the send paused.)"""
        results = [] if answered is None else answered[1].results()
        send_id, engine = self.send_id, self.engine
        note: str | None = None
        taken: ledger.Taken | None = None
        with self.shared.writing(engine), engine.begin() as conn:
            if answered is not None:
                note = self._record(conn, answered[0].taken, results, progress, total)
            if claim and note is None:
                taken = self._take(conn, worker)
        if taken is None or not taken.ids:
            return None, note
        with engine.begin() as conn:
            return _Claimed(taken, ledger.screen(conn, send_id, taken, secret=self.secret)), None

    def _take(self, conn: Connection, worker: str) -> ledger.Taken:
        """The next batch's rows: pending ones first (retries, or a send whose audience was
        recorded at once), then the next people of the send's audience, added already taken
        (ledger.claim_audience: one INSERT, where adding them pending and taking them was two
        writes per row and two changes to the index of pending rows)."""
        send_id, limit = self.send_id, self.settings.sending.batch_size
        taken = ledger.take(conn, send_id, worker=worker, limit=limit)
        if taken.ids:
            return taken
        return ledger.claim_audience(
            conn, send_id, worker=worker, named_cadences=self.named_cadences, limit=limit
        )

    def _pause(self, claimed: _Claimed, error: TransportError) -> str:
        """The transport cannot send at all: the batch goes back to ``pending`` and the send
        pauses, saying why."""
        send_id, note = self.send_id, str(error)
        with self.shared.writing(self.engine), self.engine.begin() as conn:
            deferred = [_deferred(person.id, note) for person in claimed.people]
            ledger.record(conn, send_id, deferred, rowids=claimed.taken.rowids)
            ledger.set_send_state(conn, send_id, SendState.PAUSED, error=note, add_errors=1)
        log.error("%s: paused: %s", send_id, note)
        self.shared.stop()
        return note

    def _record(
        self,
        conn: Connection,
        taken: ledger.Taken,
        results: list[DeliveryResult],
        progress: Progress | None,
        total: int,
    ) -> str | None:
        """Write a batch's results (for all the rows taken, the skipped ones among them); the
        note when its errors pause the send."""
        send_id = self.send_id
        recorded = ledger.record(conn, send_id, results, rowids=taken.rowids)
        bounced = [result.key for result in results if result.hard_bounce]
        if bounced:
            added = ledger.suppress_bounced(conn, bounced, secret=self.secret)
            log.warning(
                "%s: %d addresses refused for good (hard bounces), %d newly suppressed",
                send_id,
                len(bounced),
                added,
            )
        failures = [r for r in results if r.outcome is not Outcome.SENT]
        if failures:
            ledger.set_send_state(
                conn,
                send_id,
                SendState.SENDING,
                error=failures[-1].detail,
                add_errors=len(failures),
            )
        errors = self._count(taken, recorded, failures, progress, total)
        max_errors = self.settings.sending.max_errors
        if not (failures and max_errors and errors >= max_errors):
            return None
        note = f"paused after {errors} errors; last: {failures[-1].detail}"
        ledger.set_send_state(conn, send_id, SendState.PAUSED, error=note)
        log.error("%s: %s", send_id, note)
        self.shared.stop()
        return note

    def _count(
        self,
        taken: ledger.Taken,
        recorded: Mapping[str, int],
        failures: list[DeliveryResult],
        progress: Progress | None,
        total: int,
    ) -> int:
        """Count a batch's finished rows and errors; the send's errors so far."""
        finished = len(taken.ids) - recorded.get(DeliveryState.PENDING, 0)
        done, errors = self.shared.add(finished, len(failures))
        if progress is not None:
            progress(done, total)
        return errors


@dataclass(frozen=True, slots=True)
class _Claimed:
    """A batch taken and screened: its rows, and the people among them to send to."""

    taken: ledger.Taken
    people: list[Subscriber]


def _helper(batches: _Batches, transport: Transport) -> None:
    """A forked sender: the same loop, over connections of its own (the engine's pool was
    emptied before the fork), until a stop or no row is left."""
    try:
        batches.run(transport, lambda: False, None, 0)
    finally:
        batches.engine.dispose()


def resume(engine: Engine, send_id: str, *, resend_unknown: bool = False) -> int:
    """Make a paused send runnable again; with ``resend_unknown``, its unknown rows too."""
    with engine.begin() as conn:
        row = ledger.send_row(conn, send_id)
        if row is None:
            raise LookupError(f"no send with id {send_id!r}")
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


def _deferred(key: str, detail: str) -> DeliveryResult:
    return DeliveryResult(key, Outcome.DEFERRED, detail)


def _report(engine: Engine, send_id: str, state: str, note: str) -> SendReport:
    with engine.connect() as conn:
        return SendReport(send_id, state, ledger.counts(conn, send_id), note)


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} minutes"
