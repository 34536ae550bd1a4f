"""The editors' operations called directly (speakerfeed.actions), on SQLite and PostgreSQL where
they use the database: their typed results, and the errors a user can cause."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from speakerfeed.actions.database import Store, open_store, upgrade_database
from speakerfeed.actions.digests import (
    CopySent,
    Linted,
    Previewed,
    dry_run,
    lint_digest,
    preview_digest,
    send_test_copies,
    upcoming_digest,
)
from speakerfeed.actions.schedules import (
    ScheduleState,
    list_schedules,
    pause_schedule,
    resume_schedule,
)
from speakerfeed.actions.sends import (
    Sent,
    list_sends,
    resume_send,
    send_now,
    show_send,
)
from speakerfeed.actions.site import build_site, check_site
from speakerfeed.actions.subscribers import (
    Erased,
    Status,
    Subscribed,
    Unsubscribed,
    add_subscriber,
    count_subscribers,
    erase_subscriber,
    export_subscribers,
    import_subscribers,
    remove_subscriber,
    show_subscriber,
)
from speakerfeed.config import Settings
from speakerfeed.digest.issue import Blocked, Issued, NothingNew, Unfinished, open_send
from speakerfeed.digest.prepare import Preview
from speakerfeed.errors import (
    AddressError,
    ConfigError,
    SendNotFoundError,
    StoreError,
    SuppressedAddressError,
    UnsubscribedAddressError,
)
from speakerfeed.models import Outcome
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import upgrade
from speakerfeed.transports.memory import MemoryTransport
from tests.support.project import make_project, markdown_article

SECRET = b"actions-test-secret-key-0123456789"
EMAIL = {
    "from_address": "The Speaker <digest@speakernews.co.uk>",
    "postal_address": "The Speaker, 20 Example Street, London",
}
LISTS = [
    {
        "name": "daily",
        "title": "The Speaker Daily",
        "schedule": "0 7 * * *",
        "cadences": {"weekly": "0 7 * * 1"},
    },
    {"name": "politics", "title": "Politics", "schedule": "0 8 * * 6"},
]
ARTICLES: dict[str, str | bytes] = {
    "one.md": markdown_article("Story one", "2024-11-04 09:00"),
    "two.md": markdown_article("Story two", "2024-11-06 09:00"),
    "three.md": markdown_article("Story three", "2024-11-08 09:00"),
}


def at(day: int) -> datetime:
    """7:00 on a day of November 2024."""
    return datetime(2024, 11, day, 7, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_secret_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPEAKERFEED_SECRET_KEY", raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_project(tmp_path / "site", ARTICLES, email=EMAIL, lists=LISTS)


@pytest.fixture
def store(engine: Engine) -> Store:
    upgrade(engine)
    return Store(engine, SECRET)


def confirmed(store: Store, address: str, list_name: str = "daily", cadence: str = "") -> str:
    with store.engine.begin() as conn:
        subscriber = repo.add_subscriber(conn, address)
        repo.subscribe(
            conn,
            subscriber,
            list_name,
            status="confirmed",
            consent={"action": "test"},
            cadence=cadence,
        )
    return subscriber


# ---------------------------------------------------------------------------------- subscribers


def test_add_then_show_returns_the_record(store: Store, settings: Settings) -> None:
    added = add_subscriber(settings, store, "daily", " Ann@Example.org ", name="Ann")
    assert added == Subscribed("ann@example.org", "daily", Status.PENDING)
    shown = show_subscriber(settings, store, "ANN@example.org")
    assert shown.email == "ann@example.org"
    assert shown.subscriber is not None and shown.subscriber["name"] == "Ann"
    (subscription,) = shown.subscriptions
    assert (subscription["list_name"], subscription["status"]) == ("daily", "pending")
    assert [(r["action"], r["form"]) for r in shown.consent_records] == [("added", "cli")]
    assert shown.suppression is None
    assert list(shown.as_json()) == [
        "email",
        "subscriber",
        "subscriptions",
        "consent_records",
        "suppression",
    ]

    confirming = add_subscriber(settings, store, "daily", "ann@example.org", confirmed=True)
    assert confirming.status is Status.CONFIRMED
    # Added again without --confirmed: a confirmed subscription stays confirmed.
    assert add_subscriber(settings, store, "daily", "ann@example.org").status is Status.CONFIRMED
    assert count_subscribers(settings, store, "daily") == 1
    assert count_subscribers(settings, store, "daily", status=Status.CONFIRMED) == 1
    assert count_subscribers(settings, store, "daily", status=Status.PENDING) == 0


def test_remove_unsubscribes_and_only_the_person_can_come_back(
    store: Store, settings: Settings
) -> None:
    for list_name in ("daily", "politics"):
        add_subscriber(settings, store, list_name, "bob@example.org", confirmed=True)
    left = remove_subscriber(settings, store, "daily", "bob@example.org")
    assert left == Unsubscribed("bob@example.org", "daily", on_list=True, suppressed=False)
    assert count_subscribers(settings, store, "daily", status=Status.UNSUBSCRIBED) == 1
    with pytest.raises(UnsubscribedAddressError, match="unsubscribed from daily; not added"):
        add_subscriber(settings, store, "daily", "bob@example.org", confirmed=True)
    assert count_subscribers(settings, store, "daily", status=Status.UNSUBSCRIBED) == 1

    again = remove_subscriber(settings, store, "daily", "bob@example.org")  # no harm done
    assert again == left
    last = remove_subscriber(settings, store, "politics", "bob@example.org")
    assert last.on_list and last.suppressed  # no list left: suppressed
    with pytest.raises(SuppressedAddressError, match="is suppressed; not added"):
        add_subscriber(settings, store, "politics", "bob@example.org")
    nobody = remove_subscriber(settings, store, "daily", "nobody@example.org")
    assert not nobody.on_list and not nobody.suppressed


def test_what_a_user_can_get_wrong_is_an_error_of_ours(store: Store, settings: Settings) -> None:
    with pytest.raises(AddressError, match="expected an email address"):
        add_subscriber(settings, store, "daily", "nobody")
    with pytest.raises(AddressError):
        show_subscriber(settings, store, "not an address")
    with pytest.raises(ConfigError, match="no list named 'weekly'"):
        count_subscribers(settings, store, "weekly")
    with pytest.raises(ConfigError, match="no cadence 'monthly'"):
        dry_run(settings, store, "daily", cadence="monthly")
    with pytest.raises(SendNotFoundError, match="no send with id 'nope'"):
        show_send(settings, store, "nope")
    with pytest.raises(SendNotFoundError):
        resume_send(settings, store, "nope", MemoryTransport())


def test_import_export_and_erase(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("email,name\nann@example.org,Ann\nnot-an-address,X\ncat@example.org,Cat\n")
    report = import_subscribers(settings, store, "daily", path, confirmed=True)
    assert (report.rows, report.added, report.rejected) == (3, 2, 1)
    (problem,) = report.problems
    assert (problem.where, problem.line) == (str(path), 3)

    out = io.StringIO(newline="")
    assert export_subscribers(settings, store, "daily", out, status=Status.CONFIRMED) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert sorted((row["email"], row["name"], row["status"]) for row in rows) == [
        ("ann@example.org", "Ann", "confirmed"),
        ("cat@example.org", "Cat", "confirmed"),
    ]

    assert erase_subscriber(settings, store, "ann@example.org") == Erased(
        "ann@example.org", True, True
    )
    gone = show_subscriber(settings, store, "ann@example.org")
    assert gone.subscriber is None and gone.subscriptions == ()
    assert gone.suppression is not None and gone.suppression["reason"] == "erased"
    assert not erase_subscriber(settings, store, "nobody@example.org").found
    assert count_subscribers(settings, store, "daily") == 1


# --------------------------------------------------------------------------------------- sends


def test_the_dry_run_counts_what_the_send_then_sends(store: Store, settings: Settings) -> None:
    confirmed(store, "ann@example.org")
    confirmed(store, "bob@example.org")
    confirmed(store, "cat@example.org", cadence="weekly")
    confirmed(store, "eve@example.org")
    with store.engine.begin() as conn:
        # Eve is still confirmed but has bounced since: the senders skip her. Dan never confirmed.
        repo.suppress(conn, repo.address_hash(SECRET, "eve@example.org"), "bounced")
        pending = repo.add_subscriber(conn, "dan@example.org")
        repo.subscribe(conn, pending, "daily", status="pending", consent={"action": "t"})

    for cadence, readers in (
        ("", ["ann@example.org", "bob@example.org"]),
        ("weekly", ["cat@example.org"]),
    ):
        counted = dry_run(settings, store, "daily", cadence=cadence)
        assert (counted.audience, counted.transport) == (len(readers), "outbox")
        transport = MemoryTransport()
        result = send_now(
            settings, store, "daily", transport, cadence=cadence, fetch_upstreams=False, now=at(11)
        )
        assert isinstance(result, Sent) and isinstance(result.opened, Issued), result
        assert result.report.state == "done"
        assert result.report.counts["sent"] == counted.audience
        assert sorted(message.envelope_to for message in transport.sent) == readers

    again = send_now(settings, store, "daily", MemoryTransport(), fetch_upstreams=False, now=at(12))
    assert again == NothingNew()


def test_send_now_carries_on_with_an_unfinished_send(store: Store, settings: Settings) -> None:
    confirmed(store, "ann@example.org")
    opened = open_send(
        store.engine, settings, settings.require_list("daily"), now=at(11), fetch_upstreams=False
    )
    assert isinstance(opened, Issued)
    transport = MemoryTransport()
    result = send_now(settings, store, "daily", transport, fetch_upstreams=False, now=at(11))
    assert isinstance(result, Sent)
    assert result.opened == Unfinished(opened.send_id)
    assert result.report.state == "done" and len(transport.sent) == 1


def test_a_digest_the_lint_blocks_is_not_sent(store: Store, tmp_path: Path) -> None:
    no_address = make_project(
        tmp_path / "blocked", ARTICLES, email={"from_address": EMAIL["from_address"]}, lists=LISTS
    )
    confirmed(store, "ann@example.org")
    transport = MemoryTransport()
    result = send_now(no_address, store, "daily", transport, fetch_upstreams=False, now=at(11))
    assert isinstance(result, Blocked)
    assert "postal-address" in {finding.rule for finding in result.preview.findings}
    assert not transport.sent and list_sends(no_address, store) == []
    linted = lint_digest(no_address, "daily", fetch_upstreams=False)
    assert isinstance(linted, Linted) and linted.errors >= 1


def test_sends_list_show_and_resume_after_a_send(store: Store, settings: Settings) -> None:
    assert list_sends(settings, store) == []
    confirmed(store, "ann@example.org")
    confirmed(store, "bob@example.org")
    with store.engine.begin() as conn:
        repo.suppress(conn, repo.address_hash(SECRET, "bob@example.org"), "complained")
    result = send_now(
        settings, store, "daily", MemoryTransport(), fetch_upstreams=False, now=at(11)
    )
    assert isinstance(result, Sent)
    send_id = result.report.send_id

    (summary,) = list_sends(settings, store)
    assert (summary.id, summary.state, summary.done, summary.total) == (send_id, "done", 1, 2)
    details = show_send(settings, store, send_id)
    assert (details.send.id, details.send.list_name, details.send.cadence) == (send_id, "daily", "")
    assert details.send.finished_at is not None and details.send.subject.startswith("The Speaker")
    assert (details.counts["sent"], details.counts["skipped"], details.left) == (1, 1, 0)
    assert details.errors == []

    resumed = resume_send(settings, store, send_id, MemoryTransport(), resend_unknown=True)
    assert resumed.again == 0 and resumed.report.state == "done"


# -------------------------------------------------------------------------------------- digests


def test_a_test_copy_goes_to_the_outbox_and_records_no_send(
    store: Store, settings: Settings
) -> None:
    made = upcoming_digest(settings, "daily", fetch_upstreams=False, now=at(11))
    assert isinstance(made, Preview) and not made.blocked
    (copy,) = send_test_copies(settings, made, ["Editor@Example.org"])
    assert copy == CopySent("editor@example.org", Outcome.SENT, copy.detail) and copy.sent
    (message,) = (settings.root / "var" / "outbox").glob("*.eml")
    assert b"editor@example.org" in message.read_bytes()
    assert b"Subject: [Test] " in message.read_bytes()
    assert list_sends(settings, store) == []
    with pytest.raises(AddressError):  # checked before anything is sent
        send_test_copies(settings, made, ["ann@example.org", "editor"])
    assert len(list((settings.root / "var" / "outbox").glob("*.eml"))) == 1


def test_preview_and_lint_the_next_digest(settings: Settings, tmp_path: Path) -> None:
    previewed = preview_digest(settings, "daily", out=tmp_path / "preview", fetch_upstreams=False)
    assert isinstance(previewed, Previewed)
    assert sorted(path.suffix for path in previewed.paths) == [".eml", ".html", ".txt"]
    assert all(path.is_file() for path in previewed.paths)
    assert len(previewed.digest.rendered.digest.articles) == 3
    linted = lint_digest(settings, "daily", fetch_upstreams=False)
    assert isinstance(linted, Linted)
    assert (linted.digest_id, linted.errors) == (previewed.digest.rendered.digest.id, 0)

    empty = make_project(tmp_path / "empty", {}, email=EMAIL, lists=LISTS)
    assert preview_digest(empty, "daily", out=tmp_path / "none", fetch_upstreams=False) == (
        NothingNew()
    )
    assert lint_digest(empty, "daily", fetch_upstreams=False) == NothingNew()


# ------------------------------------------------------------------------------------ schedules


def test_schedule_pause_and_resume(store: Store, settings: Settings) -> None:
    assert pause_schedule(settings, store, "daily") == ScheduleState("daily", True, ("weekly",))
    runs = {run.job: run for run in list_schedules(settings, store, now=at(12))}
    assert list(runs) == ["digest:daily", "digest:daily:weekly", "digest:politics"]
    assert runs["digest:daily"].paused and runs["digest:daily:weekly"].paused
    assert not runs["digest:politics"].paused
    assert runs["digest:daily:weekly"].next_run == datetime(2024, 11, 18, 7, tzinfo=UTC)
    assert resume_schedule(settings, store, "daily") == ScheduleState("daily", False, ("weekly",))
    assert not any(run.paused for run in list_schedules(settings, store))
    with pytest.raises(ConfigError):
        pause_schedule(settings, store, "nope")


# ----------------------------------------------------------------------------- site, database


def test_build_returns_a_report_and_check_locates_a_bad_article(tmp_path: Path) -> None:
    site = make_project(
        tmp_path, {**ARTICLES, "bad.md": "---\ntitle: x\ndate: 2024-13-45\n---\nbody\n"}
    )
    report = build_site(site, fetch_upstreams=False)
    assert report.articles == 3 and report.written
    assert (site.output_dir / "rss.xml").is_file()
    (problem,) = report.errors
    assert problem.where.endswith("bad.md") and problem.line == 3

    checked = check_site(site, fetch_upstreams=False)
    assert (checked.files, checked.articles) == (4, 3)
    (problem,) = checked.errors
    assert problem.where.endswith("bad.md") and problem.line == 3
    assert "expected a date" in problem.message


def test_open_store_migrates_and_reports_a_database_it_cannot_use(
    settings: Settings, tmp_path: Path
) -> None:
    upgraded = upgrade_database(settings)
    assert upgraded.database.startswith("sqlite:///") and upgraded.revision
    with open_store(settings, list_name="daily") as opened:
        assert len(opened.secret) >= 16  # kept in var/secret.key beside the SQLite database
        add_subscriber(settings, opened, "daily", "ann@example.org")
        assert count_subscribers(settings, opened, "daily") == 1
    with (
        pytest.raises(ConfigError, match="no list named 'nope'"),
        open_store(settings, list_name="nope"),
    ):
        pass

    unreachable = make_project(
        tmp_path / "pg", store={"url": "postgresql://nobody@127.0.0.1:1/speakerfeed"}
    )
    where = r"database postgresql\+psycopg://nobody@127\.0\.0\.1:1/"
    with pytest.raises(StoreError, match=where), open_store(unreachable, need_secret=False):
        pass
