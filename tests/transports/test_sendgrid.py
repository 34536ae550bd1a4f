"""The SendGrid transport against a local server that checks SendGrid's payload rules: what it
sends, how it splits, keeps connections alive, waits and retries, and what each answer means."""

from __future__ import annotations

import html
import json
import random
import re
import socket
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import lxml.html
import pytest
from sendgrid.helpers.mail import (
    Category,
    ClickTracking,
    Content,
    CustomArg,
    From,
    Ganalytics,
    Header,
    Mail,
    OpenTracking,
    Personalization,
    ReplyTo,
    Subject,
    SubscriptionTracking,
    Substitution,
    To,
    TrackingSettings,
)

from speakerfeed.config.delivery import DeliverySettings, SendGridSettings
from speakerfeed.digest.letter import MessageTemplate
from speakerfeed.errors import TransportError
from speakerfeed.mail.placeholders import NAME, PREFERENCES_URL, UNSUBSCRIBE_URL
from speakerfeed.models import Outcome, Subscriber
from speakerfeed.render.email import our_hosts
from speakerfeed.render.resources import foreign_resources
from speakerfeed.transports.registry import transport_from_settings
from speakerfeed.transports.sendgrid import SendGridTransport
from speakerfeed.transports.sendgrid_payload import HTML_KEYS, KEY_ARG, SendGridPayload
from tests.render import test_email as email_tests
from tests.support.sendgrid_server import (
    DROP,
    Reply,
    SendGridServer,
    payload_problems,
    running_sendgrid_server,
)
from tests.transports.test_transports import NAMES, digest_template, filled, make_batch, recipient

pytestmark = pytest.mark.timeout(120)
API_KEY = "test-key-0123456789"
NOW = 1_700_000_000.0
API_KEY_LIKE = "SG.aBcDeFgHiJkLmNoPqRsTuV.aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789-_aBcDeF"


@pytest.fixture
def server() -> Iterator[SendGridServer]:
    with running_sendgrid_server(API_KEY) as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    return []


def sendgrid(
    server: SendGridServer, sleeps: list[float], *, api_key: str = API_KEY, **changes: Any
) -> SendGridTransport:
    settings: dict[str, Any] = {
        "api_url": server.url,
        "timeout_seconds": 10.0,
        "max_attempts": 3,
        "backoff_base_seconds": 2.0,
        "backoff_cap_seconds": 30.0,
        "pool_connections": 2,
    }
    return SendGridTransport(
        SendGridSettings.model_validate(settings | changes),
        api_key,
        sleep=sleeps.append,
        clock=lambda: NOW,
        jitter=random.Random(7),
    )


def test_what_is_sent_is_what_sendgrid_accepts_and_readers_get(server: SendGridServer) -> None:
    """Made from settings as the application makes it, the key from the environment."""
    settings = DeliverySettings.model_validate(
        {"transport": "sendgrid", "sendgrid": {"api_url": server.url}}
    )
    batch = make_batch(len(NAMES))
    with transport_from_settings(
        settings, Path(), environ={"SPEAKERFEED_SENDGRID_API_KEY": API_KEY}
    ) as transport:
        results = transport.send(batch)
    assert server.answered() == [202]
    assert [r.outcome for r in results] == [Outcome.SENT] * len(NAMES)
    (request,) = server.requests
    assert request.authorization == f"Bearer {API_KEY}"
    assert {r.provider_id for r in results} == {server.delivered[0].message_id}
    payload = request.payload
    assert [c["type"] for c in payload["content"]] == ["text/plain", "text/html"]
    assert payload["headers"] == dict(batch.headers)
    assert payload["categories"] == ["daily"]
    # Tracking off, whatever the account says: no open pixel, no rewritten links, no
    # SendGrid unsubscribe footer, no Google Analytics parameters.
    assert payload["tracking_settings"] == {
        "click_tracking": {"enable": False, "enable_text": False},
        "open_tracking": {"enable": False},
        "subscription_tracking": {"enable": False},
        "ganalytics": {"enable": False},
    }
    for email, person in zip(server.delivered, batch.recipients, strict=True):
        assert email.to["email"] == person.address
        assert email.sender == {"email": "digest@speakernews.co.uk", "name": "The Speaker"}
        assert email.reply_to == {"email": "letters@speakernews.co.uk", "name": "Letters"}
        assert email.subject == batch.subject
        assert email.custom_args == {KEY_ARG: person.key}
        assert email.headers == dict(batch.headers) | dict(person.headers)
        assert email.text == filled(batch.text, dict(person.values))
        escaped = {marker: html.escape(value) for marker, value in person.values.items()}
        assert email.html == filled(batch.html, escaped)
    names = [email.to.get("name", "") for email in server.delivered]
    # A name SendGrid would take for address syntax goes quoted.
    assert names == ["Jane Doe", "Zoë Ångström", '"O\'Brien <script>\\"x\\"</script> & co"',
                     '"Doe, Jane; (JD)"', ""]  # fmt: skip


