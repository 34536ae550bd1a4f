"""The welcome email as a reader gets it: confirm through the real app (uvicorn, SQLite and
PostgreSQL) and read what arrives in the outbox folder or at an SMTP server."""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import lxml.html
import pytest
from sqlalchemy import Engine

from speakerfeed import schedule
from speakerfeed.actions.welcomes import WelcomeOutcome, send_owed_welcomes
from speakerfeed.mail import tokens
from speakerfeed.service import Service
from speakerfeed.store import welcomes
from speakerfeed.transports.base import Transport
from tests.support.smtp_server import SmtpServer, running_smtp_server
from tests.support.webapp import LISTS, SECRET, KeptMail, ReaderSite, start
from tests.web.test_subscribers import csrf_token, sign_up

DESCRIPTION = "Every morning’s news — politics, “culture” & the rest, in five minutes."
MESSY_LISTS = [{**LISTS[0], "description": DESCRIPTION}, LISTS[1]]
APP = "https://app.speakernews.co.uk"
LATEST_ID = "daily-2026-12-02-0700"
_APP_LINK = re.compile(re.escape(APP) + r"(/[^\s<>\"]+)")


# ----------------------------------------------------------------------------------- helpers


def publish_issues(site: ReaderSite) -> None:
    """Web copies of two daily issues and a later weekly one, as the digest archive writes."""
    issues = [
        ("daily", "daily-2026-11-30-0700", "2026-11-30T07:00:00+00:00"),
        # Written with another offset: compared as times, this one is the latest.
        ("daily", LATEST_ID, "2026-12-02T09:00:00+02:00"),
        ("daily", "daily-2026-12-01-0700", "2026-12-01T07:00:00+00:00"),
        ("weekly", "weekly-2026-12-03-0800", "2026-12-03T08:00:00+00:00"),
    ]
    for list_name, issue_id, issued in issues:
        folder = site.settings.output_dir / "digests" / list_name / issue_id
        folder.mkdir(parents=True, exist_ok=True)
        record = {"id": issue_id, "list": list_name, "subject": issue_id, "issued": issued}
        (folder / "digest.json").write_text(json.dumps(record), encoding="utf-8")
        (folder / "index.html").write_text(f"<h1>Issue {issue_id}</h1>", encoding="utf-8")


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def outbox_messages(site: ReaderSite) -> list[EmailMessage]:
    folder = site.settings.root / "outbox"
    return [parse(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None, "no text part"
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None, "no HTML part"
    return str(part.get_content())


def words(text: str) -> str:
    return " ".join(text.split())


def wait_for(found: Callable[[], list[EmailMessage]], count: int) -> list[EmailMessage]:
    """The messages once ``count`` have arrived (the welcome goes after the page's answer)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        messages = found()
        if len(messages) >= count:
            return messages
        time.sleep(0.05)
    raise AssertionError(f"expected {count} messages, got {len(found())}")


def welcomes_in(messages: list[EmailMessage]) -> list[EmailMessage]:
    return [m for m in messages if str(m["Subject"]).startswith("Welcome to")]


def confirm_through_pages(
    site: ReaderSite, client: httpx.Client, messages: Callable[[], list[EmailMessage]], **form: str
) -> str:
    """Sign up and confirm as a reader does; the confirm link's path."""
    before = len(messages())
    assert sign_up(client, **form).status_code == 303
    (confirmation,) = wait_for(messages, before + 1)[before:]
    links: list[str] = _APP_LINK.findall(text_of(confirmation))
    (path,) = [link for link in links if link.startswith("/confirm/")]
    answer = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert answer.status_code == 303
    return path


def next_seven_london(now: datetime) -> datetime:
    london = now.astimezone(ZoneInfo("Europe/London"))
    seven = london.replace(hour=7, minute=0, second=0, microsecond=0)
    return seven if seven > london else seven + timedelta(days=1)


def spelt(moment: datetime) -> str:
    return f"{moment:%A} {moment.day} {moment:%B} {moment.year} at {moment:%H:%M} ({moment.tzinfo})"


@pytest.fixture
def outbox_site(engine: Engine, tmp_path: Path) -> Iterator[ReaderSite]:
    yield from start(
        engine,
        tmp_path,
        lists=MESSY_LISTS,
        signup={"per_address": 5},
        configured_transport=True,
        delivery={"transport": "outbox", "outbox_folder": "outbox"},
    )


@pytest.fixture
def http(outbox_site: ReaderSite) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=outbox_site.url, timeout=10) as client:
        yield client


# ------------------------------------------------------------------------------------- tests


def test_a_reader_who_confirms_gets_one_welcome_in_the_outbox(
    outbox_site: ReaderSite, http: httpx.Client
) -> None:
    site = outbox_site
    publish_issues(site)
    messages = lambda: outbox_messages(site)  # noqa: E731
    earliest = next_seven_london(datetime.now(UTC))
    confirm_through_pages(site, http, messages, email="zoe@example.org", name="Zoë O'Neil <3")
    latest = next_seven_london(datetime.now(UTC))
    (welcome,) = welcomes_in(wait_for(messages, 2))
    assert site.statuses("zoe@example.org") == {"daily": "confirmed"}

    assert str(welcome["To"]) == '"Zoë O\'Neil <3" <zoe@example.org>'
    assert welcome["Subject"] == "Welcome to The Speaker Daily"
    assert welcome["Auto-Submitted"] == "auto-generated"
    assert welcome["List-Id"] == '"The Speaker Daily" <daily.www.speakernews.co.uk>'
    # RFC 8058: an https link in List-Unsubscribe, and the one-click POST it takes.
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    (unsubscribe_url,) = re.findall(r"<(https://[^>]+)>", str(welcome["List-Unsubscribe"]))
    assert str(welcome["Message-ID"]).startswith("<welcome.")

    text, html = text_of(welcome), html_of(welcome)
    page: Any = lxml.html.document_fromstring(html)  # lxml-stubs lack text_content on _Element
    visible = words(page.text_content())
    for shown in (words(text), visible):
        assert "Hello Zoë O'Neil <3," in shown
        assert DESCRIPTION in shown
        # No zone of her own: the list's (the site's), Europe/London.
        assert any(f"planned for {spelt(t)}" in shown for t in {earliest, latest}), shown
    assert "Hello Zoë O&#x27;Neil &lt;3," in html
    assert "SFMARK" not in text + html  # every marker was filled in

    # The links work, as the reader follows them.
    links = {a.text_content(): a.get("href", "") for a in page.iter("a")}
    latest_copy = f"{APP}/digests/daily/{LATEST_ID}/"
    assert links["Read the latest issue of The Speaker Daily"] == latest_copy
    assert latest_copy in text
    copy = http.get(latest_copy.removeprefix(APP))
    assert copy.status_code == 200 and f"Issue {LATEST_ID}" in copy.text
    assert links["Unsubscribe"] == unsubscribe_url and f"Unsubscribe: {unsubscribe_url}" in text
    preferences = links["Manage preferences"]
    assert f"Manage preferences: {preferences}" in text
    assert "zoe@example.org" in http.get(preferences.removeprefix(APP)).text
    one_click = httpx.post(
        site.url + unsubscribe_url.removeprefix(APP), data={"List-Unsubscribe": "One-Click"}
    )
    assert one_click.status_code == 200
    assert site.statuses("zoe@example.org") == {"daily": "unsubscribed"}


def test_confirming_twice_or_changing_preferences_sends_no_second_welcome(
    outbox_site: ReaderSite, http: httpx.Client
) -> None:
    site = outbox_site
    messages = lambda: outbox_messages(site)  # noqa: E731
    path = confirm_through_pages(site, http, messages, email="ann@example.org", list_name="daily")
    wait_for(messages, 2)
    # The link used again (the page has no button now; a stale tab's form): nothing is sent.
    assert http.post(path, data={"csrf_token": csrf_token(http)}).status_code == 303
    assert "You are subscribed" in http.get(path).text
    ann = site.subscriber_id("ann@example.org")
    assert ann is not None
    prefs = f"/preferences/daily/{tokens.sign(SECRET, 'preferences', ann, 'daily')}"
    form = {
        "csrf_token": csrf_token(http, prefs),
        "lists": ["daily", "weekly"],  # a list ticked here is confirmed without an email
        "cadence-daily": "",
        "cadence-weekly": "monthly",
        "name": "Ann",
        "timezone": "Asia/Tokyo",
    }
    assert http.post(prefs, data=form).status_code == 303
    assert site.statuses("ann@example.org") == {"daily": "confirmed", "weekly": "confirmed"}
    time.sleep(1)  # room for any late email to arrive
    assert len(welcomes_in(outbox_messages(site))) == 1
    assert len(outbox_messages(site)) == 2


def test_the_next_issue_is_shown_in_the_readers_own_zone(
    outbox_site: ReaderSite, http: httpx.Client
) -> None:
    site = outbox_site
    messages = lambda: outbox_messages(site)  # noqa: E731
    confirm_through_pages(site, http, messages, email="ann@example.org", list_name="daily")
    wait_for(messages, 2)
    ann = site.subscriber_id("ann@example.org")
    assert ann is not None
    prefs = f"/preferences/daily/{tokens.sign(SECRET, 'preferences', ann, 'daily')}"
    form = {
        "csrf_token": csrf_token(http, prefs),
        "lists": ["daily"],
        "cadence-daily": "",
        "name": "Ann",
        "timezone": "America/New_York",
    }
    assert http.post(prefs, data=form).status_code == 303
    # She signs up for the weekly list (Saturdays 08:00 in London) from its form.
    confirm_through_pages(site, http, messages, email="ann@example.org", list_name="weekly")
    welcome = welcomes_in(wait_for(messages, 4))[-1]
    assert welcome["Subject"] == "Welcome to The Speaker Weekly"
    london = datetime.now(UTC).astimezone(ZoneInfo("Europe/London"))
    saturday = (london + timedelta(days=(5 - london.weekday()) % 7)).replace(
        hour=8, minute=0, second=0, microsecond=0
    )
    if saturday <= london:
        saturday += timedelta(days=7)
    in_new_york = saturday.astimezone(ZoneInfo("America/New_York"))
    assert f"planned for {spelt(in_new_york)}" in words(text_of(welcome))
    # No web copy of the weekly list's yet: no such link.
    assert "latest issue" not in text_of(welcome)


def test_with_an_smtp_server(engine: Engine, tmp_path: Path) -> None:
    with running_smtp_server(None, mode="none", auth=False) as server:
        smtp = {"host": "127.0.0.1", "port": server.port, "security": "none"}
        for site in start(
            engine,
            tmp_path,
            lists=MESSY_LISTS,
            configured_transport=True,
            delivery={"transport": "smtp", "smtp": smtp},
        ):
            with httpx.Client(base_url=site.url, timeout=10) as client:
                received = lambda: received_by(server)  # noqa: E731
                confirm_through_pages(site, client, received, email="bob@example.org")
                (welcome,) = welcomes_in(wait_for(received, 2))
    assert server.messages[-1].rcpt_tos == ("bob@example.org",)
    assert server.messages[-1].mail_from == "digest@speakernews.co.uk"
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe/daily/" in str(welcome["List-Unsubscribe"])
    assert DESCRIPTION in words(text_of(welcome))
    assert "Hello," in text_of(welcome)  # no name given: no name shown


def received_by(server: SmtpServer) -> list[EmailMessage]:
    return [parse(message.data) for message in server.messages]


def test_a_failing_transport_never_blocks_the_confirmation_and_the_job_sends_later(
    engine: Engine, tmp_path: Path
) -> None:
    for site in start(engine, tmp_path):
        with httpx.Client(base_url=site.url, timeout=10) as client:
            assert sign_up(client, "cat@example.org").status_code == 303
            (path,) = site.confirm_paths("cat@example.org")
            site.fail_mail = True  # the mail server says "421 try later" from now on
            answer = client.post(path, data={"csrf_token": csrf_token(client, path)})
            assert answer.status_code == 303
            assert "You are subscribed" in client.get(path).text
        assert site.statuses("cat@example.org") == {"daily": "confirmed"}
        cat = site.subscriber_id("cat@example.org")
        assert cat is not None
        deadline = time.monotonic() + 15
        while owed_attempts(engine, cat) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state_of(engine, cat) == "owed" and owed_attempts(engine, cat) == 1
        assert len(site.outbox) == 1  # the confirmation only

        site.fail_mail = False
        transport = lambda outbox=site.outbox: KeptMail(outbox)  # noqa: E731
        # Not due yet: the first retry waits a minute.
        assert send_owed_welcomes(engine, site.settings, SECRET, transport) == {}
        later = datetime.now(UTC) + timedelta(minutes=2)
        sent = send_owed_welcomes(engine, site.settings, SECRET, transport, now=later)
        assert sent == {WelcomeOutcome.SENT: 1}
        assert [batch.subject for batch in site.outbox][1:] == ["Welcome to The Speaker Daily"]
        assert state_of(engine, cat) == "sent"
        # Sent means done: the job never sends it again.
        much_later = later + timedelta(days=2)
        assert send_owed_welcomes(engine, site.settings, SECRET, transport, now=much_later) == {}
        assert len(site.outbox) == 2


def test_the_scheduler_job_retries_through_the_services_transport(
    engine: Engine, tmp_path: Path
) -> None:
    outbox: list[Any] = []
    for site in start(engine, tmp_path):
        with httpx.Client(base_url=site.url, timeout=10) as client:
            assert sign_up(client, "dan@example.org").status_code == 303
            (path,) = site.confirm_paths("dan@example.org")
            site.fail_mail = True
            client.post(path, data={"csrf_token": csrf_token(client, path)})
        dan = site.subscriber_id("dan@example.org")
        assert dan is not None
        deadline = time.monotonic() + 15
        while owed_attempts(engine, dan) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        with engine.begin() as conn:  # as if the back-off had passed
            welcomes.retry_later(
                conn,
                dan,
                "daily",
                at=datetime.now(UTC) - timedelta(seconds=1),
                now=datetime.now(UTC),
            )

        def transport() -> Transport:
            return KeptMail(outbox)

        service = Service(site.settings, engine, SECRET, transport, scheduling=False)
        schedule.install(
            schedule.JobContext(
                site.settings,
                engine,
                refresh=lambda: None,
                send_owed_welcomes=service.send_owed_welcomes,
            )
        )
        schedule.welcome_job()
        assert [batch.subject for batch in outbox] == ["Welcome to The Speaker Daily"]
        assert outbox[0].recipients[0].address == "dan@example.org"
        assert state_of(engine, dan) == "sent"


def test_a_list_with_welcome_off_sends_none(engine: Engine, tmp_path: Path) -> None:
    quiet = [{**LISTS[0], "welcome": False}, LISTS[1]]
    for site in start(engine, tmp_path, lists=quiet, signup={"per_address": 5}):
        with httpx.Client(base_url=site.url, timeout=10) as client:
            assert sign_up(client, "eve@example.org").status_code == 303
            (path,) = site.confirm_paths("eve@example.org")
            client.post(path, data={"csrf_token": csrf_token(client, path)})
            assert site.statuses("eve@example.org") == {"daily": "confirmed"}
            eve = site.subscriber_id("eve@example.org")
            assert eve is not None
            # The weekly list keeps the default: its confirmation is welcomed.
            assert sign_up(client, "eve@example.org", "weekly").status_code == 303
            weekly = site.confirm_paths("eve@example.org")[-1]
            client.post(weekly, data={"csrf_token": csrf_token(client, weekly)})
        deadline = time.monotonic() + 15
        while len(site.outbox) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        subjects = [batch.subject for batch in site.outbox]
        assert subjects == [
            "Confirm your subscription to The Speaker Daily",
            "Confirm your subscription to The Speaker Weekly",
            "Welcome to The Speaker Weekly",
        ]
        assert state_of(engine, eve) is None


def test_a_welcome_the_lint_refuses_is_held_back_and_stays_owed(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for site in start(engine, tmp_path):
        with httpx.Client(base_url=site.url, timeout=10) as client:
            assert sign_up(client, "fay@example.org").status_code == 303
            (path,) = site.confirm_paths("fay@example.org")
            site.fail_mail = True
            client.post(path, data={"csrf_token": csrf_token(client, path)})
        fay = site.subscriber_id("fay@example.org")
        assert fay is not None
        deadline = time.monotonic() + 15
        while owed_attempts(engine, fay) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Meanwhile the editor emptied the postal address: no list's email may go without it.
        email_settings = site.settings.email.model_copy(update={"postal_address": ""})
        careless = site.settings.model_copy(update={"email": email_settings})
        later = datetime.now(UTC) + timedelta(minutes=5)
        outcome = send_owed_welcomes(engine, careless, SECRET, lambda: KeptMail([]), now=later)
        assert outcome == {WelcomeOutcome.RETRY: 1}
        assert state_of(engine, fay) == "owed" and owed_attempts(engine, fay) == 2
        assert [batch.subject for batch in site.outbox] == [
            "Confirm your subscription to The Speaker Daily"
        ]
        assert "postal-address" in caplog.text


def state_of(engine: Engine, subscriber_id: str) -> str | None:
    with engine.connect() as conn:
        return welcomes.state_of(conn, subscriber_id, "daily")


def owed_attempts(engine: Engine, subscriber_id: str) -> int | None:
    with engine.connect() as conn:
        owed = welcomes.due(conn, now=datetime.now(UTC) + timedelta(days=1), limit=10)
    found = [item.attempts for item in owed if item.subscriber_id == subscriber_id]
    return found[0] if found else None


def test_a_reader_who_left_and_confirms_a_new_sign_up_is_welcomed_again(
    outbox_site: ReaderSite, http: httpx.Client
) -> None:
    site = outbox_site
    messages = lambda: outbox_messages(site)  # noqa: E731
    confirm_through_pages(site, http, messages, email="gus@example.org")
    (first,) = welcomes_in(wait_for(messages, 2))
    (unsubscribe_url,) = re.findall(r"<(https://[^>]+)>", str(first["List-Unsubscribe"]))
    one_click = {"List-Unsubscribe": "One-Click"}
    assert httpx.post(site.url + unsubscribe_url.removeprefix(APP), data=one_click).is_success
    assert site.statuses("gus@example.org") == {"daily": "unsubscribed"}
    confirm_through_pages(site, http, messages, email="gus@example.org")
    assert len(welcomes_in(wait_for(messages, 4))) == 2
    assert site.statuses("gus@example.org") == {"daily": "confirmed"}
