"""A rendered digest as a MIME message template, filled in per subscriber as bytes.

Everything the subscribers share is encoded once, in ``MessageTemplate.build``: the headers, and
the body (speakerfeed.mail.body: both parts as quoted-printable bytes split at the markers of
speakerfeed.mail.placeholders). ``personalise`` then only signs two tokens, encodes the few
per-subscriber values (the name and two URLs) and joins bytes: no email-package object, template
engine or MJML per subscriber.

``batch`` gives the same digest as a transport ``Batch`` instead (the shared parts, and per
subscriber a ``Recipient`` with the values and headers), so it can go through any transport:
SMTP and the outbox fill the markers in the same way, SendGrid has them substituted.
"""

from __future__ import annotations

import base64
import html
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote, urlsplit

from speakerfeed.config import ListSettings, Settings
from speakerfeed.config.secret_key import MIN_SECRET_BYTES
from speakerfeed.errors import HeaderError, MessageError
from speakerfeed.mail import placeholders, tokens
from speakerfeed.mail.body import MimeBody
from speakerfeed.mail.fields import MAX_NAME_CHARS, display_name, mailbox
from speakerfeed.mail.headers import (
    address_header,
    list_id_header,
    safe_address,
    safe_header_value,
    unstructured,
)
from speakerfeed.models import Batch, Recipient, RenderedDigest, Subscriber

MAX_SUBSCRIBER_ID_BYTES = 200  # keeps the links, and so the List-Unsubscribe lines, bounded
MAX_APP_URL = 600  # with the longest token (about 290 characters), still far below 998

LIST_UNSUBSCRIBE_POST = "List-Unsubscribe=One-Click"  # RFC 8058
_MSGID_MAX = 36  # characters of a subscriber id kept in a Message-ID (a UUID fits)
_MSGID_PLAIN = re.compile(r"[A-Za-z0-9_-]+")
_URL_BASE = re.compile(r"[!#-;=?-~]+")  # printable ASCII without space, '"', '<' or '>'
_LIST_NAMESPACE = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_URLS = frozenset({placeholders.UNSUBSCRIBE_URL, placeholders.PREFERENCES_URL})