def test_the_digest_batch_goes_through_sendgrid(server: SendGridServer) -> None:
    template = digest_template()
    subscribers = [Subscriber(f"s{n}", f"reader{n}@example.org", f"Reader <{n}>") for n in range(3)]
    with sendgrid(server, []) as transport:
        results = transport.send(template.batch(subscribers))
    assert {r.outcome for r in results} == {Outcome.SENT}
    for request in server.requests:
        tracking = request.payload["tracking_settings"]
        assert set(tracking) == {"click_tracking", "open_tracking", "subscription_tracking",
                                 "ganalytics"}  # fmt: skip
        assert not any(setting["enable"] for setting in tracking.values())
    for email in server.delivered:
        assert NAME not in email.text and HTML_KEYS[NAME] not in email.html
        assert "https://app.speakernews.co.uk/unsubscribe/daily/" in email.html
        list_id = email.headers["List-Id"]  # encoded, as SendGrid wants non-ASCII headers
        assert re.fullmatch(
            r"=\?utf-8\?b\?[A-Za-z0-9+/=]+\?= <daily\.www\.speakernews\.co\.uk>", list_id
        )
        assert str(make_header(decode_header(list_id))) == (
            "Zoë's “Daily” <daily.www.speakernews.co.uk>"
        )
        assert email.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_digest_through_sendgrid_reaches_the_reader_untracked(server: SendGridServer) -> None:
    """The inbox copy of a real digest: no open pixel, links straight to the articles. The
    same request without its tracking settings gets what the account would add, so the
    check can fail."""
    settings = email_tests.make_settings(app_url="https://app.speakernews.co.uk")
    daily = settings.lists[0]
    articles = (email_tests.make_article(1), email_tests.make_article(3))
    rendered = email_tests.render(articles, settings)
    template = MessageTemplate.build(rendered, settings, daily, b"k" * 32)
    batch = template.batch([Subscriber("s1", "reader@example.org", "Sam Reader")])
    with sendgrid(server, []) as transport:
        assert {r.outcome for r in transport.send(batch)} == {Outcome.SENT}
    ours = our_hosts(settings)
    (email,) = server.delivered
    document = lxml.html.document_fromstring(email.html)
    assert [str(r) for r in foreign_resources(document, ours)] == []
    links = [str(link.get("href")) for link in document.iter("a")]
    assert email_tests.make_article(1).url in links
    assert not any(urlsplit(link).hostname == "u0.ct.sendgrid.net" for link in links)

    untracked = dict(server.requests[0].payload)
    del untracked["tracking_settings"]
    answer = httpx.post(
        server.url + "/v3/mail/send",
        json=untracked,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    )
    assert answer.status_code == 202
    tracked = lxml.html.document_fromstring(server.delivered[-1].html)
    assert {r.host for r in foreign_resources(tracked, ours)} == {"u0.ct.sendgrid.net"}


def test_direct_serialisation_is_what_the_sendgrid_helpers_make() -> None:
    batch = make_batch(len(NAMES))
    payload = SendGridPayload.build(batch)
    ours = json.loads(payload.body([payload.personalization(p) for p in batch.recipients]))

    # Only markers whose value some recipient needs escaped get a key of their own in the HTML.
    escaped = {m for p in batch.recipients for m, v in p.values.items() if html.escape(v) != v}
    assert escaped and escaped != set(HTML_KEYS), "the batch should test both kinds"
    own_keys = {marker: key for marker, key in HTML_KEYS.items() if marker in escaped}

    mail = Mail()
    mail.from_email = From("digest@speakernews.co.uk", "The Speaker")
    mail.subject = Subject(batch.subject)
    mail.add_content(Content("text/html", filled(batch.html, own_keys)))
    mail.add_content(Content("text/plain", batch.text))  # the helper puts it first
    mail.reply_to = ReplyTo("letters@speakernews.co.uk", "Letters")
    for name, value in batch.headers:
        mail.add_header(Header(name, value))
    mail.add_category(Category("daily"))
    mail.tracking_settings = TrackingSettings(
        click_tracking=ClickTracking(False, False),
        open_tracking=OpenTracking(False),
        subscription_tracking=SubscriptionTracking(False),
        ganalytics=Ganalytics(False),
    )
    for index, person in enumerate(batch.recipients):
        personalization = Personalization()
        name = ours["personalizations"][index]["to"][0].get("name")  # quoted where needed
        personalization.add_to(To(person.address, name))
        for marker, value in person.values.items():
            personalization.add_substitution(Substitution(marker, value))
            if marker in own_keys:
                personalization.add_substitution(Substitution(own_keys[marker], html.escape(value)))
        for header, value in person.headers:
            personalization.add_header(Header(header, value))
        personalization.add_custom_arg(CustomArg(KEY_ARG, person.key))
        mail.add_personalization(personalization, index)
    assert ours == mail.get()
    assert payload_problems(ours) == []


