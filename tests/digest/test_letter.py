"""Per-subscriber MIME messages: headers, tokens and bodies, checked by parsing the bytes back."""

from __future__ import annotations

import base64
import email.header
import email.parser
import email.policy
import html
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speakerfeed.config import ListSettings, Settings
from speakerfeed.digest.letter import MessageTemplate
from speakerfeed.errors import HeaderError, MessageError
from speakerfeed.mail.fields import display_name as fast_display_name
from speakerfeed.mail.headers import safe_address, safe_header_value
from speakerfeed.mail.placeholders import NAME, PREFERENCES_URL, UNSUBSCRIBE_URL
from speakerfeed.mail.tokens import sign, verify
from speakerfeed.models import Digest, RenderedDigest, Subscriber
from tests.support.letters import personalise
from tests.support.project import project_settings

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2023, 11, 29, 7, 0, 5, tzinfo=UTC)
EMAIL = {
    "from_address": "The Speaker <digest@speakernews.co.uk>",
    "reply_to": "Letters <letters@speakernews.co.uk>",
    "app_url": "https://app.speakernews.co.uk",
    "unsubscribe_mailto": "unsubscribe@speakernews.co.uk",
}
SETTINGS = project_settings(email=EMAIL, lists=[{"name": "daily", "title": "The Daily"}])
DAILY = SETTINGS.lists[0]
HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "Reply-To",
    "List-Id",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
]
HTML = (
    "<!doctype html><html><body><p>Hello{name},</p>\n"
    "<p>Café news – “quoted” &amp; more. a=b</p>\n"
    '<p><a href="{unsubscribe}">Unsubscribe</a> · <a href="{preferences}">Preferences</a></p>\n'
    "</body></html>\n"
)
TEXT = "Hello{name},\n\nCafé news – “quoted” & more. a=b\n\nUnsubscribe: {unsubscribe}\n"
TEXT += "Preferences: {preferences}\n"
INJECTIONS = ["\r\nBcc: x@y", "\nBcc: x@y", "=?UTF-8?Q?=0A?=Bcc: x@y", "\x0bBcc: x@y",
              "\x85Bcc: x@y", "\u2028Bcc: x@y", "\rBcc: x@y", "\u2029Bcc: x@y"]  # fmt: skip
