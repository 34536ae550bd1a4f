"""Transports: the MIME messages a Batch becomes, the memory and outbox transports, the settings
and choosing a transport by name. SMTP and SendGrid have their own modules; they share the
batches made here."""

from __future__ import annotations

import email.parser
import email.policy
import errno
import html
import re
import stat
import typing
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from speakerfeed.config.delivery import DeliverySettings, TransportName
from speakerfeed.digest.letter import MessageTemplate
from speakerfeed.errors import HeaderError, TransportError
from speakerfeed.mail.mime import BatchTemplate
from speakerfeed.mail.placeholders import NAME, PREFERENCES_URL, UNSUBSCRIBE_URL
from speakerfeed.mail.tokens import verify
from speakerfeed.models import (
    Batch,
    DeliveryResult,
    Digest,
    Outcome,
    Recipient,
    RenderedDigest,
    Subscriber,
)
from speakerfeed.transports.base import LocalWriteError
from speakerfeed.transports.memory import MemoryTransport
from speakerfeed.transports.outbox import OutboxTransport
from speakerfeed.transports.registry import TRANSPORTS, transport_from_settings
from tests.digest.test_letter import check_lines
from tests.support.project import project_settings

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2023, 11, 29, 7, 0, 5, tzinfo=UTC)
PARSER = email.parser.BytesParser(policy=email.policy.default)
TEXT = (
    f"Hello{NAME},\n\nCafé news – “quoted” & more. a=b\n.a line starting with a dot\n"
    f"Unsubscribe: {UNSUBSCRIBE_URL}\nPreferences: {PREFERENCES_URL}\n"
)
HTML = (
    f"<!doctype html><html><body><p>Hello{NAME},</p>\n<p>Café news – “quoted” &amp; more.</p>\n"
    f'<p><a href="{UNSUBSCRIBE_URL}">Unsubscribe</a> · <a href="{PREFERENCES_URL}">Preferences'
    "</a></p>\n</body></html>\n"
)
NAMES = ["Jane Doe", "Zoë Ångström", 'O\'Brien <script>"x"</script> & co', "Doe, Jane; (JD)", ""]


def recipient(number: int, name: str = "", **changes: Any) -> Recipient:
    """A recipient with values for every marker: the name with its space, two URLs (one with
    characters HTML must escape)."""
    values = {
        NAME: f" {name}" if name else "",
        UNSUBSCRIBE_URL: f"https://app.example.org/unsubscribe/daily/tok{number}",
        PREFERENCES_URL: f"https://app.example.org/preferences/daily/tok{number}?a=1&b=2",
    }
    fields: dict[str, Any] = {
        "key": f"sub-{number}",
        "address": f"reader{number}@example.org",
        "name": name,
        "values": values,
        "headers": (
            ("Message-ID", f"<daily.sub-{number}.x@speakernews.co.uk>"),
            ("List-Unsubscribe", f"<{values[UNSUBSCRIBE_URL]}>"),
        ),
    }
    return Recipient(**(fields | changes))