def test_values_no_one_needs_escaped_share_one_key_in_text_and_html(
    server: SendGridServer,
) -> None:
    people = []
    for n in range(3):
        person = recipient(n, f"Reader {n}")
        link = f"https://app.example.org/preferences/daily/tok{n}"  # no "&" to escape
        people.append(recipient(n, f"Reader {n}", values={**person.values, PREFERENCES_URL: link}))
    batch = make_batch(recipients=tuple(people))
    payload = SendGridPayload.build(batch)
    body = json.loads(payload.body([payload.personalization(p) for p in batch.recipients]))
    assert not any(key in json.dumps(body) for key in HTML_KEYS.values())
    with sendgrid(server, []) as transport:
        assert {r.outcome for r in transport.send(batch)} == {Outcome.SENT}
    for email, person in zip(server.delivered, batch.recipients, strict=True):
        assert email.html == filled(batch.html, dict(person.values))
        assert email.text == filled(batch.text, dict(person.values))


def test_a_large_batch_goes_in_requests_of_1000_over_kept_alive_connections(
    server: SendGridServer, sleeps: list[float]
) -> None:
    batch = make_batch(2500)
    with sendgrid(server, sleeps, pool_connections=2) as transport:
        results = transport.send(batch)
        again = transport.send(make_batch(1200))
    assert {r.outcome for r in results + again} == {Outcome.SENT}
    sizes = [len(request.payload["personalizations"]) for request in server.requests]
    assert sizes[:3] == [1000, 1000, 500] or sorted(sizes[:3]) == [500, 1000, 1000]
    assert sorted(sizes[3:]) == [200, 1000]
    assert server.answered() == [202] * 5
    assert server.connections <= 2  # five requests, two connections at most
    assert sorted(email.to["email"] for email in server.delivered[:2500]) == sorted(
        p.address for p in batch.recipients
    )
    by_request = {}
    for request in server.requests[:3]:
        for item in request.payload["personalizations"]:
            by_request[item["custom_args"][KEY_ARG]] = request
    assert len(by_request) == 2500
    assert sleeps == []


def test_start_hands_a_batch_over_and_returns_before_sendgrid_answers(
    server: SendGridServer, sleeps: list[float]
) -> None:
    first, second = make_batch(300), make_batch(200)
    with sendgrid(server, sleeps, pool_connections=2) as transport:
        server.answering.clear()
        in_flight = [transport.start(first), transport.start(second)]  # neither answered yet
        assert server.answered() == []
        server.answering.set()
        results = [sending.results() for sending in in_flight]
    assert [r.key for r in results[0]] == [p.key for p in first.recipients]
    assert [r.key for r in results[1]] == [p.key for p in second.recipients]
    assert {r.outcome for r in results[0] + results[1]} == {Outcome.SENT}
    assert sorted(server.answered()) == [202, 202] and server.connections == 2


def test_an_address_twice_goes_in_separate_requests(
    server: SendGridServer, sleeps: list[float]
) -> None:
    people = (recipient(1), recipient(2), recipient(3, address="READER1@example.org"))
    with sendgrid(server, sleeps) as transport:
        results = transport.send(make_batch(recipients=people))
    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    assert sorted(len(r.payload["personalizations"]) for r in server.requests) == [1, 2]


