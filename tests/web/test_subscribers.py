"""The readers' pages over HTTP, on SQLite and PostgreSQL: sign-up, double opt-in, preferences,
unsubscribe (page and RFC 8058 one-click), CSRF, honeypot, rate limits and signed links."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import lxml.html
import pytest
from sqlalchemy import Engine, func, select, update

from speakerfeed.mail import tokens
from speakerfeed.models import Batch, DeliveryResult
from speakerfeed.store import subscribers as repo
from speakerfeed.store.schema import consent_records, rate_limits, subscriptions, suppressions
from speakerfeed.transports.base import LocalWriteError
from tests.support.webapp import SECRET, KeptMail, ReaderSite, reader_site, start

__all__ = ["reader_site"]

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@pytest.fixture
def http(reader_site: ReaderSite) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=reader_site.url, timeout=10) as client:
        yield client


def csrf_token(client: httpx.Client, path: str = "/subscribe") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_up(
    client: httpx.Client, email: str, list_name: str = "daily", **extra: str
) -> httpx.Response:
    form = {"csrf_token": csrf_token(client), "list": list_name, "email": email, **extra}
    return client.post("/subscribe", data=form)


def consent_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(consent_records)).scalar_one())


def suppression_reasons(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(suppressions.c.address_hash, suppressions.c.reason)).all()
    return {row.address_hash: row.reason for row in rows}


def confirmed(site: ReaderSite, client: httpx.Client, email: str, list_name: str = "daily") -> str:
    """Sign up and confirm through the pages; the subscriber id."""
    assert sign_up(client, email, list_name).status_code == 303
    path = site.confirm_paths(email)[-1]
    client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert site.statuses(email)[list_name] == "confirmed"
    subscriber_id = site.subscriber_id(email)
    assert subscriber_id is not None
    return subscriber_id


# ------------------------------------------------------------------------------------ sign-up


def test_subscribe_form_is_a_labelled_form_with_csrf_and_safe_headers(
    http: httpx.Client,
) -> None:
    page = http.get("/subscribe")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "speakerfeed_csrf" in page.headers["set-cookie"]
    assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=lax" in page.headers["set-cookie"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    assert html.index("Skip to content") < html.index("<form")
    for field_id in ("list-daily", "list-weekly", "name", "email"):
        assert f'<label for="{field_id}">' in html
    assert '<input type="email" id="email" name="email" autocomplete="email"' in html


def test_the_whole_flow_over_http(reader_site: ReaderSite, http: httpx.Client) -> None:
    answer = sign_up(http, "  Ann@Example.org ", name="Ann Example")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/subscribe/sent?list=daily"
    assert "Check your inbox" in http.get(answer.headers["location"]).text
    assert reader_site.statuses("ann@example.org") == {"daily": "pending"}

    (batch,) = reader_site.outbox
    (recipient,) = batch.recipients
    assert recipient.address == "ann@example.org" and recipient.name == "Ann Example"
    assert batch.subject == "Confirm your subscription to The Speaker Daily"
    assert ("Auto-Submitted", "auto-generated") in batch.headers
    (path,) = reader_site.confirm_paths("ann@example.org")
    assert path in batch.html  # the button links to the same page

    page = http.get(path)
    assert "Confirm my subscription" in page.text and "ann@example.org" in page.text
    assert reader_site.statuses("ann@example.org") == {"daily": "pending"}  # a GET changes nothing
    done = http.post(path, data={"csrf_token": csrf_token(http, path)})
    assert done.status_code == 303
    assert reader_site.statuses("ann@example.org") == {"daily": "confirmed"}
    assert "You are subscribed" in http.get(path).text

    with reader_site.engine.connect() as conn:
        records = conn.execute(select(consent_records).order_by(consent_records.c.id)).all()
    assert [r.action for r in records] == ["subscribe-requested", "confirmed"]
    assert records[0].ip == "127.0.0.1" and records[0].user_agent.startswith("python-httpx")
    assert records[0].form == "web:subscribe"
    assert records[0].confirmation_message_id == dict(recipient.headers)["Message-ID"]


def test_invalid_input_is_reported_per_field_and_kept(
    reader_site: ReaderSite, http: httpx.Client
) -> None:
    answer = sign_up(http, "not-an-address", list_name="nope", name="Zoë")
    assert answer.status_code == 422
    html = answer.text
    assert '<div class="error-summary" role="alert"' in html
    assert "<title>Error: Subscribe" in html
    assert 'aria-describedby="email-error" aria-invalid="true"' in html
    assert 'id="email-error"' in html and "like name@example.org" in html
    assert 'id="list-error"' in html and "Choose a newsletter" in html
    assert 'value="not-an-address"' in html and 'value="Zoë"' in html
    assert reader_site.outbox == [] and reader_site.subscriber_id("not-an-address") is None


def test_a_form_post_without_a_csrf_token_is_403_and_changes_nothing(
    reader_site: ReaderSite, http: httpx.Client
) -> None:
    form = {"list": "daily", "email": "ann@example.org"}
    assert http.post("/subscribe", data=form).status_code == 403
    http.get("/subscribe")  # now with the cookie, but a wrong token
    assert http.post("/subscribe", data={**form, "csrf_token": "00" * 16}).status_code == 403
    fresh = httpx.post(reader_site.url + "/subscribe", data={**form, "csrf_token": "x"})
    assert fresh.status_code == 403  # no cookie at all
    assert "reload the page" in fresh.text
    assert reader_site.outbox == [] and consent_count(reader_site.engine) == 0
    # Another visitor's token does not fit this visitor's cookie.
    with httpx.Client(base_url=reader_site.url) as other:
        stolen = csrf_token(other)
    assert http.post("/subscribe", data={**form, "csrf_token": stolen}).status_code == 403


def test_a_filled_honeypot_answers_the_same_and_sends_nothing(
    reader_site: ReaderSite, http: httpx.Client
) -> None:
    answer = sign_up(http, "bot-target@example.org", website="http://spam.example")
    assert answer.status_code == 303 and answer.headers["location"] == "/subscribe/sent?list=daily"
    assert reader_site.outbox == []
    assert reader_site.subscriber_id("bot-target@example.org") is None


def test_the_answer_never_reveals_whether_an_address_is_known(
    reader_site: ReaderSite, http: httpx.Client
) -> None:
    confirmed(reader_site, http, "known@example.org")
    with reader_site.engine.begin() as conn:
        repo.suppress(conn, repo.address_hash(SECRET, "bounced@example.org"), "bounced")
    sent_before = len(reader_site.outbox)
    answers = [sign_up(http, email) for email in ("known@example.org", "bounced@example.org")]
    answers.append(sign_up(http, "new@example.org"))
    assert {(a.status_code, a.headers["location"]) for a in answers} == {
        (303, "/subscribe/sent?list=daily")
    }
    # Only the new address gets a confirmation: no second one to a subscriber (whose welcome,
    # sent after the confirm page's answer, may land meanwhile), none to a bounced one.
    confirmations = [b for b in reader_site.outbox[sent_before:] if b.category == "confirmation"]
    assert [b.recipients[0].address for b in confirmations] == ["new@example.org"]
    assert reader_site.subscriber_id("bounced@example.org") is None


def test_a_transport_failure_is_said_plainly(reader_site: ReaderSite, http: httpx.Client) -> None:
    reader_site.fail_mail = True
    answer = sign_up(http, "ann@example.org")
    assert answer.status_code == 503 and "try again later" in answer.text
    assert reader_site.statuses("ann@example.org") == {"daily": "pending"}


def test_an_outbox_that_cannot_be_written_is_said_plainly(
    reader_site: ReaderSite, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox transport raises LocalWriteError on a full disk: the reader gets the same
    503 as for any mail failure, not a 500."""

    def full(self: KeptMail, batch: Batch) -> list[DeliveryResult]:
        raise LocalWriteError("outbox: cannot write to var/outbox: ENOSPC (No space left)")

    monkeypatch.setattr(KeptMail, "send", full)
    answer = sign_up(http, "ann@example.org")
    assert answer.status_code == 503 and "try again later" in answer.text