def make_batch(count: int = 3, **changes: Any) -> Batch:
    fields: dict[str, Any] = {
        "sender": "The Speaker <digest@speakernews.co.uk>",
        "subject": "The Daily: Students march – “again”",
        "text": TEXT,
        "html": HTML,
        "recipients": tuple(recipient(n, NAMES[n % len(NAMES)]) for n in range(count)),
        "reply_to": "Letters <letters@speakernews.co.uk>",
        "headers": (
            ("List-Id", '"The Daily" <daily.www.speakernews.co.uk>'),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
        "category": "daily",
    }
    return Batch(**(fields | changes))


def digest_template() -> MessageTemplate:
    """A MessageTemplate for the same text and HTML, as the digest path makes it."""
    settings = project_settings(
        email={
            "from_address": "The Speaker <digest@speakernews.co.uk>",
            "reply_to": "Letters <letters@speakernews.co.uk>",
            "app_url": "https://app.speakernews.co.uk",
            "unsubscribe_mailto": "unsubscribe@speakernews.co.uk",
        },
        lists=[{"name": "daily", "title": "Zoë's “Daily”"}],
    )
    digest = Digest("daily-2023-11-29-0700", "daily", "The Daily", (), NOW)
    rendered = RenderedDigest(digest, "The Daily: news", "Today", HTML, TEXT, "https://x.org/")
    return MessageTemplate.build(rendered, settings, settings.lists[0], SECRET)


def parse(data: bytes) -> EmailMessage:
    message = PARSER.parsebytes(data)
    assert isinstance(message, EmailMessage)
    assert not message.defects
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    plain, rich = message.iter_parts()
    assert isinstance(plain, EmailMessage)
    assert isinstance(rich, EmailMessage)
    assert (plain.get_content_type(), rich.get_content_type()) == ("text/plain", "text/html")
    for part in (plain, rich):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    return plain.get_content().replace("\r\n", "\n"), rich.get_content().replace("\r\n", "\n")


def filled(template: str, values: dict[str, str]) -> str:
    for marker, value in values.items():
        template = template.replace(marker, value)
    return template


def check_message(message: EmailMessage, batch: Batch, person: Recipient) -> None:
    """Headers, and both bodies with the values in place: plain in text, escaped in HTML."""
    assert message["From"] == "The Speaker <digest@speakernews.co.uk>"
    (to,) = message["To"].addresses
    assert (to.addr_spec, to.display_name) == (person.address, person.name)
    assert message["Subject"] == batch.subject
    assert message["Reply-To"] == "Letters <letters@speakernews.co.uk>"
    for name, value in (*batch.headers, *person.headers):
        assert str(message[name]) == value
    text, rich = parts(message)
    assert text == filled(batch.text, dict(person.values))
    escaped = {marker: html.escape(value) for marker, value in person.values.items()}
    assert rich == filled(batch.html, escaped)


# --- the MIME messages of a Batch -----------------------------------------------------------


def test_each_recipient_gets_a_complete_message_with_its_values() -> None:
    batch = make_batch(len(NAMES))
    memory = MemoryTransport()
    results = memory.send(batch)
    assert [r.outcome for r in results] == [Outcome.SENT] * len(NAMES)
    assert [r.key for r in results] == [r.key for r in batch.recipients]
    assert [m.envelope_to for m in memory.sent] == [r.address for r in batch.recipients]
    assert {m.envelope_from for m in memory.sent} == {"digest@speakernews.co.uk"}
    for sent, person in zip(memory.sent, batch.recipients, strict=True):
        message = sent.parsed()
        check_message(message, batch, person)
        check_lines(sent.data)
        assert list(message.keys()) == [
            "From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "Reply-To",
            "List-Id", "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
        ]  # fmt: skip
    assert "&lt;script&gt;" in parts(memory.sent[2].parsed())[1]
    assert "<script>" not in parts(memory.sent[2].parsed())[1]


def test_the_digest_batch_through_a_transport_is_the_digest_for_each_subscriber() -> None:
    """MessageTemplate.batch through a transport: the digest's headers, bodies with each
    subscriber's name and signed links, dated when it is sent."""
    template = digest_template()
    subscribers = [
        Subscriber("sub-1", "jane@example.org", "Jane <Doe>"),
        Subscriber("李", "li@x.org"),
    ]
    batch = template.batch(subscribers)
    assert batch.category == "daily"
    memory = MemoryTransport()
    assert {r.outcome for r in memory.send(batch)} == {Outcome.SENT}
    for sent, subscriber, person in zip(memory.sent, subscribers, batch.recipients, strict=True):
        via_batch = sent.parsed()
        check_lines(sent.data)
        text, rich = parts(via_batch)
        assert text == filled(batch.text, dict(person.values))
        assert rich == filled(batch.html, {k: html.escape(v) for k, v in person.values.items()})
        assert via_batch["From"] == "The Speaker <digest@speakernews.co.uk>"
        assert via_batch["To"].addresses[0].display_name == subscriber.name
        assert via_batch["Subject"] == "The Daily: news"
        assert via_batch["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert re.fullmatch(
            r"<daily-2023-11-29-0700\.[!-;=?-~]+@speakernews\.co\.uk>", via_batch["Message-ID"]
        )
        assert abs((via_batch["Date"].datetime - datetime.now(UTC)).total_seconds()) < 60
        assert via_batch["List-Id"] == "Zoë's “Daily” <daily.www.speakernews.co.uk>"
        web = re.findall(r"<([^>]+)>", str(via_batch["List-Unsubscribe"]))[0]
        assert verify(SECRET, web.rsplit("/", 1)[1], "unsubscribe", list_name="daily") == (
            subscriber.id
        )


def test_a_message_id_is_made_when_the_recipient_has_none() -> None:
    batch = make_batch(2, recipients=(recipient(1, headers=()), recipient(2, headers=())))
    memory = MemoryTransport()
    memory.send(batch)
    ids = [m.parsed()["Message-ID"] for m in memory.sent]
    assert all(re.fullmatch(r"<[A-Za-z0-9_-]{24}@speakernews\.co\.uk>", i) for i in ids)
    assert len(set(ids)) == 2


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"address": "jane@example.org\r\nBcc: x@y.org"}, "To: a line break"),
        ({"address": "not an address"}, "To: not a usable email address"),
        ({"headers": (("X-Note", "a\nBcc: x@y.org"),)}, "X-Note: a line break"),
        ({"headers": (("X-Note", "=?utf-8?q?=0A?="),)}, "X-Note: an encoded word"),
        ({"headers": (("Bcc", "x@y.org"),)}, "Bcc: written by the transport itself"),
        ({"headers": (("Bad Name", "x"),)}, "not a header field name"),
        ({"headers": (("List-Id", "x <y>"),)}, "List-Id: given twice"),
        ({"headers": (("X-Note", "a"), ("x-note", "b"))}, "x-note: given twice"),
        ({"values": {NAME: " Jane"}}, f"has no value for {UNSUBSCRIBE_URL}"),
        ({"values": {NAME: "\ud800", UNSUBSCRIBE_URL: "u", PREFERENCES_URL: "p"}}, "not text"),
    ],
)
def test_a_recipient_that_cannot_be_sent_safely_fails_alone(
    bad: dict[str, Any], error: str
) -> None:
    batch = make_batch(3, recipients=(recipient(0), recipient(1, **bad), recipient(2)))
    memory = MemoryTransport()
    results = memory.send(batch)
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.FAILED, Outcome.SENT]
    assert error in results[1].detail
    assert [m.key for m in memory.sent] == ["sub-0", "sub-2"]
    assert not any(b"Bcc:" in m.data for m in memory.sent)