def test_a_recipient_that_cannot_be_sent_fails_alone_before_any_request(
    server: SendGridServer, sleeps: list[float]
) -> None:
    people = (
        recipient(1),
        recipient(2, address="x@y.org\r\nBcc: z@y.org"),
        recipient(3, headers=(("Reply-To", "evil@example.org"),)),
        recipient(4, values={NAME: " x"}),
        recipient(5),
    )
    with sendgrid(server, sleeps) as transport:
        results = transport.send(make_batch(recipients=people))
    outcomes = [r.outcome for r in results]
    assert outcomes == [Outcome.SENT, Outcome.FAILED, Outcome.FAILED, Outcome.FAILED, Outcome.SENT]
    assert "To: a line break" in results[1].detail
    assert "Reply-To: written by the transport itself" in results[2].detail
    assert f"no value for {UNSUBSCRIBE_URL}" in results[3].detail
    assert [e.to["email"] for e in server.delivered] == [
        "reader1@example.org",
        "reader5@example.org",
    ]


def test_a_rate_limit_waits_until_it_resets(server: SendGridServer, sleeps: list[float]) -> None:
    server.script(
        Reply(429, {"X-RateLimit-Reset": str(int(NOW) + 3)}),
        Reply(429, {"Retry-After": "7"}),
    )
    with sendgrid(server, sleeps) as transport:
        results = transport.send(make_batch(2))
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert sleeps == [3.0, 7.0]
    assert server.answered() == [429, 429, 202]


def test_a_rate_limit_wait_is_capped(server: SendGridServer, sleeps: list[float]) -> None:
    server.script(Reply(429, {"X-RateLimit-Reset": str(int(NOW) + 3600)}))
    with sendgrid(server, sleeps, backoff_cap_seconds=20.0) as transport:
        assert transport.send(make_batch(1))[0].outcome is Outcome.SENT
    assert sleeps == [20.0]


def test_server_errors_back_off_then_succeed(server: SendGridServer, sleeps: list[float]) -> None:
    server.script(Reply(500), Reply(503))
    with sendgrid(server, sleeps) as transport:
        results = transport.send(make_batch(2))
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert server.answered() == [500, 503, 202]
    # Exponential with jitter: half of 2 s, 4 s fixed, the other half random.
    assert len(sleeps) == 2
    assert 1.0 <= sleeps[0] <= 2.0
    assert 2.0 <= sleeps[1] <= 4.0


def test_server_errors_past_the_attempts_are_deferred(
    server: SendGridServer, sleeps: list[float]
) -> None:
    server.script(*[Reply(503, body=b'{"errors":[{"message":"down"}]}')] * 5)
    with sendgrid(server, sleeps, max_attempts=5, backoff_cap_seconds=5.0) as transport:
        results = transport.send(make_batch(2))
    assert {r.outcome for r in results} == {Outcome.DEFERRED}
    assert results[0].detail == "after 5 attempts: 503 down"
    assert len(sleeps) == 4
    assert all(sleep <= 5.0 for sleep in sleeps)
    assert sleeps[-1] >= 2.5  # capped at 5: the fixed half is 2.5


def test_a_bad_request_fails_with_sendgrid_s_words(
    server: SendGridServer, sleeps: list[float]
) -> None:
    body = {"errors": [{"message": "The from address does not match a verified Sender Identity.",
                        "field": "from", "help": None}]}  # fmt: skip
    server.script(Reply(400, body=json.dumps(body).encode()))
    with sendgrid(server, sleeps) as transport:
        results = transport.send(make_batch(2))
    assert {r.outcome for r in results} == {Outcome.FAILED}
    assert results[0].detail == (
        "400 from: The from address does not match a verified Sender Identity."
    )
    assert sleeps == []
    assert server.answered() == [400]


def test_a_refused_key_fails_its_request_and_sends_no_more(
    server: SendGridServer, sleeps: list[float]
) -> None:
    with sendgrid(server, sleeps, api_key="wrong-key", pool_connections=1) as transport:
        results = transport.send(make_batch(2500))
    assert server.answered() == [401]
    assert [r.outcome for r in results].count(Outcome.FAILED) == 1000
    assert [r.outcome for r in results].count(Outcome.DEFERRED) == 1500
    assert "401 The provided authorization grant is invalid" in results[0].detail
    assert "not sent: SendGrid refused the API key (401" in results[-1].detail


def test_a_refused_key_holds_back_the_rest_of_its_batch_only(
    server: SendGridServer, sleeps: list[float]
) -> None:
    with sendgrid(server, sleeps, pool_connections=1) as transport:
        server.script(Reply(401, {}, b'{"errors": [{"message": "key revoked"}]}'))
        refused = transport.start(make_batch(1500)).results()
        later = transport.send(make_batch(10))  # a new batch tries again
    assert [r.outcome for r in refused].count(Outcome.FAILED) == 1000
    assert [r.outcome for r in refused].count(Outcome.DEFERRED) == 500
    assert {r.outcome for r in later} == {Outcome.SENT}
    assert server.answered() == [401, 202]


