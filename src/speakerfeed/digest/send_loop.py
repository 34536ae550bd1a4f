"""The send loop of one process: claim a batch, hand it to the transport, record, repeat.

Two batches at a time: the next batch is claimed and handed over while the provider answers for
the one before. Each batch is claimed and committed before the transport sees it, and its
results are committed with the next claim (see ``Batches.run``). Messages go out at most at the
send's rate (``TokenBucket``), shared among its processes.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from speakerfeed.config import Settings
from speakerfeed.digest.letter import MessageTemplate
from speakerfeed.digest.processes import Progress, Shared, worker_name
from speakerfeed.errors import TransportError
from speakerfeed.models import DeliveryResult, DeliveryState, Outcome, SendState, Subscriber
from speakerfeed.store import ledger
from speakerfeed.transports.base import InFlight, LocalWriteError, Transport
from speakerfeed.wording import counted

log = logging.getLogger(__name__)


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


@dataclass
class Batches:
    """The send loop: claim a batch, hand it to the transport, record, repeat."""

    engine: Engine
    settings: Settings
    send_id: str
    template: MessageTemplate
    secret: bytes
    shared: Shared
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
        in_flight: deque[tuple[Claimed, InFlight]] = deque()
        note: str | None = None
        try:
            transport.open()  # a folder that cannot be made, say: pause before claiming
        except TransportError as exc:
            transport.close()
            return self._pause(None, exc)
        with transport:  # opened already: this closes it at the end
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
                except LocalWriteError as exc:  # this machine's fault: some may be sent
                    note = self._pause(claimed, exc, exc.results)
                    break
                except TransportError as exc:  # raised before anything was sent
                    note = self._pause(claimed, exc)
                    break
            while in_flight:  # a pause's other batch too: it may have been sent
                later = self._record_and_claim(in_flight.popleft(), worker, False, progress, total)
                note = later[1] or note
        return note

    def _record_and_claim(
        self,
        answered: tuple[Claimed, InFlight] | None,
        worker: str,
        claim: bool,
        progress: Progress | None,
        total: int,
    ) -> tuple[Claimed | None, str | None]:
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
            return Claimed(taken, ledger.screen(conn, send_id, taken, secret=self.secret)), None

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

    def _pause(
        self,
        claimed: Claimed | None,
        error: TransportError,
        results: Sequence[DeliveryResult] = (),
    ) -> str:
        """The transport cannot send at all: the batch's ``results`` (what was sent before the
        error) are recorded, the rest of it goes back to ``pending``, and the send pauses,
        saying why. The error counts once, against the send, never against a recipient."""
        send_id, note = self.send_id, str(error)
        with self.shared.writing(self.engine), self.engine.begin() as conn:
            if claimed is not None:
                done = {result.key for result in results}
                rest = [_deferred(p.id, note) for p in claimed.people if p.id not in done]
                ledger.record(conn, send_id, [*results, *rest], rowids=claimed.taken.rowids)
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
                "%s: %s refused for good (hard bounces), %d newly suppressed",
                send_id,
                counted(len(bounced), "address", "addresses"),
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
        note = f"paused after {counted(errors, 'error')}; last: {failures[-1].detail}"
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
class Claimed:
    """A batch taken and screened: its rows, and the people among them to send to."""

    taken: ledger.Taken
    people: list[Subscriber]


def _deferred(key: str, detail: str) -> DeliveryResult:
    return DeliveryResult(key, Outcome.DEFERRED, detail)