def test_a_name_with_line_breaks_is_cleaned_not_obeyed() -> None:
    memory = MemoryTransport()
    memory.send(make_batch(recipients=(recipient(1, "Jane\r\nBcc: x@y.org"),)))
    message = memory.sent[0].parsed()
    assert message["To"].addresses[0].display_name == "Jane Bcc: x@y.org"
    assert "Bcc" not in message


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"sender": "digest@speakernews.co.uk\r\nBcc: x@y.org"}, "From: a line break"),
        ({"sender": "nobody"}, "From: not a usable email address"),
        ({"reply_to": "not an address"}, "Reply-To: not a usable"),
        ({"headers": (("To", "x@y.org"),)}, "To: written by the transport itself"),
        ({"headers": (("List-Id", ""),)}, "List-Id: an empty value"),
        ({"headers": (("X-Long", "x" * 991),)}, "a word too long for one line"),
    ],
)
def test_a_batch_whose_shared_parts_are_unsafe_is_refused_before_sending(
    changes: dict[str, Any], error: str
) -> None:
    memory = MemoryTransport()
    with pytest.raises(HeaderError, match=re.escape(error)):
        memory.send(make_batch(**changes))
    assert memory.sent == []


def test_non_ascii_extra_headers_are_encoded_and_long_ones_folded() -> None:
    long_url = "https://app.example.org/unsubscribe/daily/" + "t" * 120
    batch = make_batch(
        1,
        headers=(
            ("List-Id", '"Zoë\'s \\"Daily\\"" <daily.example.org>'),
            ("X-Note", ("café " * 30).strip()),
        ),
        recipients=(
            recipient(1, headers=(("List-Unsubscribe", f"<{long_url}>, <mailto:u@example.org>"),)),
        ),
    )
    memory = MemoryTransport()
    memory.send(batch)
    raw, message = memory.sent[0].data, memory.sent[0].parsed()
    check_lines(raw)
    assert raw.isascii()
    assert message["List-Id"] == 'Zoë\'s "Daily" <daily.example.org>'
    assert b"<daily.example.org>" in raw  # the id itself is never encoded
    assert message["X-Note"] == ("café " * 30).strip()
    assert message["List-Unsubscribe"] == f"<{long_url}>, <mailto:u@example.org>"
    assert f"List-Unsubscribe: <{long_url}>,\r\n <mailto:u@example.org>".encode() in raw