LINE_BREAKS = ["\r", "\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
PARSER = email.parser.BytesParser(policy=email.policy.default)


def fill(template: str, name: str = NAME, unsubscribe: str = UNSUBSCRIBE_URL) -> str:
    return template.format(name=name, unsubscribe=unsubscribe, preferences=PREFERENCES_URL)


def rendered(
    subject: str = "The Daily: Students march on Parliament",
    html_body: str = fill(HTML),
    text_body: str = fill(TEXT),
    list_name: str = "daily",
) -> RenderedDigest:
    digest = Digest("daily-2023-11-29-0700", list_name, "The Daily", (), NOW)
    return RenderedDigest(digest, subject, "Today's news", html_body, text_body, "https://x.org/")


def template(
    digest: RenderedDigest | None = None,
    config: Settings = SETTINGS,
    list_settings: ListSettings = DAILY,
) -> MessageTemplate:
    return MessageTemplate.build(digest or rendered(), config, list_settings, SECRET)


def message(
    subscriber: Subscriber | None = None, built: MessageTemplate | None = None
) -> tuple[bytes, EmailMessage]:
    subscriber = subscriber or Subscriber("sub-1", "jane@example.org", "Jane Doe")
    raw = personalise(built or template(), subscriber, now=NOW)
    parsed = PARSER.parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return raw, parsed


def parts(parsed: EmailMessage) -> tuple[str, str]:
    plain, rich = parsed.iter_parts()
    assert isinstance(plain, EmailMessage)
    assert isinstance(rich, EmailMessage)
    return plain.get_content().replace("\r\n", "\n"), rich.get_content().replace("\r\n", "\n")


def display_name(parsed: EmailMessage) -> str:
    """The To header's display name. A long one is several encoded words, and RFC 2047 6.2 says
    the whitespace between them is ignored, but Python 3.11's policy.default parser keeps it in
    address headers (CPython gh-128110), so those are decoded with the older email.header API,
    which follows the RFC."""
    raw = dict(parsed.raw_items())["To"]
    if "=?" not in raw:
        name = parsed["To"].addresses[0].display_name
        assert isinstance(name, str)
        return name
    decoded = str(email.header.make_header(email.header.decode_header(raw.replace("\r\n", ""))))
    return decoded.rpartition(" <")[0]


def links(parsed: EmailMessage) -> list[str]:
    return re.findall(r"<([^>]+)>", str(parsed["List-Unsubscribe"]))


def token_of(url: str) -> str:
    return re.split(r"/|=unsubscribe%20", url)[-1]


def check_lines(raw: bytes) -> None:
    """CRLF line endings only (\\r\\n, what SMTP wants, never a bare \\n or \\r); header lines
    within 78 characters unless they hold a URL or a msg-id (which cannot be folded), and every
    line within 998; body lines within 76 (quoted-printable)."""
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    head, _, body = raw.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        unfoldable = re.search(rb"<https?://|<mailto:|^Message-ID: ", line)
        assert len(line) <= (998 if unfoldable else 78), line
    for line in body.split(b"\r\n"):
        assert len(line) <= 76, line
        # A space or tab ending a line may be lost in transport: quoted-printable encodes it.
        assert not line.endswith((b" ", b"\t")), line


# --- the message ---------------------------------------------------------------------------


def test_parts_are_text_then_html_utf8_quoted_printable() -> None:
    _, parsed = message()
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    for part in parsed.iter_parts():
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert not parsed.defects
    assert all(not part.defects for part in parsed.iter_parts())


def test_every_header_in_order_with_its_value() -> None:
    raw, parsed = message()
    assert list(parsed.keys()) == HEADERS
    assert parsed["From"] == "The Speaker <digest@speakernews.co.uk>"
    assert parsed["To"] == "Jane Doe <jane@example.org>"
    assert parsed["Reply-To"] == "Letters <letters@speakernews.co.uk>"
    assert parsed["Subject"] == "The Daily: Students march on Parliament"
    assert parsed["Date"].datetime == NOW
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["List-Id"] == '"The Daily" <daily.www.speakernews.co.uk>'
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    check_lines(raw)


def test_list_unsubscribe_links_carry_tokens_that_verify() -> None:
    _, parsed = message()
    web, mailto = links(parsed)
    assert web.startswith("https://app.speakernews.co.uk/unsubscribe/")
    assert mailto.startswith("mailto:unsubscribe@speakernews.co.uk?subject=unsubscribe%20")
    assert token_of(web) == token_of(mailto)
    assert verify(SECRET, token_of(web), "unsubscribe", list_name="daily") == "sub-1"
    assert verify(SECRET, token_of(web), "preferences", list_name="daily") is None


def test_without_mailto_or_reply_to_those_are_left_out() -> None:
    bare = project_settings(
        email={"from_address": "digest@speakernews.co.uk"}, lists=[{"name": "daily", "title": "D"}]
    )
    raw, parsed = message(built=template(config=bare, list_settings=bare.lists[0]))
    assert "Reply-To" not in parsed
    assert parsed["From"] == "digest@speakernews.co.uk"
    (web,) = links(parsed)
    assert web.startswith("http://127.0.0.1:8080/unsubscribe/")  # app_url: where serve listens
    assert b"mailto:" not in raw


def test_bodies_hold_the_name_and_signed_urls() -> None:
    _, parsed = message()
    text, rich = parts(parsed)
    unsubscribe = links(parsed)[0]
    preferences = re.findall(r"Preferences: (\S+)", text)[0]
    assert preferences.startswith("https://app.speakernews.co.uk/preferences/")
    assert verify(SECRET, token_of(preferences), "preferences", list_name="daily") == "sub-1"
    assert verify(SECRET, token_of(preferences), "unsubscribe", list_name="daily") is None
    assert text == fill(TEXT, " Jane Doe", unsubscribe).replace(PREFERENCES_URL, preferences)
    assert rich == fill(HTML, " Jane Doe", unsubscribe).replace(PREFERENCES_URL, preferences)


def test_no_name_leaves_no_space_before_the_comma() -> None:
    _, parsed = message(Subscriber("sub-2", "anon@example.org"))
    text, rich = parts(parsed)
    assert text.startswith("Hello,\n")
    assert "<p>Hello,</p>" in rich
    assert parsed["To"] == "anon@example.org"


def test_html_special_characters_in_a_url_base_are_escaped_in_html_only() -> None:
    config = project_settings(
        email={**EMAIL, "app_url": "https://app.speakernews.co.uk/r?a=1&b=2"},
        lists=[{"name": "daily", "title": "The Daily"}],
    )
    _, parsed = message(built=template(config=config, list_settings=config.lists[0]))
    text, rich = parts(parsed)
    assert "https://app.speakernews.co.uk/r?a=1&b=2/unsubscribe/" in text
    assert 'href="https://app.speakernews.co.uk/r?a=1&amp;b=2/unsubscribe/' in rich
    assert "a=1&b=2/" not in rich


def test_non_ascii_sender_and_list_title_are_encoded() -> None:
    config = project_settings(
        email={"from_address": "Le Journal de Zoë <digest@speakernews.co.uk>"},
        lists=[{"name": "daily", "title": "Zoë's “Daily”"}],
    )
    raw, parsed = message(built=template(config=config, list_settings=config.lists[0]))
    assert parsed["From"].addresses[0].display_name == "Le Journal de Zoë"
    assert parsed["List-Id"] == "Zoë's “Daily” <daily.www.speakernews.co.uk>"
    assert raw.isascii()
    check_lines(raw)


def test_an_app_url_that_cannot_go_into_a_header_is_refused() -> None:
    config = project_settings(
        email={**EMAIL, "app_url": "https://app.speakernews.co.uk/zoë"},
        lists=[{"name": "daily", "title": "The Daily"}],
    )
    with pytest.raises(MessageError, match=r"email\.app_url: .* ASCII URL"):
        template(config=config, list_settings=config.lists[0])
    config = project_settings(
        email={**EMAIL, "app_url": "https://app.speakernews.co.uk/" + "a" * 600},
        lists=[{"name": "daily", "title": "The Daily"}],
    )
    with pytest.raises(MessageError, match=r"email\.app_url is over 600 characters"):
        template(config=config, list_settings=config.lists[0])
    # The longest id under the longest accepted app_url still fits in a header line.
    config = project_settings(
        email={**EMAIL, "app_url": "https://a.org/" + "a" * 586},
        lists=[{"name": "daily", "title": "The Daily"}],
    )
    built = template(config=config, list_settings=config.lists[0])
    check_lines(personalise(built, Subscriber("李" * 66, "jane@example.org")))


def test_message_ids_are_unique_and_well_formed_for_any_subscriber_id() -> None:
    built = template()
    ids = ["sub-1", "a.b..c.", "x y<z>@w", "李雷", "=?x?=", "~", "0" * 190]
    seen = set()
    for number in range(600):
        subscriber_id = ids[number % len(ids)] + ("" if number < len(ids) else str(number))
        raw, parsed = message(Subscriber(subscriber_id, f"r{number}@example.org"), built)
        check_lines(raw)
        msgid = parsed["Message-ID"]
        assert re.fullmatch(r"<daily-2023-11-29-0700\.[!-;=?-~]+@speakernews\.co\.uk>", msgid)
        assert ".." not in msgid
        seen.add(msgid)
    assert len(seen) == 600
    # The same subscriber twice (a retry) still gets two ids.
    first = message(Subscriber("sub-1", "jane@example.org"), built)[1]["Message-ID"]
    assert first != message(Subscriber("sub-1", "jane@example.org"), built)[1]["Message-ID"]


def test_a_subscriber_id_too_long_for_a_link_is_refused() -> None:
    with pytest.raises(HeaderError, match="List-Unsubscribe: subscriber id"):
        personalise(template(), Subscriber("x" * 201, "jane@example.org"))
    with pytest.raises(HeaderError, match="subscriber id"):
        personalise(template(), Subscriber("", "jane@example.org"))


def test_the_digest_must_be_for_the_list_and_the_key_long_enough() -> None:
    with pytest.raises(MessageError, match="for list 'weekly'"):
        template(rendered(list_name="weekly"))
    with pytest.raises(MessageError, match="SPEAKERFEED_SECRET_KEY"):
        MessageTemplate.build(rendered(), SETTINGS, DAILY, b"short")


# --- untrusted values ------------------------------------------------------------------------


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("where", ["subject", "name", "list title"])
def test_injection_adds_no_header(payload: str, where: str) -> None:
    subject = f"Daily: {payload} news" if where == "subject" else "Daily news"
    name = f"Jane {payload}" if where == "name" else "Jane"
    list_settings = DAILY.model_copy(update={"title": f"Daily {payload}"})  # skips validation
    built = template(
        rendered(subject), list_settings=list_settings if where == "list title" else DAILY
    )
    raw, parsed = message(Subscriber("sub-1", "jane@example.org", name), built)
    assert list(parsed.keys()) == HEADERS
    assert not re.search(rb"(^|\n)Bcc:", raw, re.IGNORECASE)
    assert all(m.startswith(b"=?utf-8?b?") for m in re.findall(rb"=\?[^?]*\?.", raw))
    for header in ("Subject", "To", "List-Id"):
        value = str(parsed[header])
        assert not any(mark in value for mark in LINE_BREAKS)
        assert "=?" not in value
    check_lines(raw)


def test_subject_cleaning_keeps_the_words() -> None:
    built = template(rendered("Daily:\r\n  Bcc: x@y\u2028and =?UTF-8?Q?=0A?= more\x00"))
    _, parsed = message(built=built)
    assert parsed["Subject"] == "Daily: Bcc: x@y and = ?UTF-8?Q?=0A?= more"


@pytest.mark.parametrize(
    "address",
    [*(f"jane{mark}@example.org" for mark in LINE_BREAKS), "jane@example.org\r\nBcc: x@y",
     "=?UTF-8?Q?=0A?=@example.org", "Jane <jane@example.org>", "a@b.org, c@d.org", "jane",
     "jane@localhost", "zoë@example.org", "jane @example.org", "(c)jane@example.org", ""],
)  # fmt: skip
def test_a_subscriber_address_that_is_not_plain_is_refused(address: str) -> None:
    with pytest.raises(HeaderError, match=r"^To: "):
        personalise(template(), Subscriber("sub-1", address, "Jane"))


def test_a_script_in_a_name_comes_out_escaped_in_html() -> None:
    _, parsed = message(Subscriber("sub-1", "jane@example.org", "<script>alert(1)</script>"))
    text, rich = parts(parsed)
    assert "<p>Hello &lt;script&gt;alert(1)&lt;/script&gt;,</p>" in rich
    assert "<script>" not in rich
    assert text.startswith("Hello <script>alert(1)</script>,\n")  # plain text: shown as typed
    assert parsed["To"].addresses[0].display_name == "<script>alert(1)</script>"


@pytest.mark.parametrize(
    "name",
    ["Zoë Ångström", "李雷", 'Jane "JJ" Doe', "Doe, Jane", "J. R. Hartley", "O'Brien",
     "back\\slash", "Дарья " * 30, "x" * 150, "Zoë " + "x" * 90],
)  # fmt: skip
def test_names_round_trip_through_the_to_header(name: str) -> None:
    raw, parsed = message(Subscriber("sub-1", "jane@example.org", name))
    (address,) = parsed["To"].addresses
    assert display_name(parsed) == name.strip()
    assert address.addr_spec == "jane@example.org"
    text, rich = parts(parsed)
    assert text.startswith(f"Hello {name.strip()},\n")
    assert f"<p>Hello {html.escape(name.strip())},</p>" in rich
    check_lines(raw)
    for word in re.findall(rb"=\?[^?]+\?[bq]\?[^?]*\?=", raw):
        assert len(word) <= 75


def test_a_very_long_name_is_cut_and_keeps_lines_short() -> None:
    raw, parsed = message(Subscriber("sub-1", "jane@example.org", "Ω" * 5000))
    assert display_name(parsed) == "Ω" * 200
    check_lines(raw)


def test_long_non_ascii_subject_is_encoded_words_on_short_lines() -> None:
    subject = "The Daily: " + "Ünïcödé headline about a long day at Parliament – " * 6
    raw, parsed = message(built=template(rendered(subject)))
    assert parsed["Subject"] == subject.strip()
    words = re.findall(rb"=\?utf-8\?b\?[^?]*\?=", raw.partition(b"\r\n\r\n")[0])
    assert len(words) > 3
    assert all(len(word) <= 75 for word in words)
    check_lines(raw)


def test_long_ascii_subject_is_folded_at_spaces() -> None:
    subject = "The Daily: " + "a plain headline " * 12
    raw, parsed = message(built=template(rendered(subject)))
    assert parsed["Subject"] == subject.strip()
    assert b"=?" not in raw.partition(b"\r\n\r\n")[0]
    check_lines(raw)


@settings(max_examples=150, deadline=None)
@given(
    name=st.text(max_size=120),
    before=st.text(st.sampled_from("ab =é\t<&"), max_size=160),
    after=st.text(st.sampled_from("cd =ü\t\n"), max_size=40),
)
def test_any_name_anywhere_in_a_line_decodes_exactly(name: str, before: str, after: str) -> None:
    """Quoted-printable soft breaks land wherever the values push a line past 76 characters; the
    decoded parts are always exactly the template with the values in place."""
    body = f"{before}{NAME}{after}\n{before} {UNSUBSCRIBE_URL}{after}{NAME}"
    raw, parsed = message(
        Subscriber("sub-1", "jane@example.org", name),
        template(rendered(html_body=body, text_body=body)),
    )
    clean = safe_header_value(name, field="To", clean=True)
    unsubscribe = links(parsed)[0]
    greeting = f" {clean}" if clean else ""
    text, rich = parts(parsed)
    expected = body.replace(UNSUBSCRIBE_URL, unsubscribe)
    assert text == expected.replace(NAME, greeting)
    assert rich == expected.replace(NAME, html.escape(greeting))
    assert display_name(parsed) == clean
    assert list(parsed.keys()) == HEADERS
    check_lines(raw)


# --- header values ---------------------------------------------------------------------------


@pytest.mark.parametrize("mark", [*LINE_BREAKS, "\x00", "\t", "\ud800"])
def test_safe_header_value_refuses_line_breaks_and_controls(mark: str) -> None:
    with pytest.raises(HeaderError, match=rf"^Subject: a .* \(U\+{ord(mark):04X}\)") as caught:
        safe_header_value(f"one{mark}two", field="Subject")
    assert caught.value.field == "Subject"


def test_safe_header_value_refuses_encoded_words_and_passes_plain_text() -> None:
    with pytest.raises(HeaderError, match=r"^List-Id: an encoded word \(=\?\)"):
        safe_header_value("Daily =?utf-8?q?x?=", field="List-Id")
    assert safe_header_value("Zoë's “Daily” = ? news", field="List-Id") == (
        "Zoë's “Daily” = ? news"
    )


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [
        ("Line one\r\nLine two", "Line one Line two"),
        ("  spaced\t\tout \u2028\u2029 ", "spaced out"),
        ("=?UTF-8?Q?=0A?=Bcc: x@y", "= ?UTF-8?Q?=0A?=Bcc: x@y"),
        ("a=?=?b", "a= ?= ?b"),
        ("nul\x00and\x7fdel\x9f", "nul and del"),
        ("Zoë – “plain”", "Zoë – “plain”"),
    ],
)
def test_safe_header_value_cleans_display_text(value: str, cleaned: str) -> None:
    assert safe_header_value(value, field="Subject", clean=True) == cleaned


