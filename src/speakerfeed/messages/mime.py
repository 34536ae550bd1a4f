"""A rendered digest as a MIME message template, filled in per subscriber as bytes.

Everything the subscribers share is encoded once, in ``MessageTemplate.build``: the headers, and
both body parts as quoted-printable bytes split at the markers of speakerfeed.render.placeholders.
``personalise`` then only signs two tokens, encodes the few per-subscriber values (the name and
two URLs) and joins bytes: no email-package object, template engine or MJML per subscriber.

The message is ``multipart/alternative``: text/plain first, then text/html (the last part is the
preferred one), both UTF-8 and quoted-printable, with CRLF line endings throughout (SMTP's, so
the bytes go to the server as they are). Quoted-printable keeps every body line within 76
characters whatever is filled in: each value is encoded starting at the column where it lands,
and a soft line break goes in wherever a value or the text after it would run past the limit.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr
from urllib.parse import quote, urlsplit

from speakerfeed.config import ListSettings, Settings
from speakerfeed.errors import SpeakerfeedError
from speakerfeed.messages import tokens
from speakerfeed.messages.headers import (
    HeaderError,
    address_header,
    list_id_header,
    safe_address,
    safe_header_value,
    unstructured,
)
from speakerfeed.models import RenderedDigest, Subscriber
from speakerfeed.render import placeholders

MAX_SUBSCRIBER_ID_BYTES = 200  # keeps the links, and so the List-Unsubscribe lines, bounded
MAX_NAME_CHARS = 200  # a longer "name" is abuse, not a name
MAX_APP_URL = 600  # with the longest token (about 290 characters), still far below 998

_QP_WIDTH = 75  # characters before a soft line break's "=": lines stay within 76 (RFC 2045 6.7)
_SOFT_BREAK = b"=\r\n"
# Where each marker's value sits in the values passed to _PartTemplate.fill.
_NAME, _UNSUBSCRIBE, _PREFERENCES = 0, 1, 2
_MARKERS = {
    placeholders.NAME: _NAME,
    placeholders.UNSUBSCRIBE_URL: _UNSUBSCRIBE,
    placeholders.PREFERENCES_URL: _PREFERENCES,
}
_MARKER_SPLIT = re.compile("(" + "|".join(map(re.escape, _MARKERS)) + ")")
# Quoted-printable: printable ASCII other than "=" stands for itself, and so do space and tab
# except at the end of a line (RFC 2045 6.7 rule 3); every other byte is "=XX".
_QP = [bytes([b]) if 33 <= b <= 126 and b != 61 else b"=%02X" % b for b in range(256)]
_QP[9], _QP[32] = b"\t", b" "
_QP_AT_LINE_END = {b"\t": b"=09", b" ": b"=20"}
# A value that is its own quoted-printable form: no "=", no byte outside printable ASCII, and
# no space at the end.
_PLAIN_VALUE = re.compile(rb"(?:[ !-<>-~]*[!-<>-~])?")
_MSGID_MAX = 36  # characters of a subscriber id kept in a Message-ID (a UUID fits)
_MSGID_PLAIN = re.compile(r"[A-Za-z0-9_-]+")
_URL_BASE = re.compile(r"[!#-;=?-~]+")  # printable ASCII without space, '"', '<' or '>'
_LIST_NAMESPACE = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


class MessageError(SpeakerfeedError):
    """The digest cannot be turned into messages: the message says which setting to fix."""


@dataclass(frozen=True, slots=True)
class _Segment:
    """Quoted-printable bytes of the text between two markers, encoded from column 0."""

    data: bytes
    first: int  # length of its first line
    last: int  # length of its last line
    multiline: bool

    @classmethod
    def encode(cls, text: str, *, ends_line: bool) -> _Segment:
        """``ends_line``: a line break or the end of the part may follow the text (when the name
        after it is empty), so a space or tab at its end must be encoded."""
        lines = text.split("\n")
        encoded = []
        for number, line in enumerate(lines):
            at_end = ends_line or number < len(lines) - 1
            encoded.append(_wrap(_qp_tokens(line.encode(), at_end), 0)[0])
        data = b"\r\n".join(encoded)
        first_end, last_start = data.find(b"\r\n"), data.rfind(b"\r\n")
        if first_end < 0:
            return cls(data, len(data), len(data), multiline=False)
        return cls(data, first_end, len(data) - last_start - 2, multiline=True)


@dataclass(frozen=True, slots=True)
class _PartTemplate:
    """One body part as quoted-printable segments with a marker (or -1 at the end) after each."""

    segments: tuple[_Segment, ...]
    markers: tuple[int, ...]

    @classmethod
    def encode(cls, text: str) -> _PartTemplate:
        pieces = _MARKER_SPLIT.split(text.replace("\r\n", "\n").replace("\r", "\n"))
        texts, found = pieces[0::2], [_MARKERS[m] for m in pieces[1::2]]
        markers = (*found, -1)
        segments = []
        following = ""  # the first character after each text, "" at the end of the part
        for text_piece, marker in zip(reversed(texts), reversed(markers), strict=True):
            if marker in (_UNSUBSCRIBE, _PREFERENCES):
                following = "h"  # a URL, never empty; only the name can be
            segments.append(_Segment.encode(text_piece, ends_line=following in ("", "\n")))
            following = text_piece[:1] or following
        return cls(tuple(reversed(segments)), markers)

    def fill(self, values: Sequence[bytes], out: list[bytes]) -> None:
        """Append the part's bytes with ``values`` (name, unsubscribe URL, preferences URL) in
        place of the markers."""
        column = 0
        for segment, marker in zip(self.segments, self.markers, strict=True):
            if segment.data:
                if column + segment.first > _QP_WIDTH:
                    out.append(_SOFT_BREAK)
                    column = 0
                out.append(segment.data)
                column = segment.last if segment.multiline else column + segment.first
            if marker >= 0:
                encoded, column = _encode_value(values[marker], column)
                out.append(encoded)


@dataclass(frozen=True, slots=True, repr=False)
class MessageTemplate:
    """A digest's message, encoded once by ``build``; ``personalise`` makes one subscriber's."""

    list_name: str
    secret_key: bytes
    digest_msgid: str
    msgid_domain: str
    unsubscribe_base: str  # URL up to the token
    preferences_base: str
    unsubscribe_base_html: str
    preferences_base_html: str
    unsubscribe_mailto: str  # address, or "" for no mailto in List-Unsubscribe
    head: bytes  # From
    after_to: bytes  # Subject, Date
    after_message_id: bytes  # Reply-To, List-Id
    after_list_unsubscribe: bytes  # List-Unsubscribe-Post, MIME headers, the text part's head
    text: _PartTemplate
    between_parts: bytes
    html: _PartTemplate
    tail: bytes

    @classmethod
    def build(
        cls,
        rendered: RenderedDigest,
        settings: Settings,
        list_settings: ListSettings,
        secret_key: bytes,
        *,
        now: datetime | None = None,
    ) -> MessageTemplate:
        """``now``: the send's date for the Date header (default: the current time)."""
        if rendered.digest.list_name != list_settings.name:
            raise MessageError(
                f"digest {rendered.digest.id!r} is for list {rendered.digest.list_name!r}, "
                f"not {list_settings.name!r}"
            )
        if len(secret_key) < tokens.MIN_SECRET_BYTES:
            raise MessageError(
                "SPEAKERFEED_SECRET_KEY must be set, at least "
                f"{tokens.MIN_SECRET_BYTES} bytes long (32 random bytes recommended)"
            )
        email = settings.email
        app_url = settings.app_url
        if len(app_url) > MAX_APP_URL:  # a link must fit in a List-Unsubscribe line (998)
            raise MessageError(f"email.app_url is over {MAX_APP_URL} characters: {app_url[:60]}…")
        if not _URL_BASE.fullmatch(app_url):
            raise MessageError(
                f"email.app_url: {app_url!r} cannot go into a header: use an ASCII URL "
                "(punycode host, percent-encoded path) without spaces, quotes or angle brackets"
            )
        from_name, from_address = _mailbox(email.from_address, field="From")
        head = address_header("From", from_name, from_address)

        subject = safe_header_value(rendered.subject, field="Subject", clean=True)
        date = format_datetime((now or datetime.now(UTC)).astimezone(UTC))
        after_to = unstructured("Subject", subject) + f"Date: {date}\r\n"

        after_message_id = ""
        if email.reply_to:
            reply_name, reply_address = _mailbox(email.reply_to, field="Reply-To")
            after_message_id += address_header("Reply-To", reply_name, reply_address)
        host = urlsplit(settings.site.url).hostname or ""
        if not _LIST_NAMESPACE.fullmatch(host):
            raise HeaderError("List-Id", f"site.url host {host!r} cannot name a list")
        title = safe_header_value(list_settings.title, field="List-Id", clean=True)
        after_message_id += list_id_header(title, f"{list_settings.name}.{host}")

        mailto = ""
        if email.unsubscribe_mailto:
            mailto = _mailbox(email.unsubscribe_mailto, field="List-Unsubscribe")[1]
        boundary = "=_" + secrets.token_hex(16)  # "=_" never occurs in quoted-printable text
        after_list_unsubscribe = (
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
            "\r\n" + _part_head(boundary, "text/plain")
        )
        unsubscribe_base = f"{app_url}/unsubscribe/"
        preferences_base = f"{app_url}/preferences/"
        return cls(
            list_name=list_settings.name,
            secret_key=secret_key,
            digest_msgid=_msgid_atom(rendered.digest.id, limit=64),
            msgid_domain=from_address.rpartition("@")[2],
            unsubscribe_base=unsubscribe_base,
            preferences_base=preferences_base,
            unsubscribe_base_html=html.escape(unsubscribe_base),
            preferences_base_html=html.escape(preferences_base),
            unsubscribe_mailto=mailto,
            head=head.encode("ascii"),
            after_to=after_to.encode("ascii"),
            after_message_id=after_message_id.encode("ascii"),
            after_list_unsubscribe=after_list_unsubscribe.encode("ascii"),
            text=_PartTemplate.encode(rendered.text),
            between_parts=("\r\n" + _part_head(boundary, "text/html")).encode("ascii"),
            html=_PartTemplate.encode(rendered.html),
            tail=f"\r\n--{boundary}--\r\n".encode("ascii"),
        )

    def __repr__(self) -> str:  # never the secret key, nor 50 KB of body
        return f"<MessageTemplate {self.digest_msgid} for list {self.list_name!r}>"

    def personalise(self, subscriber: Subscriber) -> bytes:
        """The complete message for ``subscriber``, CRLF line endings. HeaderError when the
        subscriber's address or id cannot go into a header safely."""
        address = safe_address(subscriber.email, field="To")
        subscriber_id = subscriber.id
        if not 0 < len(subscriber_id.encode()) <= MAX_SUBSCRIBER_ID_BYTES:
            raise HeaderError(
                "List-Unsubscribe",
                f"subscriber id must be 1 to {MAX_SUBSCRIBER_ID_BYTES} bytes, "
                f"got {len(subscriber_id.encode())}",
            )
        name = safe_header_value(subscriber.name, field="To", clean=True)[:MAX_NAME_CHARS].rstrip()
        key, list_name = self.secret_key, self.list_name
        unsubscribe = tokens.sign(key, "unsubscribe", subscriber_id, list_name)
        preferences = tokens.sign(key, "preferences", subscriber_id, list_name)

        unsubscribe_url = self.unsubscribe_base + unsubscribe
        list_unsubscribe = f"List-Unsubscribe: <{unsubscribe_url}>"
        if self.unsubscribe_mailto:
            list_unsubscribe += (
                f",\r\n <mailto:{self.unsubscribe_mailto}?subject=unsubscribe%20{unsubscribe}>"
            )
        # Not folded even when over 78 characters (only a SHOULD): some programs keep the folding
        # space as part of the id. Its parts are bounded, so the line stays far below 998.
        message_id = (
            f"<{self.digest_msgid}.{_msgid_atom(subscriber_id, limit=_MSGID_MAX)}"
            f".{secrets.token_urlsafe(9)}@{self.msgid_domain}>"
        )
        out = [
            self.head,
            address_header("To", name, address).encode("ascii"),
            self.after_to,
            f"Message-ID: {message_id}\r\n".encode("ascii"),
            self.after_message_id,
            f"{list_unsubscribe}\r\n".encode("ascii"),
            self.after_list_unsubscribe,
        ]
        self.text.fill(
            (
                f" {name}".encode() if name else b"",
                unsubscribe_url.encode(),
                (self.preferences_base + preferences).encode(),
            ),
            out,
        )
        out.append(self.between_parts)
        # Tokens are URL-safe base64 and "." (nothing to escape in HTML); the bases are escaped.
        self.html.fill(
            (
                f" {html.escape(name)}".encode() if name else b"",
                (self.unsubscribe_base_html + unsubscribe).encode(),
                (self.preferences_base_html + preferences).encode(),
            ),
            out,
        )
        out.append(self.tail)
        return b"".join(out)

    def personalise_many(self, subscribers: Iterable[Subscriber]) -> Iterator[bytes]:
        """``personalise`` for each subscriber, lazily; stops at the first HeaderError, so call
        ``personalise`` one at a time to skip a bad address and carry on."""
        personalise = self.personalise
        for subscriber in subscribers:
            yield personalise(subscriber)