@dataclass(frozen=True, slots=True, repr=False)
class MessageTemplate:
    """A digest's message, encoded once by ``build``; ``personalise`` makes one subscriber's."""

    list_name: str
    secret_key: bytes
    signer: tokens.Signer  # the unsubscribe and preferences tokens, keyed once
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
    after_list_unsubscribe: bytes  # List-Unsubscribe-Post
    body: MimeBody
    # What ``batch`` hands a transport, which encodes (or has the provider encode) it itself.
    sender: str  # From as configured
    reply_to: str
    subject: str  # cleaned
    list_id: str  # the List-Id header's value, unencoded
    text: str  # the rendered parts, with markers
    html: str

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
        if len(secret_key) < MIN_SECRET_BYTES:
            raise MessageError(
                "SPEAKERFEED_SECRET_KEY must be set, at least "
                f"{MIN_SECRET_BYTES} bytes long (32 random bytes recommended)"
            )
        email = settings.email
        app_url = settings.app_url
        if len(app_url) > MAX_APP_URL:  # a link must fit in a List-Unsubscribe line (998)
            raise MessageError(f"email.app_url is over {MAX_APP_URL} characters: {app_url[:60]}…")
        if not _URL_BASE.fullmatch(app_url) or "=?" in app_url:
            raise MessageError(
                f"email.app_url: {app_url!r} cannot go into a header: use an ASCII URL "
                "(punycode host, percent-encoded path) without spaces, quotes, angle brackets "
                "or '=?'"
            )
        from_name, from_address = mailbox(email.from_address, field="From")
        head = address_header("From", from_name, from_address)

        subject = safe_header_value(rendered.subject, field="Subject", clean=True)
        date = format_datetime((now or datetime.now(UTC)).astimezone(UTC))
        after_to = unstructured("Subject", subject) + f"Date: {date}\r\n"

        after_message_id = ""
        if email.reply_to:
            reply_name, reply_address = mailbox(email.reply_to, field="Reply-To")
            after_message_id += address_header("Reply-To", reply_name, reply_address)
        host = urlsplit(settings.site.url).hostname or ""
        if not _LIST_NAMESPACE.fullmatch(host):
            raise HeaderError("List-Id", f"site.url host {host!r} cannot name a list")
        title = safe_header_value(list_settings.title, field="List-Id", clean=True)
        list_namespace = f"{list_settings.name}.{host}"
        after_message_id += list_id_header(title, list_namespace)

        mailto = ""
        if email.unsubscribe_mailto:
            mailto = mailbox(email.unsubscribe_mailto, field="List-Unsubscribe")[1]
        # The list is in the path: a token is bound to one list, and the page must know which.
        unsubscribe_base = f"{app_url}/unsubscribe/{list_settings.name}/"
        preferences_base = f"{app_url}/preferences/{list_settings.name}/"
        return cls(
            list_name=list_settings.name,
            secret_key=secret_key,
            signer=tokens.Signer(secret_key, list_settings.name, ("unsubscribe", "preferences")),
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
            after_list_unsubscribe=f"List-Unsubscribe-Post: {LIST_UNSUBSCRIBE_POST}\r\n".encode(),
            body=MimeBody.encode(rendered.text, rendered.html, never_empty=_URLS),
            sender=email.from_address,
            reply_to=email.reply_to,
            subject=subject,
            list_id=f"{_quoted(title)} <{list_namespace}>",
            text=rendered.text,
            html=rendered.html,
        )

    def __repr__(self) -> str:  # never the secret key, nor 50 KB of body
        return f"<MessageTemplate {self.digest_msgid} for list {self.list_name!r}>"

    def personalise(self, subscriber: Subscriber) -> bytes:
        """The complete message for ``subscriber``, CRLF line endings. HeaderError when the
        subscriber's address or id cannot go into a header safely."""
        address = safe_address(subscriber.email, field="To")
        subscriber_id = _checked_id(subscriber.id)
        name = display_name(subscriber.name, MAX_NAME_CHARS)
        unsubscribe, preferences = self._tokens(subscriber_id)
        unsubscribe_url = self.unsubscribe_base + unsubscribe
        list_unsubscribe = self._list_unsubscribe(unsubscribe_url, unsubscribe, ",\r\n ")
        out = [
            self.head,
            address_header("To", name, address).encode("ascii"),
            self.after_to,
            f"Message-ID: {self._message_id(subscriber_id, secrets.token_urlsafe(9))}\r\n".encode(),
            self.after_message_id,
            f"List-Unsubscribe: {list_unsubscribe}\r\n".encode("ascii"),
            self.after_list_unsubscribe,
        ]
        # Tokens are URL-safe base64 and "." (nothing to escape in HTML); the bases are escaped.
        self.body.fill(
            (
                f" {name}".encode() if name else b"",
                unsubscribe_url.encode(),
                (self.preferences_base + preferences).encode(),
            ),
            (
                f" {html.escape(name)}".encode() if name else b"",
                (self.unsubscribe_base_html + unsubscribe).encode(),
                (self.preferences_base_html + preferences).encode(),
            ),
            out,
        )
        return b"".join(out)

    def personalise_many(self, subscribers: Iterable[Subscriber]) -> Iterator[bytes]:
        """``personalise`` for each subscriber, lazily; stops at the first HeaderError, so call
        ``personalise`` one at a time to skip a bad address and carry on."""
        personalise = self.personalise
        for subscriber in subscribers:
            yield personalise(subscriber)

    def recipient(self, subscriber: Subscriber) -> Recipient:
        """``subscriber`` as a transport Recipient: key (the subscriber id), address, name, the
        values for the markers (plain text: transports escape them for HTML) and the
        Message-ID and List-Unsubscribe headers. HeaderError for an id that cannot go into a
        link; the address is checked by the transport, which reports it as that recipient's
        failure."""
        return self._recipient(subscriber, secrets.token_urlsafe(9))

    def _recipient(self, subscriber: Subscriber, random_part: str) -> Recipient:
        subscriber_id = _checked_id(subscriber.id)
        name = display_name(subscriber.name, MAX_NAME_CHARS)
        unsubscribe, preferences = self._tokens(subscriber_id)
        unsubscribe_url = self.unsubscribe_base + unsubscribe
        # Positional (key, address, name, values, headers): a quarter less time than keywords,
        # for every recipient of a send.
        return Recipient(
            subscriber_id,
            subscriber.email,
            name,
            {
                placeholders.NAME: f" {name}" if name else "",
                placeholders.UNSUBSCRIBE_URL: unsubscribe_url,
                placeholders.PREFERENCES_URL: self.preferences_base + preferences,
            },
            (
                ("Message-ID", self._message_id(subscriber_id, random_part)),
                ("List-Unsubscribe", self._list_unsubscribe(unsubscribe_url, unsubscribe, ", ")),
            ),
        )

    def batch(self, subscribers: Iterable[Subscriber]) -> Batch:
        """The digest for ``subscribers`` as one transport Batch. Every recipient is held in
        memory: pass a slice of a large list, e.g. 10,000 (10 SendGrid requests, sent
        concurrently; about 1 KB each)."""
        subscribers = list(subscribers)
        recipients = map(self._recipient, subscribers, _random_parts(len(subscribers)))
        return Batch(
            sender=self.sender,
            subject=self.subject,
            text=self.text,
            html=self.html,
            recipients=tuple(recipients),
            reply_to=self.reply_to,
            headers=(("List-Id", self.list_id), ("List-Unsubscribe-Post", LIST_UNSUBSCRIBE_POST)),
            category=self.list_name,
        )

    def _tokens(self, subscriber_id: str) -> tuple[str, ...]:
        return self.signer.sign(subscriber_id)  # (unsubscribe, preferences)

    def _message_id(self, subscriber_id: str, random_part: str) -> str:
        # Not folded even when over 78 characters (only a SHOULD): some programs keep the folding
        # space as part of the id. Its parts are bounded, so the line stays far below 998.
        return (
            f"<{self.digest_msgid}.{_msgid_atom(subscriber_id, limit=_MSGID_MAX)}"
            f".{random_part}@{self.msgid_domain}>"
        )

    def _list_unsubscribe(self, url: str, token: str, separator: str) -> str:
        value = f"<{url}>"
        if self.unsubscribe_mailto:
            value += f"{separator}<mailto:{self.unsubscribe_mailto}?subject=unsubscribe%20{token}>"
        return value