def test_an_oversized_form_is_refused(http: httpx.Client) -> None:
    answer = http.post(
        "/subscribe",
        content=b"email=" + b"a" * 40_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413


# ---------------------------------------------------------------------------------- rate limits


def test_a_thousand_sign_ups_a_minute_from_one_ip_get_429s(
    reader_site: ReaderSite, http: httpx.Client
) -> None:
    token = csrf_token(http)
    statuses: list[int] = []
    retry_after: set[str] = set()
    for number in range(1000):
        answer = http.post(
            "/subscribe",
            data={"csrf_token": token, "list": "daily", "email": f"r{number % 40}@example.org"},
        )
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            retry_after.add(answer.headers["retry-after"])
    limit = reader_site.settings.signup.per_ip
    assert statuses[:limit] == [303] * limit
    assert statuses.count(429) >= 1000 - 2 * limit  # the window may roll over once
    assert all(0 < int(value) <= 600 for value in retry_after)
    per_address: dict[str, int] = {}
    for batch in reader_site.outbox:
        address = batch.recipients[0].address
        per_address[address] = per_address.get(address, 0) + 1
    assert max(per_address.values()) == 1
    with reader_site.engine.connect() as conn:
        buckets = conn.execute(select(rate_limits.c.bucket)).scalars().all()
    assert not any("127.0.0.1" in bucket or "@" in bucket for bucket in buckets)


@pytest.fixture
def open_site(engine: Engine, tmp_path: Path) -> Iterator[ReaderSite]:
    """No per-IP limit to speak of: what is left is the per-address limit."""
    yield from start(engine, tmp_path, signup={"per_ip": 100_000})


def test_at_most_one_confirmation_per_address_per_window(open_site: ReaderSite) -> None:
    with httpx.Client(base_url=open_site.url) as client:
        answers = [sign_up(client, f"target{n % 5}@example.org").status_code for n in range(200)]
    assert set(answers) == {303}
    assert sorted(b.recipients[0].address for b in open_site.outbox) == [
        f"target{n}@example.org" for n in range(5)
    ]


# ----------------------------------------------------------------------------- signed links


def unsubscribe_path(subscriber_id: str, list_name: str = "daily") -> str:
    token = tokens.sign(SECRET, "unsubscribe", subscriber_id, list_name)
    return f"/unsubscribe/{list_name}/{token}"


def test_get_on_the_unsubscribe_link_changes_nothing(
    reader_site: ReaderSite, http: httpx.Client
) -> None:
    subscriber_id = confirmed(reader_site, http, "ann@example.org")
    records = consent_count(reader_site.engine)
    for _ in range(3):
        page = httpx.get(reader_site.url + unsubscribe_path(subscriber_id))
        assert page.status_code == 200
        assert "<button" in page.text and "Stop sending The Speaker Daily" in page.text
        assert page.headers["cache-control"] == "no-store"
    assert httpx.head(reader_site.url + unsubscribe_path(subscriber_id)).status_code == 200
    assert reader_site.statuses("ann@example.org") == {"daily": "confirmed"}
    assert consent_count(reader_site.engine) == records


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_one_click_post_unsubscribes_without_cookie_or_csrf(
    reader_site: ReaderSite, http: httpx.Client, encoding: str
) -> None:
    subscriber_id = confirmed(reader_site, http, "ann@example.org")
    url = reader_site.url + unsubscribe_path(subscriber_id)
    body = {"List-Unsubscribe": "One-Click"}
    if encoding == "multipart":
        answer = httpx.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    else:
        answer = httpx.post(url, data=body)
    assert answer.status_code == 200
    assert reader_site.statuses("ann@example.org") == {"daily": "unsubscribed"}
    # The last list left: the address is suppressed, and it was written before the answer.
    assert suppression_reasons(reader_site.engine) == {
        repo.address_hash(SECRET, "ann@example.org"): "unsubscribed"
    }
    again = httpx.post(url, data=body)
    assert again.status_code == 200
    page = httpx.get(url)
    assert "You have unsubscribed" in page.text


def test_the_page_button_unsubscribes_with_csrf(
    reader_site: ReaderSite, http: httpx.Client
) -> None:
    subscriber_id = confirmed(reader_site, http, "ann@example.org")
    path = unsubscribe_path(subscriber_id)
    assert http.post(path, data={}).status_code == 403  # a plain form POST needs the token
    assert reader_site.statuses("ann@example.org") == {"daily": "confirmed"}
    answer = http.post(path, data={"csrf_token": csrf_token(http, path)})
    assert answer.status_code == 303
    assert reader_site.statuses("ann@example.org") == {"daily": "unsubscribed"}


def tampered(token: str) -> list[str]:
    payload, _, mac = token.partition(".")
    flip = "A" if mac[0] != "A" else "B"
    return [
        f"{payload}.{flip}{mac[1:]}",  # the MAC changed
        token[:-3],  # truncated
        token.split(".")[0],  # the MAC cut off
        "",
        "x" * 3000,
    ]


def test_bad_tokens_change_nothing(reader_site: ReaderSite, http: httpx.Client) -> None:
    ann = confirmed(reader_site, http, "ann@example.org")
    bob = confirmed(reader_site, http, "bob@example.org")
    with reader_site.engine.begin() as conn:
        repo.subscribe(conn, ann, "weekly", status="confirmed", consent={"action": "test"})
    records = consent_count(reader_site.engine)
    good = tokens.sign(SECRET, "unsubscribe", ann, "daily")
    wrong = [
        *(f"/unsubscribe/daily/{t}" for t in tampered(good) if t),
        f"/unsubscribe/weekly/{good}",  # another list's link
        f"/unsubscribe/nope/{good}",  # no such list
        f"/unsubscribe/daily/{tokens.sign(SECRET, 'preferences', ann, 'daily')}",  # another use
        f"/unsubscribe/daily/{tokens.sign(b'another-key-0123456789', 'unsubscribe', ann, 'daily')}",
    ]
    # Another subscriber's token: the payload of Bob's with the MAC of Ann's.
    bob_token = tokens.sign(SECRET, "unsubscribe", bob, "daily")
    wrong.append(f"/unsubscribe/daily/{bob_token.split('.')[0]}.{good.split('.')[1]}")
    for path in wrong:
        for answer in (
            httpx.post(reader_site.url + path, data={"List-Unsubscribe": "One-Click"}),
            http.post(path, data={"csrf_token": csrf_token(http)}),
            http.get(path),
        ):
            assert answer.status_code in (400, 404), (path, answer.status_code)
    assert reader_site.statuses("ann@example.org") == {"daily": "confirmed", "weekly": "confirmed"}
    assert reader_site.statuses("bob@example.org") == {"daily": "confirmed"}
    assert consent_count(reader_site.engine) == records
    assert suppression_reasons(reader_site.engine) == {}

    for path in ("/confirm/daily/", "/preferences/daily/"):
        purpose = path.split("/")[1]
        token = tokens.sign(SECRET, purpose, ann, "daily")
        for bad in (*tampered(token)[:3], tokens.sign(SECRET, purpose, ann, "weekly")):
            assert http.get(path + bad).status_code == 400
            answer = http.post(path + bad, data={"csrf_token": csrf_token(http), "lists": []})
            assert answer.status_code == 400
    assert reader_site.statuses("ann@example.org") == {"daily": "confirmed", "weekly": "confirmed"}


def test_an_expired_confirmation_link_is_refused(
    reader_site: ReaderSite, http: httpx.Client
) -> None:
    sign_up(http, "ann@example.org")
    ann = reader_site.subscriber_id("ann@example.org")
    assert ann is not None
    expired = tokens.sign(SECRET, "confirm", ann, "daily", expires=1)
    page = http.get(f"/confirm/daily/{expired}")
    assert page.status_code == 400 and "expired" in page.text
    answer = http.post(f"/confirm/daily/{expired}", data={"csrf_token": csrf_token(http)})
    assert answer.status_code == 400
    assert reader_site.statuses("ann@example.org") == {"daily": "pending"}


# ---------------------------------------------------------------------------------- preferences


def test_preferences_change_lists_cadence_name_and_time_zone(
    reader_site: ReaderSite, http: httpx.Client
) -> None:
    ann = confirmed(reader_site, http, "ann@example.org")
    path = f"/preferences/daily/{tokens.sign(SECRET, 'preferences', ann, 'daily')}"
    page = http.get(path)
    assert page.status_code == 200
    assert 'id="list-daily" name="lists" value="daily" checked' in page.text
    assert "How often: The Speaker Weekly" in page.text
    form = {
        "csrf_token": csrf_token(http, path),
        "lists": ["weekly"],
        "cadence-daily": "",
        "cadence-weekly": "monthly",
        "name": "  Ann   Example ",
        "timezone": "Europe/Paris",
    }
    answer = http.post(path, data=form)
    assert answer.status_code == 303 and answer.headers["location"].endswith("?saved=1")
    assert reader_site.statuses("ann@example.org") == {
        "daily": "unsubscribed",
        "weekly": "confirmed",
    }
    saved = http.get(answer.headers["location"]).text
    assert "Your preferences are saved." in saved
    assert 'value="monthly" checked' in saved and "<option selected>Europe/Paris</option>" in saved
    assert 'value="Ann Example"' in saved
    assert suppression_reasons(reader_site.engine) == {}

    # Untick everything: the reader has left, and the address is suppressed.
    form = {**form, "lists": []}
    assert http.post(path, data=form).status_code == 303
    assert set(reader_site.statuses("ann@example.org").values()) == {"unsubscribed"}
    assert list(suppression_reasons(reader_site.engine).values()) == ["unsubscribed"]
    # Ticking a list again on the same page lifts that suppression.
    assert http.post(path, data={**form, "lists": ["daily"]}).status_code == 303
    assert reader_site.statuses("ann@example.org")["daily"] == "confirmed"
    assert suppression_reasons(reader_site.engine) == {}


DAILY_DESCRIPTION = "Every morning's news."
DAILY_REASON = "You receive this because you signed up for The Speaker Daily."


def _html(text: str) -> Any:
    return lxml.html.document_fromstring(text)


def _text(page: Any) -> str:
    return " ".join(page.text_content().split())


def test_a_list_says_what_it_is_and_keeps_why_you_receive_it_for_the_footer(
    reader_site: ReaderSite, http: httpx.Client
) -> None:
    signup = _html(http.get("/subscribe").text)
    daily = signup.get_element_by_id("list-daily")
    assert daily.get("aria-describedby") == "list-daily-hint"
    assert signup.get_element_by_id("list-daily-hint").text_content() == DAILY_DESCRIPTION
    assert signup.get_element_by_id("list-weekly").get("aria-describedby") is None
    assert DAILY_REASON not in _text(signup)

    assert sign_up(http, "ann@example.org").status_code == 303
    (batch,) = reader_site.outbox
    assert DAILY_DESCRIPTION in " ".join(batch.text.split())
    confirmation = _text(_html(batch.html))
    assert DAILY_DESCRIPTION in confirmation and DAILY_REASON not in confirmation
    path = reader_site.confirm_paths("ann@example.org")[-1]
    confirm = _text(_html(http.get(path).text))
    assert "Subscribe ann@example.org to The Speaker Daily?" in confirm
    assert DAILY_DESCRIPTION in confirm and DAILY_REASON not in confirm

    http.post(path, data={"csrf_token": csrf_token(http, path)})
    ann = reader_site.subscriber_id("ann@example.org")
    assert ann is not None
    link = f"/preferences/daily/{tokens.sign(SECRET, 'preferences', ann, 'daily')}"
    preferences = _html(http.get(link).text)
    # Each description is the hint of the box that acts on its list; no other text says it.
    hints = preferences.xpath("//form//*[contains(@class, 'hint')][@id]")
    described = {
        box.get("value"): box.get("aria-describedby")
        for box in preferences.xpath("//input[@name='lists']")
    }
    assert described == {"daily": "list-daily-hint", "weekly": None}
    assert [(h.get("id"), h.text_content()) for h in hints if h.get("id").startswith("list-")] == [
        ("list-daily-hint", DAILY_DESCRIPTION)
    ]
    assert _text(preferences).count(DAILY_DESCRIPTION) == 1
    assert DAILY_REASON not in _text(preferences)


def test_a_cadence_since_removed_from_config_shows_as_every_issue(
    reader_site: ReaderSite, http: httpx.Client
) -> None:
    ann = confirmed(reader_site, http, "ann@example.org", "weekly")
    with reader_site.engine.begin() as conn:  # chosen when config.toml still offered it
        conn.execute(
            update(subscriptions)
            .where(subscriptions.c.subscriber_id == ann)
            .values(cadence="fortnightly")
        )
    path = f"/preferences/weekly/{tokens.sign(SECRET, 'preferences', ann, 'weekly')}"
    page = http.get(path).text
    # What the reader now gets: the list's own digests (store.subscribers.on_cadence).
    assert re.search(r'id="cadence-weekly-every"[^>]*value=""\s+checked', page), page


def test_preferences_refuse_unknown_choices(reader_site: ReaderSite, http: httpx.Client) -> None:
    ann = confirmed(reader_site, http, "ann@example.org")
    path = f"/preferences/daily/{tokens.sign(SECRET, 'preferences', ann, 'daily')}"
    form = {
        "csrf_token": csrf_token(http, path),
        "lists": ["daily"],
        "cadence-weekly": "hourly",
        "timezone": "Mars/Olympus",
    }
    answer = http.post(path, data=form)
    assert answer.status_code == 422
    assert 'role="alert"' in answer.text
    assert 'id="timezone-error"' in answer.text and 'id="cadence-weekly-error"' in answer.text
    assert reader_site.statuses("ann@example.org") == {"daily": "confirmed"}
    assert http.post(path, data={"lists": ["daily"]}).status_code == 403


def test_a_resubscription_after_leaving_needs_a_new_confirmation(
    engine: Engine, tmp_path: Path
) -> None:
    for site in start(engine, tmp_path, signup={"per_address": 2}):
        with httpx.Client(base_url=site.url) as http:
            ann = confirmed(site, http, "ann@example.org")
            leave = {"List-Unsubscribe": "One-Click"}
            assert http.post(unsubscribe_path(ann), data=leave).status_code == 200
            assert list(suppression_reasons(site.engine).values()) == ["unsubscribed"]
            sign_up(http, "ann@example.org")
            assert site.statuses("ann@example.org") == {"daily": "pending"}
            path = site.confirm_paths("ann@example.org")[-1]
            http.post(path, data={"csrf_token": csrf_token(http, path)})
            assert site.statuses("ann@example.org") == {"daily": "confirmed"}
            assert suppression_reasons(site.engine) == {}


def test_the_general_pages_explain_where_the_links_are(http: httpx.Client) -> None:
    for path in ("/unsubscribe/", "/preferences/"):
        page = http.get(path)
        assert page.status_code == 200 and "Manage preferences" in page.text


def test_the_list_unsubscribe_header_of_a_real_digest_works_in_one_click(
    reader_site: ReaderSite, http: httpx.Client
) -> None:
    """A digest sent through the ledger; a mail provider POSTs its List-Unsubscribe URL."""
    from datetime import UTC, datetime

    from speakerfeed.digest import deliver as dispatch
    from speakerfeed.store import ledger
    from speakerfeed.transports.memory import MemoryTransport

    confirmed(reader_site, http, "ann@example.org")
    content = ledger.SendContent(
        subject="The Speaker Daily",
        html="<p>Hi SFMARK0NAME0SFMARK <a href='SFMARK0UNSUBSCRIBE0SFMARK'>Unsubscribe</a> "
        "<a href='SFMARK0PREFERENCES0SFMARK'>Preferences</a></p>",
        text="Hi SFMARK0NAME0SFMARK\nSFMARK0UNSUBSCRIBE0SFMARK\nSFMARK0PREFERENCES0SFMARK\n",
    )
    with reader_site.engine.begin() as conn:
        ledger.create_send(conn, "daily-x", "daily", content, scheduled_at=datetime.now(UTC))
    transport = MemoryTransport()
    dispatch.run_send(reader_site.engine, reader_site.settings, "daily-x", transport, secret=SECRET)
    (message,) = [m.parsed() for m in transport.sent]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https_link = re.search(r"<(https://[^>]+)>", str(message["List-Unsubscribe"]))
    assert https_link is not None
    url = https_link.group(1).replace("https://app.speakernews.co.uk", reader_site.url)
    # What Gmail and others send: no cookie, the header's key/value pair as the body.
    answer = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert reader_site.statuses("ann@example.org") == {"daily": "unsubscribed"}