def test_safe_address_accepts_plain_addresses() -> None:
    for address in ["jane@example.org", "jane.doe+news@mail.example.co.uk", "o'brien@x-y.org"]:
        assert safe_address(address, field="To") == address


# --- tokens ---------------------------------------------------------------------------------


def token(**overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "secret": SECRET,
        "purpose": "unsubscribe",
        "subscriber_id": "sub-1",
        "list_name": "daily",
    }
    return sign(**(arguments | overrides))


def test_a_token_verifies_for_its_purpose_subscriber_and_list() -> None:
    for purpose in ("unsubscribe", "preferences", "confirm"):
        signed = token(purpose=purpose)
        assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", signed)
        assert verify(SECRET, signed, purpose, list_name="daily") == "sub-1"
    odd = "李雷.with.dots"
    assert verify(SECRET, token(subscriber_id=odd), "unsubscribe", list_name="daily") == odd


def test_the_signer_of_a_send_makes_the_tokens_sign_makes() -> None:
    from speakerfeed.mail.tokens import Signer

    signer = Signer(SECRET, "daily", ("unsubscribe", "preferences"))
    for subscriber_id in ("a", "sub-1", "李雷.with.dots", "x" * 200, "QUJD-_09", "ab", "abc"):
        expected = tuple(
            sign(SECRET, purpose, subscriber_id, "daily")
            for purpose in ("unsubscribe", "preferences")
        )
        assert signer.sign(subscriber_id) == expected


