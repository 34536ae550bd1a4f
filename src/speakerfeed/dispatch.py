"""Running a send through the ledger: claim a batch, hand it to the transport, record, repeat.

Each batch is claimed and committed before the transport sees it, and its results are committed
before the next claim, so a crash loses at most the batch in flight, whose rows a restart finds
``sending`` and reports as ``unknown`` instead of sending them again (see store.ledger). Several
processes can run the same send at once on PostgreSQL: each claims different rows.

A send that starts later than its maximum lateness is cancelled, not sent: a digest written for
7:00 is stale at noon. A send pauses after too many errors; ``resume`` carries on.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from speakerfeed.config import Settings
from speakerfeed.messages.mime import MessageTemplate
from speakerfeed.models import Digest, RenderedDigest
from speakerfeed.preview import find_list
from speakerfeed.store import ledger
from speakerfeed.transports.base import DeliveryResult, Outcome, Transport, TransportError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (rows finished, rows in the send)
FINISHED = ("sent", "failed", "unknown", "skipped")


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
) -> SendReport:
    """Send ``send_id``'s pending rows until none is left, the send pauses, or ``should_stop``."""
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
        if state in ("done", "cancelled", "paused"):
            return SendReport(send_id, state, ledger.counts(conn, send_id))
        scheduled = row["scheduled_at"]
        assert isinstance(scheduled, datetime)
        counts = ledger.counts(conn, send_id)
        late = (now or datetime.now(UTC)) - scheduled
        if counts["sent"] == 0 and late > timedelta(minutes=sending.max_lateness_minutes):
            limit = sending.max_lateness_minutes
            note = f"not sent: {_minutes(late)} late, over the maximum of {limit}"
            ledger.set_send_state(conn, send_id, "cancelled", error=note)
            log.warning("%s: %s", send_id, note)
            return SendReport(send_id, "cancelled", counts, note)
    template = _template(settings, row, secret)
    total = sum(counts.values())
    done = sum(counts[state] for state in FINISHED)
    bucket = TokenBucket(sending.messages_per_second)
    errors = 0
    worker = worker_name()
    with transport:
        while not should_stop():
            with engine.begin() as conn:
                batch = ledger.claim(
                    conn, send_id, worker=worker, limit=sending.batch_size, secret=secret
                )
            if not batch:
                break
            bucket.wait(len(batch))
            try:
                results = transport.send(template.batch(batch))
            except TransportError as exc:
                # Raised before anything was sent (see Transport.send): the rows go back.
                with engine.begin() as conn:
                    ledger.record(conn, send_id, [_deferred(s.id, str(exc)) for s in batch])
                    ledger.set_send_state(conn, send_id, "paused", error=str(exc), add_errors=1)
                log.error("%s: paused: %s", send_id, exc)
                return _report(engine, send_id, "paused", str(exc))
            with engine.begin() as conn:
                recorded = ledger.record(conn, send_id, results)
                failures = [r for r in results if r.outcome is not Outcome.SENT]
                errors += len(failures)
                if failures:
                    ledger.set_send_state(
                        conn,
                        send_id,
                        "sending",
                        error=failures[-1].detail,
                        add_errors=len(failures),
                    )
            done += len(batch) - recorded.get("pending", 0)
            if progress is not None:
                progress(done, total)
            if sending.max_errors and errors >= sending.max_errors:
                note = f"paused after {errors} errors; last: {failures[-1].detail}"
                with engine.begin() as conn:
                    ledger.set_send_state(conn, send_id, "paused", error=note)
                log.error("%s: %s", send_id, note)
                return _report(engine, send_id, "paused", note)
    with engine.begin() as conn:
        counts = ledger.counts(conn, send_id)
        if counts["pending"] == 0 and counts["sending"] == 0:
            ledger.set_send_state(conn, send_id, "done")
            state = "done"
        else:
            state = "sending"
    report = SendReport(send_id, state, counts)
    log.info("send %s", report.summary())
    return report


def resume(engine: Engine, send_id: str, *, resend_unknown: bool = False) -> int:
    """Make a paused send runnable again; with ``resend_unknown``, its unknown rows too."""
    with engine.begin() as conn:
        row = ledger.send_row(conn, send_id)
        if row is None:
            raise LookupError(f"no send with id {send_id!r}")
        again = ledger.resend_unknown(conn, send_id) if resend_unknown else 0
        if row["state"] in ("paused", "done") or again:
            ledger.set_send_state(conn, send_id, "sending")
        return again


def _template(settings: Settings, row: Mapping[str, object], secret: bytes) -> MessageTemplate:
    list_settings = find_list(settings, str(row["list_name"]))
    created = row["created_at"]
    assert isinstance(created, datetime)
    digest = Digest(
        id=str(row["id"]).replace("~", "-"),
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