def test_the_memory_transport_reports_what_it_is_told_to() -> None:
    batch = make_batch(3)
    memory = MemoryTransport(outcomes={"reader1@example.org": Outcome.DEFERRED})
    results = memory.send(batch)
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.DEFERRED, Outcome.SENT]
    assert [r.provider_id for r in results] == ["memory-1", "", "memory-2"]
    assert memory.batches == [batch]


def test_a_batch_template_shows_no_body_in_its_repr() -> None:
    template = BatchTemplate.build(make_batch())
    assert repr(template) == "<BatchTemplate from digest@speakernews.co.uk>"


def test_the_batches_of_one_send_share_their_encoded_body_and_others_do_not() -> None:
    first, second = make_batch(2), make_batch(3)
    other = make_batch(2, html=HTML.replace("<p>", "<p class=x>", 1))
    assert BatchTemplate.build(first).body is BatchTemplate.build(second).body
    assert BatchTemplate.build(other).body is not BatchTemplate.build(first).body
    made = [parse(BatchTemplate.build(b).personalise(b.recipients[0])) for b in (first, other)]
    assert [parts(message)[1].count("class=x") for message in made] == [0, 1]


# --- the outbox -----------------------------------------------------------------------------


def test_the_outbox_writes_one_parseable_eml_file_per_recipient(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "outbox"
    batch = make_batch(len(NAMES))
    with OutboxTransport(folder) as outbox:
        results = outbox.send(batch)
        again = outbox.send(batch)
    assert {r.outcome for r in results + again} == {Outcome.SENT}
    files = sorted(folder.iterdir())
    assert len(files) == 2 * len(NAMES)
    assert sorted(r.provider_id for r in results + again) == [f.name for f in files]
    assert all(re.fullmatch(r"\d{8}T\d{12}Z-sub-\d-[0-9a-f]{12}\.eml", f.name) for f in files)
    for result, person in zip(results, batch.recipients, strict=True):
        path = folder / result.provider_id
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # signed links inside: owner only
        check_lines(path.read_bytes())
        check_message(parse(path.read_bytes()), batch, person)


def test_outbox_file_names_are_safe_whatever_the_key(tmp_path: Path) -> None:
    batch = make_batch(recipients=(recipient(1, key="../../etc/passwd x"), recipient(2, key="")))
    results = OutboxTransport(tmp_path).send(batch)
    names = [r.provider_id for r in results]
    assert re.fullmatch(r"\d{8}T\d{12}Z-______etc_passwd_x-[0-9a-f]{12}\.eml", names[0])
    assert re.fullmatch(r"\d{8}T\d{12}Z---[0-9a-f]{12}\.eml", names[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


@pytest.mark.parametrize(
    ("error", "name"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "ENOSPC"),
        (OSError(errno.EROFS, "Read-only file system"), "EROFS"),
        (PermissionError(errno.EACCES, "Permission denied"), "EACCES"),
    ],
)
def test_an_outbox_that_cannot_write_stops_the_batch_and_names_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, name: str
) -> None:
    """The write error is this machine's, not the second reader's: the batch stops there (the
    third is not even tried), LocalWriteError names the errno and the folder, and carries what
    was sent; no temporary file is left behind. (As root, a folder made read-only with chmod
    does not stop a write, so the error is injected here; tests/cli/test_send.py fills a real
    tmpfs.)"""
    real_replace = Path.replace
    tried: list[str] = []

    def failing(self: Path, target: Path) -> Path:
        tried.append(target.name)
        if "-sub-1-" in target.name:
            raise error
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", failing)
    with pytest.raises(LocalWriteError) as raised:
        OutboxTransport(tmp_path).send(make_batch(3))
    assert str(raised.value) == f"outbox: cannot write to {tmp_path}: {name} ({error.strerror})"
    results = raised.value.results
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.DEFERRED, Outcome.DEFERRED]
    assert [r.key for r in results] == ["sub-0", "sub-1", "sub-2"]
    assert results[2].detail == str(raised.value)
    assert len(tried) == 2  # nothing more is tried after the first error
    assert [p.name for p in tmp_path.iterdir()] == [results[0].provider_id]