def test_a_connection_dropped_after_the_body_is_unknown_and_not_resent(
    server: SendGridServer, sleeps: list[float]
) -> None:
    server.script(DROP)
    with sendgrid(server, sleeps, pool_connections=1) as transport:
        results = transport.send(make_batch(1500))
    assert [r.outcome for r in results].count(Outcome.UNKNOWN) == 1000
    assert [r.outcome for r in results].count(Outcome.SENT) == 500
    unknown = next(r for r in results if r.outcome is Outcome.UNKNOWN)
    assert "may have been accepted" in unknown.detail
    assert server.answered() == [0, 202]  # the dropped request was not sent again
    assert sleeps == []


def test_no_server_is_deferred_after_the_attempts(sleeps: list[float]) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        settings = SendGridSettings(
            api_url=f"http://127.0.0.1:{unused.getsockname()[1]}", max_attempts=3
        )
        transport = SendGridTransport(settings, API_KEY, sleep=sleeps.append)
        results = transport.send(make_batch(2))
    assert {r.outcome for r in results} == {Outcome.DEFERRED}
    assert "not sent: ConnectError" in results[0].detail
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"subject": " \n "}, "SendGrid needs a subject"),
        ({"text": "", "html": ""}, "SendGrid needs content"),
        ({"category": "Zoë's list"}, "SendGrid categories are ASCII"),
        ({"text": f"a key {API_KEY_LIKE} pasted"}, "holds a SendGrid API key"),
        ({"html": API_KEY_LIKE}, "holds a SendGrid API key"),
        ({"html": "SFHTML0NAME0SFHTML"}, "reserved key"),
    ],
)
def test_a_batch_sendgrid_would_refuse_is_refused_before_any_request(
    server: SendGridServer, sleeps: list[float], changes: dict[str, Any], error: str
) -> None:
    with sendgrid(server, sleeps) as transport, pytest.raises(TransportError, match=error):
        transport.send(make_batch(**changes))
    assert server.requests == []


def test_the_api_key_must_fit_in_a_header() -> None:
    with pytest.raises(TransportError, match="API key is empty or holds spaces"):
        SendGridTransport(SendGridSettings(), "key with spaces")


def test_the_checking_server_refuses_what_sendgrid_refuses() -> None:
    """The rules the tests rely on are really checked."""
    good: dict[str, Any] = {
        "personalizations": [{"to": [{"email": "a@x.org"}]}],
        "from": {"email": "d@x.org"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "t"}, {"type": "text/html", "value": "h"}],
    }
    assert payload_problems(good) == []
    bad = [
        {**good, "personalizations": []},
        {**good, "personalizations": [{"to": [{"email": f"{n}@x.org"}]} for n in range(1001)]},
        {**good, "personalizations": [{"to": [{"email": "a@x.org"}, {"email": "A@x.org"}]}]},
        {**good, "personalizations": [{"subject": "no to"}]},
        {**good, "subject": ""},
        {key: value for key, value in good.items() if key != "from"},
        {**good, "content": list(reversed(good["content"]))},
        {**good, "headers": {"Subject": "x"}},
        {**good, "categories": ["a"] * 11},
    ]
    for payload in bad:
        assert payload_problems(payload), payload


def test_an_empty_batch_makes_no_request(server: SendGridServer, sleeps: list[float]) -> None:
    with sendgrid(server, sleeps) as transport:
        assert transport.send(make_batch(recipients=())) == []
    assert server.requests == []


def test_an_unexpected_error_costs_one_request_not_the_batch(
    server: SendGridServer, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = SendGridTransport._attempts

    def broken(self: SendGridTransport, indices: list[int], keys: list[str], body: bytes) -> Any:
        if indices[0] == 0:
            raise RuntimeError("a bug, deep down")
        return real(self, indices, keys, body)

    monkeypatch.setattr(SendGridTransport, "_attempts", broken)
    with sendgrid(server, sleeps) as transport:
        results = transport.send(make_batch(1500))
    assert [r.outcome for r in results] == [Outcome.UNKNOWN] * 1000 + [Outcome.SENT] * 500
    assert "a bug, deep down" in results[0].detail
