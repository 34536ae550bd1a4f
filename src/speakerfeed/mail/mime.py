"""Any transport Batch as complete MIME messages, one per recipient, as bytes.

``BatchTemplate.build`` encodes what the recipients share once: From, Subject, Date, Reply-To,
the batch's extra headers and the body (speakerfeed.mail.body). ``personalise`` adds a
recipient's To and own headers (a Message-ID is made when none is given) and fills the markers
with the recipient's values: as given in the text part, HTML-escaped in the HTML part.

The header order: From, To, Subject, Date, the recipient's headers (Message-ID…), Reply-To, the
batch's headers (List-Id…), then the MIME headers.
"""

from __future__ import annotations

import functools
import html
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from speakerfeed.errors import HeaderError, MessageError
from speakerfeed.mail.body import MARKERS, MimeBody
from speakerfeed.mail.fields import MAX_NAME_CHARS, display_name, field_key, field_lines, mailbox
from speakerfeed.mail.headers import address_header, safe_address, safe_header_value, unstructured
from speakerfeed.models import Batch, Recipient

_MESSAGE_ID = "message-id"


@dataclass(frozen=True, slots=True, repr=False)
class BatchTemplate:
    """A Batch's shared parts, encoded once; ``personalise`` makes one recipient's message."""

    sender_address: str  # the From address, also the envelope sender (SMTP MAIL FROM)
    head: bytes  # From
    after_to: bytes  # Subject, Date
    after_recipient_headers: bytes  # Reply-To, the batch's headers
    shared_names: frozenset[str]  # the batch's header names, lower case
    body: MimeBody

    @classmethod
    def build(cls, batch: Batch, *, now: datetime | None = None) -> BatchTemplate:
        """HeaderError when a shared value cannot go into a header (a bad sender, say): then no
        recipient's message can be made."""
        from_name, from_address = mailbox(batch.sender, field="From")
        subject = safe_header_value(batch.subject, field="Subject", clean=True)
        date = format_datetime((now or datetime.now(UTC)).astimezone(UTC))
        after = ""
        if batch.reply_to:
            after += address_header("Reply-To", *mailbox(batch.reply_to, field="Reply-To"))
        names: set[str] = set()
        for name, value in batch.headers:
            after += field_lines(name, value)
            names.add(_unique(name, names))
        return cls(
            sender_address=from_address,
            head=address_header("From", from_name, from_address).encode("ascii"),
            after_to=(unstructured("Subject", subject) + f"Date: {date}\r\n").encode("ascii"),
            after_recipient_headers=after.encode("ascii"),
            shared_names=frozenset(names),
            body=_encoded_body(batch.text, batch.html),
        )

    def __repr__(self) -> str:
        return f"<BatchTemplate from {self.sender_address}>"

    def personalise(self, recipient: Recipient) -> bytes:
        """The complete message for ``recipient``, CRLF line endings. HeaderError when its
        address, name or headers cannot go into a header safely, MessageError when a marker in
        the body has no value."""
        address = safe_address(recipient.address, field="To")
        name = display_name(recipient.name, MAX_NAME_CHARS)
        out = [self.head, address_header("To", name, address).encode("ascii"), self.after_to]
        names = set(self.shared_names)
        for field, value in recipient.headers:
            names.add(_unique(field, names))
            out.append(field_lines(field, value).encode("ascii"))
        if _MESSAGE_ID not in names:
            domain = self.sender_address.rpartition("@")[2]
            out.append(f"Message-ID: <{secrets.token_urlsafe(18)}@{domain}>\r\n".encode("ascii"))
        out.append(self.after_recipient_headers)
        text_values, html_values = self._values(recipient)
        self.body.fill(text_values, html_values, out)
        return b"".join(out)

    def _values(self, recipient: Recipient) -> tuple[list[bytes], list[bytes]]:
        """The recipient's values in MARKERS order: as UTF-8, and HTML-escaped as UTF-8."""
        plain: list[bytes] = []
        escaped: list[bytes] = []
        values = recipient.values
        for marker, used in zip(MARKERS, self.body.used, strict=True):
            value = values.get(marker, "") if used else ""
            if used and marker not in values:
                raise MessageError(f"recipient {recipient.key!r} has no value for {marker}")
            try:
                plain.append(value.encode())
            except UnicodeEncodeError:  # a lone surrogate: not text at all
                raise MessageError(f"recipient {recipient.key!r}: {marker} is not text") from None
            escaped.append(html.escape(value).encode())
        return plain, escaped


def _unique(name: str, seen: set[str]) -> str:
    """``name`` in lower case, once checked as a field name not given before."""
    key = field_key(name)
    if key in seen:
        raise HeaderError(name, "given twice")
    return key


@functools.lru_cache(maxsize=8)
def _encoded_body(text: str, html: str) -> MimeBody:
    """Every batch of a send carries the same two parts: they are encoded once, not per batch.
    (Strings keep their hash, and the batches share the very same objects, so a hit is cheap.)"""
    return MimeBody.encode(text, html)
