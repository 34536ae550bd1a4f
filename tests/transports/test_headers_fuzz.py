"""Fuzz targets for header checks (speakerfeed.mail.headers and .fields): whatever text a value
holds (CR, LF, NUL, encoded words, thousands of characters, any script), it is either refused with
a HeaderError naming the field, or written as lines that Python's own email parser reads back as
that one header with the same value: never a second header, never another exception.

Bounded in the test command (see tests/support/fuzz.py); SPEAKERFEED_FUZZ_EXAMPLES runs longer.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from speakerfeed.errors import HeaderError
from speakerfeed.mail.fields import MAX_LINE_HARD, field_lines, field_value, mailbox
from speakerfeed.mail.headers import (
    MAX_LINE,
    address_header,
    safe_address,
    safe_header_value,
    unstructured,
)
from tests.support.fuzz import fuzzing

# Pieces that break headers: line breaks of every kind, NUL, encoded words (one hiding a line
# break), quotes and angle brackets, right-to-left text, an emoji, and long runs.
PIECES = [
    "\r",
    "\n",
    "\r\n",
    "\r\nBcc: victim@example.org",
    "\x00",
    "\x0b",
    "\x85",
    "\u2028",
    "=?utf-8?q?=0A?=",
    "=?utf-8?b?DQpCY2M6IHhAeS56?=",
    "=?",
    '"',
    "\\",
    "<",
    ">",
    "<list.speakernews.co.uk>",
    "@",
    ",",
    ";",
    ":",
    "(comment)",
    " ",
    "  ",
    "\t",
    "é",
    "شبكة",
    "\u202e",
    "\U0001f600",
    "\ud800",
    "x" * 100,
    "y" * 1200,
    "word " * 40,
]
values = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=12)), max_size=8).map("".join)
FIELD_NAMES = ["List-Id", "X-Campaign", "List-Unsubscribe", "Subject", "Bcc", "X-\u00e9", "", "A:B"]


def read_back(lines: str) -> EmailMessage:
    """The header lines as Python's email parser reads them (in a message with an empty body)."""
    assert lines.endswith("\r\n") and lines.isascii()
    assert all(len(line) <= MAX_LINE_HARD for line in lines.split("\r\n"))
    message = email.message_from_string(lines + "\r\n", policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def display_name(lines: str) -> str:
    """The display name of a "Name <address>" header, decoded as RFC 2047 (6.2) says: the space
    between two encoded words is no part of the text. (Python's address parser keeps it.)"""
    value = lines.split(": ", 1)[1].replace("\r\n", "")
    phrase = value.rsplit(" <", 1)[0] if value.endswith(">") and " <" in value else ""
    if phrase.startswith("=?"):
        return str(make_header(decode_header(phrase)))
    parsed = email.message_from_string(lines + "\r\n", policy=email.policy.default)
    return str(parsed["From"].addresses[0].display_name)


def check_refusal(message: str, field: str) -> None:
    """A HeaderError's message: names the field, on one line (values are quoted, cut short)."""
    assert message.startswith(field + ": "), message
    assert "\n" not in message and "\r" not in message
    assert len(message) < 300, message


def _unfolded(value: str) -> str:
    return " ".join(value.split()) if value.split() else value


@fuzzing()
@given(st.sampled_from(FIELD_NAMES), values)
@example("X-Campaign", "spring\r\nBcc: victim@example.org")
@example("List-Id", "Café news =?utf-8?q?=0A?= <list.example>")
@example("List-Id", "é<list.speakernews.co.uk>")
def test_fuzz_extra_header_fields_are_refused_or_read_back(name: str, value: str) -> None:
    try:
        lines = field_lines(name, value)
    except HeaderError as exc:
        refusal = str(exc)
        check_refusal(refusal, name[:40] or "(empty)")
        return
    message = read_back(lines)
    assert message.keys() == [name]  # one header, no smuggled second one
    # What the parser reads is the value (the display name of "name <id>" loses its quotes).
    # A "<id>" part is written after one space, as in "Café news <list.example>".
    expected = {_unfolded(v) for v in (value, value.replace('"', ""))}
    expected |= {re.sub(r" *<", " <", v) for v in expected}
    assert _unfolded(str(message[name])) in expected
    # The one-line form (for JSON APIs) says the same.
    assert field_value(name, value) == lines[len(name) + 2 : -2].replace("\r\n", "")


@fuzzing()
@given(values)
@example("Budget =?utf-8?q?=0A?=Bcc: x@y.z\r\n day")
def test_fuzz_subjects_are_cleaned_and_read_back(title: str) -> None:
    cleaned = safe_header_value(title, field="Subject", clean=True)
    assert "=?" not in cleaned and cleaned == cleaned.strip()
    if not cleaned:
        return
    lines = unstructured("Subject", cleaned)
    assert all(len(line) <= MAX_LINE for line in lines.split("\r\n")) or cleaned.isascii()
    message = read_back(lines)
    assert message.keys() == ["Subject"]
    assert str(message["Subject"]) == cleaned


ADDRESSES = [
    "digest@speakernews.co.uk",
    "a.b+c@mail.example.org",
    "no-at-sign",
    "a@b",
    "a@@b.example",
    "x@y.z\r\nBcc: victim@example.org",
    '"quoted"@example.org',
    "user@[127.0.0.1]",
    "é@example.org",
    "a@" + "b" * 250 + ".example",
    "=?utf-8?q?a?=@example.org",
]
mailboxes = st.tuples(values, st.one_of(st.sampled_from(ADDRESSES), values)).map(
    lambda parts: f"{parts[0]} <{parts[1]}>" if parts[0] else parts[1]
)


@fuzzing()
@given(mailboxes)
@example('"Speaker, The" <digest@speakernews.co.uk>')
@example("x" * 100 + " <digest@speakernews.co.uk>")  # too long for a line: encoded words
@example("The Speaker\r\nBcc: victim@example.org <digest@speakernews.co.uk>")
def test_fuzz_configured_mailboxes_are_refused_or_read_back(value: str) -> None:
    try:
        name, address = mailbox(value, field="From")
    except HeaderError as exc:
        refusal = str(exc)
        check_refusal(refusal, "From")
        return
    lines = address_header("From", name, address)
    message = read_back(lines)
    assert message.keys() == ["From"]
    (parsed,) = message["From"].addresses
    assert parsed.addr_spec == address
    assert _unfolded(display_name(lines)) == _unfolded(name)


@fuzzing()
@given(st.one_of(st.sampled_from(ADDRESSES), values))
def test_fuzz_addresses_are_refused_or_plain(value: str) -> None:
    try:
        address = safe_address(value, field="To")
    except HeaderError as exc:
        refusal = str(exc)
        check_refusal(refusal, "To")
        return
    assert address == value and address.isascii() and address.isprintable()
    message = read_back(address_header("To", "", address))
    assert [a.addr_spec for a in message["To"].addresses] == [address]


def test_a_refused_value_is_quoted_cut_short_after_escaping() -> None:
    # Was 80 characters before quoting: up to 800 once each was escaped (\U0001019d).
    value = "\r" + "\x1f\U0001019d" * 60
    with pytest.raises(HeaderError) as refused:
        mailbox(value, field="From")
    check_refusal(str(refused.value), "From")
    assert str(refused.value).startswith("From: a line break character (U+000D) in '\\r\\x1f")
    assert str(refused.value).endswith("...")