def test_a_tampered_token_fails_whichever_character_changes() -> None:
    signed = token()
    for position in range(len(signed)):
        for replacement in "AB_.":
            if signed[position] == replacement:
                continue
            tampered = signed[:position] + replacement + signed[position + 1 :]
            assert verify(SECRET, tampered, "unsubscribe", list_name="daily") is None


def test_only_the_canonical_base64_spelling_verifies() -> None:
    """The MAC's last character carries 2 bits and 4 that base64 decoders ignore: a token that
    differs only there decodes to the same bytes and must still fail."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    signed = token()
    twin = signed[:-1] + alphabet[alphabet.index(signed[-1]) ^ 1]
    assert base64.urlsafe_b64decode(twin.split(".")[1] + "==") == (
        base64.urlsafe_b64decode(signed.split(".")[1] + "==")
    )
    assert verify(SECRET, twin, "unsubscribe", list_name="daily") is None


def test_truncated_or_extended_tokens_fail() -> None:
    signed = token()
    for length in range(len(signed)):
        assert verify(SECRET, signed[:length], "unsubscribe", list_name="daily") is None
    for extra in ("A", "=", ".", "==", " "):
        assert verify(SECRET, signed + extra, "unsubscribe", list_name="daily") is None
    assert verify(SECRET, "x" * 5000, "unsubscribe", list_name="daily") is None


def test_a_token_fails_for_another_subscriber_list_purpose_or_key() -> None:
    signed = token()
    payload, mac = signed.split(".")
    other = token(subscriber_id="sub-2")
    assert verify(SECRET, other.split(".")[0] + "." + mac, "unsubscribe", list_name="daily") is None
    assert (
        verify(SECRET, payload + "." + other.split(".")[1], "unsubscribe", list_name="daily")
        is None
    )
    assert verify(SECRET, signed, "unsubscribe", list_name="weekly") is None
    assert verify(SECRET, signed, "preferences", list_name="daily") is None
    assert verify(SECRET, signed, "confirm", list_name="daily") is None
    assert (
        verify(b"another secret key, long enough", signed, "unsubscribe", list_name="daily") is None
    )


def test_expiring_tokens_work_until_they_expire_and_others_for_ever() -> None:
    confirm = token(purpose="confirm", expires=1_700_000_000)
    assert verify(SECRET, confirm, "confirm", list_name="daily", now=1_699_999_999) == "sub-1"
    assert verify(SECRET, confirm, "confirm", list_name="daily", now=1_700_000_000) is None
    assert verify(SECRET, confirm, "confirm", list_name="daily") is None  # the real clock: past
    later = token(purpose="confirm", expires=1_700_000_500)
    assert later.split(".")[0] != confirm.split(".")[0]
    assert verify(SECRET, token(), "unsubscribe", list_name="daily", now=4e9) == "sub-1"


def test_bad_arguments_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        sign(b"short", "unsubscribe", "sub-1", "daily")
    with pytest.raises(ValueError, match="unknown token purpose"):
        sign(SECRET, "delete", "sub-1", "daily")
    with pytest.raises(ValueError, match="unknown token purpose"):
        verify(SECRET, token(), "delete", list_name="daily")
    with pytest.raises(ValueError, match="subscriber id"):
        sign(SECRET, "unsubscribe", "", "daily")
    with pytest.raises(ValueError, match="list name"):
        sign(SECRET, "unsubscribe", "sub-1", "dai\0ly")


# --- the digest as a transport Batch --------------------------------------------------------


def test_recipient_carries_the_values_and_headers_of_the_message() -> None:
    built = template()
    (person,) = built.batch([Subscriber("sub-1", "jane@example.org", "  Jane\r\nDoe ")]).recipients
    assert (person.key, person.address, person.name) == ("sub-1", "jane@example.org", "Jane Doe")
    assert person.values[NAME] == " Jane Doe"
    unsubscribe, preferences = person.values[UNSUBSCRIBE_URL], person.values[PREFERENCES_URL]
    assert unsubscribe.startswith("https://app.speakernews.co.uk/unsubscribe/daily/")
    assert preferences.startswith("https://app.speakernews.co.uk/preferences/daily/")
    assert verify(SECRET, token_of(unsubscribe), "unsubscribe", list_name="daily") == "sub-1"
    assert verify(SECRET, token_of(preferences), "preferences", list_name="daily") == "sub-1"
    headers = dict(person.headers)
    assert re.fullmatch(
        r"<daily-2023-11-29-0700\.sub-1\.[\w-]+@speakernews\.co\.uk>", headers["Message-ID"]
    )
    assert headers["List-Unsubscribe"] == (
        f"<{unsubscribe}>, <mailto:unsubscribe@speakernews.co.uk?subject=unsubscribe%20"
        f"{token_of(unsubscribe)}>"
    )
    assert built.batch([Subscriber("sub-2", "x@y.org")]).recipients[0].values[NAME] == ""


def test_batch_holds_the_shared_parts_and_one_recipient_per_subscriber() -> None:
    built = template()
    subscribers = [Subscriber(f"s{n}", f"r{n}@example.org") for n in range(3)]
    batch = built.batch(subscribers)
    assert batch.sender == "The Speaker <digest@speakernews.co.uk>"
    assert batch.reply_to == "Letters <letters@speakernews.co.uk>"
    assert batch.subject == "The Daily: Students march on Parliament"
    assert (batch.text, batch.html) == (fill(TEXT), fill(HTML))
    assert batch.headers == (
        ("List-Id", '"The Daily" <daily.www.speakernews.co.uk>'),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )
    assert batch.category == "daily"
    assert [r.key for r in batch.recipients] == ["s0", "s1", "s2"]
    with pytest.raises(HeaderError, match="subscriber id"):
        built.batch([Subscriber("x" * 201, "x@y.org")])


def test_an_app_url_with_an_encoded_word_start_is_refused() -> None:
    config = project_settings(
        email={**EMAIL, "app_url": "https://app.speakernews.co.uk/r?a=?b"},
        lists=[{"name": "daily", "title": "The Daily"}],
    )
    with pytest.raises(MessageError, match=r"email\.app_url: .*'=\?'"):
        template(config=config, list_settings=config.lists[0])


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=250))
def test_the_fast_display_name_is_the_cleaned_one(name: str) -> None:
    """fields.display_name skips the cleaning when there is nothing to clean: the same text."""
    expected = safe_header_value(name, field="To", clean=True)[:200].rstrip()
    assert fast_display_name(name, 200) == expected