def _checked_id(subscriber_id: str) -> str:
    if not 0 < len(subscriber_id.encode()) <= MAX_SUBSCRIBER_ID_BYTES:
        raise HeaderError(
            "List-Unsubscribe",
            f"subscriber id must be 1 to {MAX_SUBSCRIBER_ID_BYTES} bytes, "
            f"got {len(subscriber_id.encode())}",
        )
    return subscriber_id


def _random_parts(count: int) -> list[str]:
    """``count`` strings as ``secrets.token_urlsafe(9)`` makes (72 random bits, 12 characters),
    from one read of the system's random source instead of one each."""
    text = base64.urlsafe_b64encode(secrets.token_bytes(9 * count)).decode()
    return [text[start : start + 12] for start in range(0, 12 * count, 12)]


def _quoted(text: str) -> str:
    """``text`` as an RFC 5322 quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _msgid_atom(opaque: str, *, limit: int) -> str:
    """An opaque id as dot-atom text for a Message-ID: percent-encoded (dots too, so no empty
    atoms) and cut at ``limit``; the random part of the msg-id keeps it unique anyway."""
    if _MSGID_PLAIN.fullmatch(opaque) and len(opaque) <= limit:
        return opaque
    return quote(opaque, safe="").replace(".", "%2E").replace("~", "%7E")[:limit] or "-"