def _mailbox(value: str, *, field: str) -> tuple[str, str]:
    """(display name, address) of a configured "Name <address>", each checked for a header."""
    safe_header_value(value, field=field)
    name, address = parseaddr(value)
    return safe_header_value(name, field=field), safe_address(address, field=field)


def _part_head(boundary: str, content_type: str) -> str:
    return (
        f"--{boundary}\r\n"
        f"Content-Type: {content_type}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
    )


def _msgid_atom(opaque: str, *, limit: int) -> str:
    """An opaque id as dot-atom text for a Message-ID: percent-encoded (dots too, so no empty
    atoms) and cut at ``limit``; the random part of the msg-id keeps it unique anyway."""
    if _MSGID_PLAIN.fullmatch(opaque) and len(opaque) <= limit:
        return opaque
    return quote(opaque, safe="").replace(".", "%2E").replace("~", "%7E")[:limit] or "-"


def _qp_tokens(data: bytes, at_line_end: bool) -> list[bytes]:
    encoded = [_QP[byte] for byte in data]
    if at_line_end and encoded and encoded[-1] in _QP_AT_LINE_END:
        encoded[-1] = _QP_AT_LINE_END[encoded[-1]]
    return encoded


def _wrap(encoded: list[bytes], column: int) -> tuple[bytes, int]:
    """Quoted-printable tokens from ``column`` on, with a soft line break before any token that
    would pass the width; the bytes and the column where they end."""
    out = []
    for token in encoded:
        if column + len(token) > _QP_WIDTH:
            out.append(_SOFT_BREAK)
            column = 0
        out.append(token)
        column += len(token)
    return b"".join(out), column


def _encode_value(value: bytes, column: int) -> tuple[bytes, int]:
    """A per-subscriber value (one line, no line break) as quoted-printable from ``column``."""
    if not _PLAIN_VALUE.fullmatch(value):
        return _wrap(_qp_tokens(value, at_line_end=True), column)
    if column + len(value) <= _QP_WIDTH:
        return value, column + len(value)
    # Already its own encoding (a URL, an ASCII name): cut it into lines by slicing.
    room = _QP_WIDTH - column
    lines = [value[:room]]
    lines += [value[start : start + _QP_WIDTH] for start in range(room, len(value), _QP_WIDTH)]
    return _SOFT_BREAK.join(lines), len(lines[-1])