def test_an_outbox_folder_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("a file where the folder should be")
    with pytest.raises(LocalWriteError, match=r"cannot write to .*/var/outbox: (ENOTDIR|EEXIST)"):
        OutboxTransport(tmp_path / "var" / "outbox").send(make_batch(1))


def test_the_outbox_refuses_an_unsafe_recipient_alone(tmp_path: Path) -> None:
    batch = make_batch(recipients=(recipient(1, address="x@y.org\nBcc: z@y.org"), recipient(2)))
    results = OutboxTransport(tmp_path).send(batch)
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.SENT]
    assert len(list(tmp_path.iterdir())) == 1


# --- settings and choosing a transport ------------------------------------------------------


def test_delivery_settings_defaults_and_every_field_described() -> None:
    settings = DeliverySettings()
    assert (settings.transport, settings.outbox_folder) == ("outbox", "var/outbox")
    assert settings.smtp.security == "starttls"
    assert settings.smtp.password_env == "SPEAKERFEED_SMTP_PASSWORD"
    assert settings.sendgrid.api_url == "https://api.sendgrid.com"
    assert settings.sendgrid.api_key_env == "SPEAKERFEED_SENDGRID_API_KEY"
    for model in (DeliverySettings, type(settings.smtp), type(settings.sendgrid)):
        assert model.model_config.get("extra") == "forbid"
        assert model.model_config.get("strict") is True
        assert model.model_config.get("frozen") is True
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"transport": "carrier-pigeon"}, "transport"),
        ({"smtp": {"port": "25"}}, "smtp.port"),
        ({"smtp": {"pasword_env": "X"}}, "pasword_env"),
        ({"smtp": {"password": "hunter2"}}, "password"),
        ({"smtp": {"password_env": "not a name"}}, "name of an environment variable"),
        ({"smtp": {"security": "ssl"}}, "smtp.security"),
        ({"smtp": {"pool_size": 0}}, "pool_size"),
        (
            {"smtp": {"username": "u", "security": "none", "host": "mail.example.org"}},
            "unencrypted",
        ),
        ({"sendgrid": {"api_url": "http://api.sendgrid.com"}}, "expected https"),
        ({"sendgrid": {"api_url": "ftp://x.org"}}, "expected an https:// URL"),
        ({"sendgrid": {"api_key": "SG.x.y"}}, "api_key"),
        ({"sendgrid": {"max_attempts": 0}}, "max_attempts"),
    ],
)
def test_delivery_settings_refuse_what_would_silently_misbehave(
    data: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValidationError, match=error):
        DeliverySettings.model_validate(data)


