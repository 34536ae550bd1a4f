"""The delivery ledger and the send loop, on SQLite and PostgreSQL, through the memory transport."""

from __future__ import annotations

import email
import errno
import itertools
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from speakerfeed.config import Settings
from speakerfeed.digest import deliver as dispatch
from speakerfeed.errors import TransportError
from speakerfeed.models import Batch, DeliveryResult, Outcome
from speakerfeed.store import ledger, people
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import upgrade
from speakerfeed.store.schema import deliveries, subscribers
from speakerfeed.transports.base import InFlight
from speakerfeed.transports.memory import MemoryTransport
from speakerfeed.transports.outbox import OutboxTransport
from tests.support.project import make_project

SECRET = b"dispatch-test-secret-0123456789"
CONTENT = ledger.SendContent(
    subject="The Speaker Daily: news",
    html="<p>Hello SFMARK0NAME0SFMARK</p><a href='SFMARK0UNSUBSCRIBE0SFMARK'>Unsubscribe</a>"
    "<a href='SFMARK0PREFERENCES0SFMARK'>Preferences</a>",
    text="Hello SFMARK0NAME0SFMARK\nUnsubscribe: SFMARK0UNSUBSCRIBE0SFMARK\n"
    "Preferences: SFMARK0PREFERENCES0SFMARK\n",
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_project(
        tmp_path,
        email={"from_address": "The Speaker <digest@speakernews.co.uk>"},
        lists=[{"name": "daily", "title": "The Speaker Daily"}],
        sending={"batch_size": 7, "max_errors": 5},
    )


@pytest.fixture
def store(engine: Engine) -> Engine:
    upgrade(engine)
    with engine.begin() as conn:
        for number in range(30):
            subscriber = repo.add_subscriber(conn, f"reader{number}@example.org", f"R {number}")
            status = "pending" if number == 29 else "confirmed"
            repo.subscribe(conn, subscriber, "daily", status=status, consent={"action": "test"})
    return engine


def start(engine: Engine, send_id: str = "daily-1", **when: datetime) -> None:
    with engine.begin() as conn:
        scheduled = when.get("scheduled_at", datetime.now(UTC))
        assert ledger.create_send(conn, send_id, "daily", CONTENT, scheduled_at=scheduled)


def test_every_confirmed_subscriber_gets_one_message(store: Engine, settings: Settings) -> None:
    start(store)
    with store.begin() as conn:  # creating it again adds nobody
        assert not ledger.create_send(
            conn, "daily-1", "daily", CONTENT, scheduled_at=datetime.now(UTC)
        )
    transport = MemoryTransport()
    seen: list[tuple[int, int]] = []
    report = dispatch.run_send(
        store,
        settings,
        "daily-1",
        transport,
        secret=SECRET,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert report.state == "done" and report.counts["sent"] == 29
    addresses = Counter(message.envelope_to for message in transport.sent)
    assert len(addresses) == 29 and set(addresses.values()) == {1}
    assert "reader29@example.org" not in addresses  # pending, never confirmed
    assert max(len(batch.recipients) for batch in transport.batches) == 7
    assert seen[-1] == (29, 29)
    first = transport.sent[0].parsed()
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe/daily/" in first["List-Unsubscribe"]
    # Running it again sends nothing more.
    again = MemoryTransport()
    dispatch.run_send(store, settings, "daily-1", again, secret=SECRET)
    assert again.sent == []


@pytest.mark.parametrize("audience", ["recorded", "added as it goes"])
def test_someone_who_leaves_during_a_send_gets_nothing_more(
    store: Engine, settings: Settings, audience: str
) -> None:
    if audience == "recorded":
        start(store)
    else:
        start_without_audience(store)

    leavers: list[str] = []

    class LeavingMidway(MemoryTransport):
        def send(self, batch: Batch) -> list[DeliveryResult]:
            if not self.batches:  # while the first batch goes out, two others leave
                in_batch = {recipient.address for recipient in batch.recipients}
                others = [f"reader{n}@example.org" for n in range(29)]
                leavers.extend([a for a in others if a not in in_batch][:2])
                with store.begin() as conn:
                    person = repo.find_by_email(conn, leavers[0])
                    assert person is not None
                    repo.set_status(conn, person.id, "daily", "unsubscribed")
                    repo.suppress(conn, repo.address_hash(SECRET, leavers[1]), "bounced")
            return super().send(batch)

    transport = LeavingMidway()
    seen: list[tuple[int, int]] = []
    report = dispatch.run_send(
        store,
        settings,
        "daily-1",
        transport,
        secret=SECRET,
        progress=lambda done, total: seen.append((done, total)),
    )
    sent = {message.envelope_to for message in transport.sent}
    assert len(leavers) == 2 and not sent & set(leavers)
    # One who unsubscribes before being added is not in the send's audience at all.
    assert report.counts["skipped"] == (2 if audience == "recorded" else 1)
    assert report.counts["sent"] == 27
    # The progress bar counts recipients and ends at 100 %: when the audience shrank while the
    # send went, its total follows, rather than the bar stopping at 28/29.
    finished = 27 + report.counts["skipped"]
    assert seen[0][1] == 29 and seen[-1] == (finished, finished), seen
    assert all(done <= total for done, total in seen), seen


def test_outcomes_are_recorded_and_deferred_rows_return_to_pending(
    store: Engine, settings: Settings
) -> None:
    start(store)
    transport = MemoryTransport(
        {
            "reader1@example.org": Outcome.FAILED,
            "reader2@example.org": Outcome.UNKNOWN,
        }
    )
    report = dispatch.run_send(store, settings, "daily-1", transport, secret=SECRET)
    assert report.counts["failed"] == 1 and report.counts["unknown"] == 1
    assert report.counts["sent"] == 27 and report.state == "done"
    with store.connect() as conn:
        assert ledger.errors(conn, "daily-1")[0][1] >= 1


def test_too_many_errors_pause_the_send_and_resume_carries_on(
    store: Engine, settings: Settings
) -> None:
    start(store)
    refused = {f"reader{n}@example.org": Outcome.DEFERRED for n in range(10)}
    report = dispatch.run_send(store, settings, "daily-1", MemoryTransport(refused), secret=SECRET)
    assert report.state == "paused" and "paused after" in report.note
    assert report.counts["pending"] > 0
    assert dispatch.resume(store, "daily-1") == 0
    transport = MemoryTransport()
    report = dispatch.run_send(store, settings, "daily-1", transport, secret=SECRET)
    assert report.state == "done" and report.counts["sent"] == 29


def test_a_transport_that_cannot_work_pauses_with_rows_back_to_pending(
    store: Engine, settings: Settings
) -> None:
    start(store)

    class Broken(MemoryTransport):
        def send(self, batch: Batch) -> list[DeliveryResult]:
            raise TransportError("SPEAKERFEED_SENDGRID_API_KEY is not set")

    report = dispatch.run_send(store, settings, "daily-1", Broken(), secret=SECRET)
    assert report.state == "paused" and "API_KEY" in report.note
    assert report.counts["pending"] == 29 and report.counts["sending"] == 0


def test_an_outbox_that_fills_up_pauses_at_once_and_resume_sends_the_rest_once(
    store: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up at the 10th message (in the second batch of 7): the send pauses at
    that one write, not after max_errors retries; nobody is charged with the error (no row
    FAILED, the send's error count 1) and the unsent rows stay pending; after room is made,
    resume sends each of them, and nobody twice."""
    start(store)
    folder = tmp_path / "outbox"
    real_replace = Path.replace
    writes: list[str] = []

    def full_from_the_tenth(self: Path, target: Path) -> Path:
        writes.append(target.name)
        if len(writes) >= 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(self, target)

    with monkeypatch.context() as patched:
        patched.setattr(Path, "replace", full_from_the_tenth)
        report = dispatch.run_send(
            store, settings, "daily-1", OutboxTransport(folder), secret=SECRET
        )
    assert len(writes) == 10  # no retry loop
    assert report.state == "paused"
    assert report.note == f"outbox: cannot write to {folder}: ENOSPC (No space left on device)"
    assert report.counts["sent"] == 9 and report.counts["pending"] == 20
    assert report.counts["failed"] == report.counts["sending"] == 0
    with store.connect() as conn:
        assert ledger.errors(conn, "daily-1") == []
        row = ledger.send_row(conn, "daily-1")
        assert row is not None and row["errors"] == 1 and row["last_error"] == report.note

    dispatch.resume(store, "daily-1")
    done = dispatch.run_send(store, settings, "daily-1", OutboxTransport(folder), secret=SECRET)
    assert done.state == "done" and done.counts["sent"] == 29
    to = Counter(
        parseaddr(email.message_from_bytes(path.read_bytes())["To"])[1]
        for path in folder.glob("*.eml")
    )
    assert len(to) == 29 and set(to.values()) == {1}


def test_an_outbox_folder_that_cannot_be_made_pauses_before_anything_is_claimed(
    store: Engine, settings: Settings, tmp_path: Path
) -> None:
    start_without_audience(store)
    (tmp_path / "var").write_text("a file where the outbox folder should be")
    outbox = OutboxTransport(tmp_path / "var" / "outbox")
    report = dispatch.run_send(store, settings, "daily-1", outbox, secret=SECRET)
    assert report.state == "paused" and "cannot write to" in report.note
    assert report.counts["sent"] == report.counts["sending"] == 0


def test_rows_left_in_flight_by_a_dead_sender_become_unknown_not_resent(
    store: Engine, settings: Settings
) -> None:
    start(store)
    with store.begin() as conn:
        taken = ledger.take(conn, "daily-1", worker="dead:1", limit=5)
        claimed = ledger.screen(conn, "daily-1", taken, secret=SECRET)
        assert len(claimed) == 5
        conn.execute(
            update(deliveries)
            .where(deliveries.c.state == "sending")
            .values(updated_at=datetime.now(UTC) - timedelta(hours=1))
        )
    transport = MemoryTransport()
    report = dispatch.run_send(store, settings, "daily-1", transport, secret=SECRET)
    assert report.counts["unknown"] == 5 and report.counts["sent"] == 24
    assert {m.envelope_to for m in transport.sent}.isdisjoint(s.email for s in claimed)
    # The operator may choose to resend them.
    assert dispatch.resume(store, "daily-1", resend_unknown=True) == 5
    again = MemoryTransport()
    dispatch.run_send(store, settings, "daily-1", again, secret=SECRET)
    assert {m.envelope_to for m in again.sent} == {s.email for s in claimed}


def test_rows_in_flight_past_their_lease_become_unknown(store: Engine) -> None:
    """A worker on another machine cannot be asked whether it lives: its rows wait for the
    lease. Also checks that a claim writes its time as SQLAlchemy reads it back (on SQLite the
    claim is SQL text on the driver's connection)."""
    start(store)
    with store.begin() as conn:
        taken = ledger.take(conn, "daily-1", worker="elsewhere.example:7", limit=5)
    with store.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.state, deliveries.c.worker, deliveries.c.updated_at).where(
                deliveries.c.subscriber_id.in_(taken.ids)
            )
        ).all()
    assert {(row.state, row.worker) for row in rows} == {("sending", "elsewhere.example:7")}
    assert all(abs(row.updated_at - datetime.now(UTC)) < timedelta(minutes=1) for row in rows)
    with store.begin() as conn:
        assert ledger.release_stale(conn, "daily-1", older_than=timedelta(hours=1)) == 0
    time.sleep(0.01)
    with store.begin() as conn:
        assert ledger.release_stale(conn, "daily-1", older_than=timedelta(0)) == 5
        assert ledger.counts(conn, "daily-1")["unknown"] == 5


def test_a_send_later_than_its_maximum_lateness_is_cancelled(
    store: Engine, settings: Settings
) -> None:
    start(store, scheduled_at=datetime.now(UTC) - timedelta(hours=5))
    transport = MemoryTransport()
    report = dispatch.run_send(store, settings, "daily-1", transport, secret=SECRET)
    assert report.state == "cancelled" and "late" in report.note
    assert transport.sent == []


class SlowOutbox(OutboxTransport):
    """Each message a file, which every process of a send can see; slow enough for several
    processes to claim batches."""

    delay = 0.05

    def send(self, batch: Batch) -> list[DeliveryResult]:
        time.sleep(self.delay)
        return super().send(batch)


def outbox_addresses(folder: Path) -> Counter[str]:
    return Counter(
        parseaddr(email.message_from_bytes(path.read_bytes())["To"])[1]
        for path in folder.glob("*.eml")
    )


def send_to_outbox(
    store: Engine, settings: Settings, folder: Path, *, processes: int
) -> tuple[dispatch.SendReport, list[tuple[int, int]]]:
    """Run daily-1 into an outbox folder: its report, and the progress reported."""
    seen: list[tuple[int, int]] = []
    report = dispatch.run_send(
        store,
        settings,
        "daily-1",
        SlowOutbox(folder),
        secret=SECRET,
        processes=processes,
        progress=lambda d, t: seen.append((d, t)),
    )
    return report, seen


def test_several_processes_send_to_each_recipient_once(
    store: Engine, settings: Settings, tmp_path: Path
) -> None:
    start(store)
    folder = tmp_path / "outbox"
    report, seen = send_to_outbox(store, settings, folder, processes=2)
    assert report.state == "done" and report.counts["sent"] == 29
    addresses = outbox_addresses(folder)
    assert len(addresses) == 29 and set(addresses.values()) == {1}
    assert "reader29@example.org" not in addresses  # pending, never confirmed
    with store.connect() as conn:
        workers = set(conn.execute(select(deliveries.c.worker).distinct()).scalars())
    assert len(workers) == 2, f"one process did all the work: {workers}"
    assert seen[-1] == (29, 29)


def start_without_audience(engine: Engine, send_id: str = "daily-1") -> None:
    with engine.begin() as conn:
        assert ledger.create_send(
            conn, send_id, "daily", CONTENT, scheduled_at=datetime.now(UTC), record_audience=False
        )


def test_the_audience_is_added_taken_a_batch_at_a_time_in_subscriber_order_once(
    store: Engine,
) -> None:
    start_without_audience(store)

    def claim(worker: str) -> ledger.Taken:
        return ledger.claim_audience(conn, "daily-1", worker=worker, named_cadences=(), limit=10)

    with store.begin() as conn:
        confirmed = sorted(
            person.id for person in repo.iter_confirmed(conn, "daily", secret=SECRET)
        )
        assert ledger.counts(conn, "daily-1")["pending"] == 0
        assert ledger.audience_left(conn, "daily-1", named_cadences=()) == 29
        batches = [claim("w1")]
        assert batches[0].ids == confirmed[:10]
        assert ledger.audience_left(conn, "daily-1", named_cadences=()) == 19
        # Someone confirmed meanwhile is in it, after those added already.
        late = repo.add_subscriber(conn, "late@example.org")
        repo.subscribe(conn, late, "daily", status="confirmed", consent={"action": "test"})
    with store.begin() as conn:  # each batch its own transaction, as the senders add them
        while len(batches[-1].ids) == 10:
            batches.append(claim(f"w{len(batches) + 1}"))
        rows = conn.execute(
            select(deliveries.c.subscriber_id, deliveries.c.state, deliveries.c.worker).where(
                deliveries.c.send_id == "daily-1"
            )
        ).all()
        assert ledger.audience_left(conn, "daily-1", named_cadences=()) == 0
        # Complete: nothing more, however often asked.
        assert claim("w9") == ledger.Taken([])
    # Ids are random: the late one is added when it sorts after the first batch.
    expected = sorted([*confirmed, late] if late > confirmed[9] else confirmed)
    assert sorted(row.subscriber_id for row in rows) == expected
    assert [i for batch in batches for i in batch.ids] == expected  # each once, in order
    # The batch that comes up short (possibly empty) completes it.
    sizes = [len(batch.ids) for batch in batches]
    assert sizes == ([10, 10, 10, 0] if len(expected) == 30 else [10, 10, 9])
    # Each row is taken already, by the sender that added it, and found again by its rowid.
    taken_by = {row.subscriber_id: (row.state, row.worker) for row in rows}
    for number, batch in enumerate(batches, start=1):
        assert {taken_by[i] for i in batch.ids} <= {("sending", f"w{number}")}
        assert sorted(batch.rowids) == (batch.ids if store.dialect.name == "sqlite" else [])


def test_rows_taken_as_added_are_screened_for_suppression_and_erasure(store: Engine) -> None:
    start_without_audience(store)
    with store.begin() as conn:
        taken = ledger.claim_audience(conn, "daily-1", worker="w", named_cadences=(), limit=10)
        addresses = dict(conn.execute(select(subscribers.c.id, subscribers.c.email)).all())
    assert taken.confirmed and len(taken.ids) == 10
    suppressed, erased = (addresses[taken.ids[3]], addresses[taken.ids[7]])
    with store.begin() as conn:  # between the take and the screen
        repo.suppress(conn, repo.address_hash(SECRET, suppressed), "complained")
        assert people.erase(conn, erased, SECRET)
    with store.begin() as conn:
        chosen = ledger.screen(conn, "daily-1", taken, secret=SECRET)
        states = dict(conn.execute(select(deliveries.c.subscriber_id, deliveries.c.state)).all())
    assert [person.id for person in chosen] == [
        i for i in taken.ids if i not in (taken.ids[3], taken.ids[7])
    ]
    assert {person.email for person in chosen}.isdisjoint({suppressed, erased})
    assert states[taken.ids[3]] == states[taken.ids[7]] == "skipped"
    assert sorted(states.values()) == ["sending"] * 8 + ["skipped"] * 2


@pytest.mark.parametrize("processes", [1, 2])
def test_a_send_recorded_without_its_audience_adds_it_as_it_goes(
    store: Engine,
    settings: Settings,
    tmp_path: Path,
    processes: int,
) -> None:
    start_without_audience(store)
    folder = tmp_path / "outbox"
    report, seen = send_to_outbox(store, settings, folder, processes=processes)
    assert report.state == "done" and report.counts["sent"] == 29
    addresses = outbox_addresses(folder)
    assert len(addresses) == 29 and set(addresses.values()) == {1}
    assert {total for _, total in seen} == {29}  # the whole audience, from the start
    assert seen[-1] == (29, 29)


def test_a_send_stopped_before_its_audience_is_all_added_is_not_done(
    store: Engine, settings: Settings
) -> None:
    start_without_audience(store)
    transport = MemoryTransport()
    asked = itertools.count()
    stopped = dispatch.run_send(
        store,
        settings,
        "daily-1",
        transport,
        secret=SECRET,
        should_stop=lambda: next(asked) >= 1,  # after the first batch, the only rows added
    )
    # Nothing pending or in flight, yet not done: the rest are still to be added.
    assert stopped.state == "sending" and stopped.counts["sent"] == 7
    assert stopped.counts["pending"] == stopped.counts["sending"] == 0
    finished = dispatch.run_send(store, settings, "daily-1", transport, secret=SECRET)
    assert finished.state == "done" and finished.counts["sent"] == 29
    addresses = Counter(message.envelope_to for message in transport.sent)
    assert len(addresses) == 29 and set(addresses.values()) == {1}


def test_a_batch_of_people_who_all_left_does_not_end_the_send(
    store: Engine, settings: Settings
) -> None:
    start(store)
    with store.begin() as conn:  # the first batch (7, in subscriber order) all unsubscribe
        first = sorted(conn.execute(select(deliveries.c.subscriber_id)).scalars())[:7]
        for subscriber_id in first:
            repo.set_status(conn, subscriber_id, "daily", "unsubscribed")
    transport = MemoryTransport()
    report = dispatch.run_send(store, settings, "daily-1", transport, secret=SECRET)
    assert report.state == "done"
    assert report.counts["skipped"] == 7 and report.counts["sent"] == 22
    assert len(transport.sent) == 22


def test_a_stop_reaches_every_process_and_a_restart_carries_on(
    store: Engine, settings: Settings, tmp_path: Path
) -> None:
    start(store)
    folder = tmp_path / "outbox"
    slower = SlowOutbox(folder)
    slower.delay = 0.3  # 5 batches: the other process cannot finish them all in the meantime
    asked = itertools.count()
    stopped = dispatch.run_send(
        store,
        settings,
        "daily-1",
        slower,
        secret=SECRET,
        processes=2,
        should_stop=lambda: next(asked) >= 1,  # after this process's first batch
    )
    assert stopped.state == "sending" and 0 < stopped.counts["sent"] < 29
    assert stopped.counts["sending"] == 0, "a process left a batch in flight"
    finished = dispatch.run_send(
        store, settings, "daily-1", SlowOutbox(folder), secret=SECRET, processes=2
    )
    assert finished.state == "done" and finished.counts["sent"] == 29
    addresses = outbox_addresses(folder)
    assert len(addresses) == 29 and set(addresses.values()) == {1}


class InTheBackground(MemoryTransport):
    """Sends each batch in a thread of its own, as SendGrid does: ``start`` returns at once.
    Counts the batches handed over whose results have not been asked for yet."""

    def __init__(self, *, delay: float = 0.05, defer_first: bool = False) -> None:
        super().__init__()
        self.delay, self.defer_first = delay, defer_first
        self.started = self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()

    def start(self, batch: Batch) -> InFlight:
        with self._lock:
            self.started += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            deferred = self.defer_first and self.started == 1
        done: list[DeliveryResult] = []

        def deliver() -> None:
            time.sleep(self.delay)
            if deferred:
                done.extend(
                    DeliveryResult(r.key, Outcome.DEFERRED, "421") for r in batch.recipients
                )
            else:
                done.extend(self.send(batch))

        worker = threading.Thread(target=deliver)
        worker.start()

        def results() -> list[DeliveryResult]:
            worker.join()
            with self._lock:
                self.in_flight -= 1
            return done

        return InFlight(results)


def test_a_sender_keeps_two_batches_in_flight_and_sends_each_person_once(
    store: Engine, settings: Settings
) -> None:
    start(store)
    transport = InTheBackground()
    report = dispatch.run_send(store, settings, "daily-1", transport, secret=SECRET)
    assert report.state == "done" and report.counts["sent"] == 29
    assert transport.most_in_flight == 2  # the next batch went out before the last was in
    assert len(transport.sent) == len({m.envelope_to for m in transport.sent}) == 29


def test_a_stop_records_both_batches_in_flight_and_claims_nothing_more(
    store: Engine, settings: Settings
) -> None:
    start(store)
    transport = InTheBackground(delay=0.2)
    asked = itertools.count()
    report = dispatch.run_send(
        store,
        settings,
        "daily-1",
        transport,
        secret=SECRET,
        should_stop=lambda: next(asked) >= 2,  # once two batches are out
    )
    assert report.state == "sending" and transport.started == 2
    assert report.counts["sent"] == 14 and report.counts["sending"] == 0
    assert report.counts["pending"] == 15


def test_a_pause_still_records_the_other_batch_in_flight(store: Engine, settings: Settings) -> None:
    start(store)
    transport = InTheBackground(defer_first=True)  # 7 refusals: over max_errors (5)
    report = dispatch.run_send(store, settings, "daily-1", transport, secret=SECRET)
    assert report.state == "paused" and "paused after 7 errors" in report.note
    assert transport.started == 2 and report.counts["sending"] == 0
    assert report.counts["sent"] == 7 and report.counts["pending"] == 22


def test_each_row_keeps_its_own_provider_reply_when_every_reply_differs(
    store: Engine, settings: Settings
) -> None:
    """As from SMTP, whose reply names each message's queue id: every result its own provider
    id and detail (quotes, commas, non-ASCII, one far too long), written to its own row, in
    one statement per outcome on SQLite, and only to rows still ``sending``."""

    class Replies(MemoryTransport):
        def send(self, batch: Batch) -> list[DeliveryResult]:
            results = super().send(batch)
            return [
                result._replace(
                    provider_id=f'<{result.key}@mx.example> "q", ü',
                    detail=f"250 2.0.0 Ok: queued as {result.key}; ß, 'x'" + "!" * 2000,
                    outcome=Outcome.FAILED if index == 2 else result.outcome,
                )
                for index, result in enumerate(results)
            ]

    start(store)
    report = dispatch.run_send(store, settings, "daily-1", Replies(), secret=SECRET)
    assert report.counts["sent"] == 25 and report.counts["failed"] == 4
    with store.connect() as conn:
        rows = conn.execute(
            select(
                deliveries.c.subscriber_id,
                deliveries.c.state,
                deliveries.c.provider_id,
                deliveries.c.detail,
            ).where(deliveries.c.send_id == "daily-1")
        ).all()
    assert len(rows) == 29
    for subscriber_id, state, provider_id, detail in rows:
        assert state in {"sent", "failed"}
        assert provider_id == f'<{subscriber_id}@mx.example> "q", ü'[:200]
        assert detail.startswith(f"250 2.0.0 Ok: queued as {subscriber_id}; ß, 'x'!")
        assert len(detail) == 1000

    # Of two results, the one for a row no longer ``sending`` (recorded already) changes nothing.
    first, second = rows[0][0], rows[1][0]
    with store.begin() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.subscriber_id == second)
            .values(state="sending", provider_id="", detail="")
        )
        rowids: dict[str, int] | None = (
            dict(conn.exec_driver_sql("SELECT subscriber_id, rowid FROM deliveries").all())
            if conn.dialect.name == "sqlite"
            else None
        )
        late = [
            DeliveryResult(first, Outcome.DEFERRED, "late", "id-1"),
            DeliveryResult(second, Outcome.SENT, "250 again", "id-2"),
        ]
        assert ledger.record(conn, "daily-1", late, rowids=rowids) == {"pending": 1, "sent": 1}
    with store.connect() as conn:
        found = conn.execute(
            select(deliveries.c.subscriber_id, deliveries.c.state, deliveries.c.provider_id)
            .where(deliveries.c.subscriber_id.in_([first, second]))
            .order_by(deliveries.c.subscriber_id)
        ).all()
    assert [tuple(row) for row in found] == sorted(
        [(first, rows[0][1], rows[0][2]), (second, "sent", "id-2")]
    )
