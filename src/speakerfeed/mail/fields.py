"""Header fields given as (name, value) pairs, and configured mailboxes: checked, then encoded.

A transport Batch carries extra headers (List-Id, List-Unsubscribe, Message-ID, Auto-Submitted…)
as plain text. Each is checked like any header value (speakerfeed.mail.headers: no line
break, no control character, no ``=?``) and encoded here: ASCII as it is, folded at spaces where
a line would pass 78 characters (never inside a URL or a msg-id, which cannot be folded); other
text as RFC 2047 encoded words, keeping a trailing ``<...>`` part (List-Id's id) unencoded.

``field_lines`` gives the folded lines for a MIME message; ``field_value`` the same value on one
line, for an API that takes headers as JSON (SendGrid) and folds them itself.
"""

from __future__ import annotations

import functools
import re
from email.utils import parseaddr

from speakerfeed.errors import HeaderError
from speakerfeed.mail.headers import (
    MAX_LINE,
    address_header,
    fold_lines,
    safe_address,
    safe_header_value,
    unstructured,
)

MAX_LINE_HARD = 998  # RFC 5322 2.1.1: no line may be longer
MAX_NAME = 76  # a field name longer than a line is no header anyone means
# Fields a transport writes itself, from the Batch's own attributes; providers refuse some too.
RESERVED = frozenset(
    name.lower()
    for name in (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Subject",
        "Date",
        "Reply-To",
        "Sender",
        "Return-Path",
        "Received",
        "DKIM-Signature",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    )
)

_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 3.6.8: printable ASCII except ":"
# "display text <angle text>", the angle text printable ASCII without "<" or ">".
_PHRASE_AND_ANGLE = re.compile(r"(.*?) *<([!-;=?-~]+)>")

MAX_NAME_CHARS = 200  # a longer "name" is abuse, not a name


def display_name(name: str, limit: int) -> str:
    """A recipient's name for a header: cleaned (safe_header_value's ``clean``), at most
    ``limit`` characters."""
    if name.isprintable() and "=?" not in name and "  " not in name and name == name.strip():
        return name[:limit].rstrip()  # nothing to clean, as is usual (and checked faster)
    return safe_header_value(name, field="To", clean=True)[:limit].rstrip()


def mailbox(value: str, *, field: str) -> tuple[str, str]:
    """(display name, address) of a configured "Name <address>", each checked for a header."""
    safe_header_value(value, field=field)
    name, address = parseaddr(value)
    return safe_header_value(name, field=field), safe_address(address, field=field)


@functools.lru_cache(maxsize=64)  # a batch repeats the same few names for every recipient
def field_key(name: str) -> str:
    """``name`` in lower case (to compare names) when it can be an extra header's field name;
    HeaderError otherwise."""
    if not _FIELD_NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise HeaderError(name[:40] or "(empty)", "not a header field name")
    key = name.lower()
    if key in RESERVED:
        raise HeaderError(name, "written by the transport itself: not an extra header")
    return key


def field_lines(name: str, value: str) -> str:
    """The header ``name: value`` as folded lines, each ending in CRLF."""
    field_key(name)
    _check_value(name, value)
    prefix = f"{name}: "
    if value.isascii():
        return _fold_ascii(prefix, value) + "\r\n"
    found = _PHRASE_AND_ANGLE.fullmatch(value)
    if found:
        return address_header(name, _unquoted(found.group(1)), found.group(2))
    return unstructured(name, value)


def field_value(name: str, value: str) -> str:
    """The value of ``field_lines`` on one line (ASCII, no CRLF)."""
    if value.isascii():  # the common case, without folding and unfolding
        field_key(name)
        _check_value(name, value)
        return value
    return field_lines(name, value)[len(name) + 2 : -2].replace("\r\n", "")


def _check_value(name: str, value: str) -> None:
    if not value or value.isspace():
        raise HeaderError(name, "an empty value")
    # Every character safe_header_value refuses is unprintable, and isprintable() is faster
    # than its regex: that one runs only when there is something to report.
    if not value.isprintable() or "=?" in value:
        safe_header_value(value, field=name)
    room = MAX_LINE_HARD - len(name) - 2
    if len(value) > room and max(map(len, value.split(" "))) > room:
        raise HeaderError(name, f"a word too long for one line ({MAX_LINE_HARD} characters)")


def _fold_ascii(prefix: str, value: str) -> str:
    """``prefix + value`` folded at spaces into lines of at most MAX_LINE where the words allow
    (a longer word keeps a line of its own)."""
    if len(prefix) + len(value) <= MAX_LINE:
        return prefix + value
    return "\r\n".join(fold_lines(prefix, value.split(" ")))


def _unquoted(phrase: str) -> str:
    """A display name as text: an RFC 5322 quoted string loses its quotes and backslashes."""
    if len(phrase) >= 2 and phrase[0] == phrase[-1] == '"':
        return re.sub(r"\\(.)", r"\1", phrase[1:-1])
    return phrase