def test_delivery_settings_accept_what_config_toml_gives() -> None:
    settings = DeliverySettings.model_validate(
        {
            "transport": "smtp",
            "smtp": {"host": "127.0.0.1", "port": 2525, "security": "none", "username": "u",
                     "timeout_seconds": 10, "pool_size": 2},
            "sendgrid": {"api_url": "http://127.0.0.1:8080/", "backoff_cap_seconds": 5},
        }
    )  # fmt: skip
    assert settings.smtp.timeout_seconds == 10.0  # an int where a float is expected is fine
    assert settings.sendgrid.api_url == "http://127.0.0.1:8080"


def test_every_transport_name_has_a_maker() -> None:
    assert set(TRANSPORTS) == set(typing.get_args(TransportName))


def test_transports_are_made_by_name(tmp_path: Path) -> None:
    environ = {"SPEAKERFEED_SENDGRID_API_KEY": "key-1", "SMTP_SECRET": "pw"}
    outbox = transport_from_settings(DeliverySettings(), tmp_path, environ={})
    assert isinstance(outbox, OutboxTransport)
    assert outbox.folder == tmp_path / "var" / "outbox"
    made = {
        name: transport_from_settings(
            DeliverySettings.model_validate(
                {"transport": name, "smtp": {"username": "u", "password_env": "SMTP_SECRET"}}
            ),
            tmp_path,
            environ=environ,
        )
        for name in TRANSPORTS
    }
    assert {name: transport.name for name, transport in made.items()} == {
        name: name for name in TRANSPORTS
    }
    assert isinstance(made["memory"], MemoryTransport)
    assert "key-1" not in repr(made["sendgrid"])


SENDGRID_KEY = "SPEAKERFEED_SENDGRID_API_KEY"


@pytest.mark.parametrize(
    ("data", "variable", "environ"),
    [
        ({"transport": "sendgrid"}, SENDGRID_KEY, {}),
        ({"transport": "sendgrid"}, SENDGRID_KEY, {SENDGRID_KEY: " "}),
        ({"transport": "sendgrid", "sendgrid": {"api_key_env": "MY_KEY"}}, "MY_KEY", {}),
        ({"transport": "smtp", "smtp": {"username": "u"}}, "SPEAKERFEED_SMTP_PASSWORD", {}),
    ],
)
def test_a_missing_secret_names_its_environment_variable(
    data: dict[str, Any], variable: str, environ: dict[str, str], tmp_path: Path
) -> None:
    settings = DeliverySettings.model_validate(data)
    with pytest.raises(TransportError, match=rf"set the environment variable {variable} "):
        transport_from_settings(settings, tmp_path, environ=environ)


def test_an_smtp_ca_file_that_cannot_be_read_is_reported(tmp_path: Path) -> None:
    settings = DeliverySettings.model_validate({"transport": "smtp", "smtp": {"ca_file": "ca.pem"}})
    with pytest.raises(TransportError, match=r"delivery\.smtp\.ca_file: cannot load .*ca\.pem"):
        transport_from_settings(settings, tmp_path, environ={})


def test_results_keep_the_batch_order_and_keys() -> None:
    batch = make_batch(4)
    results = MemoryTransport().send(batch)
    assert all(isinstance(r, DeliveryResult) for r in results)
    assert [r.key for r in results] == [p.key for p in batch.recipients]


def test_an_empty_batch_sends_nothing(tmp_path: Path) -> None:
    assert MemoryTransport().send(make_batch(recipients=())) == []
    assert OutboxTransport(tmp_path / "outbox").send(make_batch(recipients=())) == []
    assert list((tmp_path / "outbox").iterdir()) == []


def test_a_transport_whose_open_fails_is_closed_before_the_error_goes_on() -> None:
    """``with transport:`` never reaches ``__exit__`` when ``open`` raises: ``__enter__``
    closes it itself, so what ``open`` took before it failed is released."""
    calls: list[str] = []

    class HalfOpen(MemoryTransport):
        def open(self) -> None:
            calls.append("open")
            raise TransportError("the second connection was refused")

        def close(self) -> None:
            calls.append("close")

    with pytest.raises(TransportError, match="second connection"), HalfOpen():
        calls.append("body")
    assert calls == ["open", "close"]
