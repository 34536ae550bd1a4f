"""A rendered digest as a transport Batch: the shared parts, and per subscriber a Recipient.

``MessageTemplate.build`` checks and prepares once what every subscriber's copy shares (the
sender, the subject, the List-Id, the link bases, the token signer); ``batch`` then gives the
digest for a slice of the subscribers as one ``Batch``, each ``Recipient`` with its name, its
signed links as the values of the markers of speakerfeed.mail.placeholders, and its Message-ID
and List-Unsubscribe headers. Any transport takes it: SMTP and the outbox encode each copy with
speakerfeed.mail.mime (the one MIME encoder, which a preview uses too), SendGrid has the markers
substituted.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from speakerfeed.config import ListSettings, Settings
from speakerfeed.config.secret_key import MIN_SECRET_BYTES
from speakerfeed.errors import HeaderError, MessageError
from speakerfeed.mail import placeholders, tokens
from speakerfeed.mail.fields import MAX_NAME_CHARS, display_name, mailbox
from speakerfeed.mail.headers import quoted_string, safe_header_value
from speakerfeed.models import Batch, Recipient, RenderedDigest, Subscriber

MAX_SUBSCRIBER_ID_BYTES = 200  # keeps the links, and so the List-Unsubscribe lines, bounded
MAX_APP_URL = 600  # with the longest token (about 290 characters), still far below 998

LIST_UNSUBSCRIBE_POST = "List-Unsubscribe=One-Click"  # RFC 8058
_MSGID_MAX = 36  # characters of a subscriber id kept in a Message-ID (a UUID fits)
_MSGID_PLAIN = re.compile(r"[A-Za-z0-9_-]+")
_URL_BASE = re.compile(r"[!#-;=?-~]+")  # printable ASCII without space, '"', '<' or '>'
_LIST_NAMESPACE = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


@dataclass(frozen=True, slots=True, repr=False)
class MessageTemplate:
    """A digest's shared parts, checked once by ``build``; ``batch`` makes a Batch of them."""

    list_name: str
    signer: tokens.Signer  # the unsubscribe and preferences tokens, keyed once
    digest_msgid: str
    msgid_domain: str
    unsubscribe_base: str  # URL up to the token
    preferences_base: str
    unsubscribe_mailto: str  # address, or "" for no mailto in List-Unsubscribe
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
    ) -> MessageTemplate:
        """MessageError or HeaderError when the digest, the settings or the key cannot make a
        message (checked here once, not per subscriber)."""
        if rendered.digest.list_name != list_settings.name:
            raise MessageError(
                f"digest {rendered.digest.id!r} is for list {rendered.digest.list_name!r}, "
                f"not {list_settings.name!r}"
            )
        return cls.for_list(
            settings,
            list_settings,
            secret_key,
            id_part=rendered.digest.id,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
        )

    @classmethod
    def for_list(
        cls,
        settings: Settings,
        list_settings: ListSettings,
        secret_key: bytes,
        *,
        id_part: str,
        subject: str,
        text: str,
        html: str,
    ) -> MessageTemplate:
        """Any email of the list with the digest's markers and headers (the welcome too):
        ``id_part`` starts each Message-ID. Raises as ``build`` does."""
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
        from_address = mailbox(email.from_address, field="From")[1]
        subject = safe_header_value(subject, field="Subject", clean=True)
        if email.reply_to:
            mailbox(email.reply_to, field="Reply-To")  # refused here rather than per batch
        host = urlsplit(settings.site.url).hostname or ""
        if not _LIST_NAMESPACE.fullmatch(host):
            raise HeaderError("List-Id", f"site.url host {host!r} cannot name a list")
        title = safe_header_value(list_settings.title, field="List-Id", clean=True)
        list_namespace = f"{list_settings.name}.{host}"

        mailto = ""
        if email.unsubscribe_mailto:
            mailto = mailbox(email.unsubscribe_mailto, field="List-Unsubscribe")[1]
        # The list is in the path: a token is bound to one list, and the page must know which.
        unsubscribe_base = f"{app_url}/unsubscribe/{list_settings.name}/"
        preferences_base = f"{app_url}/preferences/{list_settings.name}/"
        return cls(
            list_name=list_settings.name,
            signer=tokens.Signer(secret_key, list_settings.name, ("unsubscribe", "preferences")),
            digest_msgid=_msgid_atom(id_part, limit=64),
            msgid_domain=from_address.rpartition("@")[2],
            unsubscribe_base=unsubscribe_base,
            preferences_base=preferences_base,
            unsubscribe_mailto=mailto,
            sender=email.from_address,
            reply_to=email.reply_to,
            subject=subject,
            list_id=f"{quoted_string(title)} <{list_namespace}>",
            text=text,
            html=html,
        )

    def __repr__(self) -> str:  # never the signer's key, nor 50 KB of body
        return f"<MessageTemplate {self.digest_msgid} for list {self.list_name!r}>"

    def _recipient(self, subscriber: Subscriber, random_part: str) -> Recipient:
        """``subscriber`` as a transport Recipient: key (the subscriber id), address, name, the
        values for the markers (plain text: transports escape them for HTML) and the
        Message-ID and List-Unsubscribe headers. HeaderError for an id that cannot go into a
        link; the address is checked by the transport, which reports it as that recipient's
        failure."""
        subscriber_id = _checked_id(subscriber.id)
        name = display_name(subscriber.name, MAX_NAME_CHARS)
        unsubscribe, preferences = self._tokens(subscriber_id)
        unsubscribe_url = self.unsubscribe_base + unsubscribe
        # Positional (key, address, name, values, headers): faster than keywords, and made for
        # every recipient of a send.
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
                ("List-Unsubscribe", self._list_unsubscribe(unsubscribe_url, unsubscribe)),
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

    def _list_unsubscribe(self, url: str, token: str) -> str:
        value = f"<{url}>"
        if self.unsubscribe_mailto:
            value += f", <mailto:{self.unsubscribe_mailto}?subject=unsubscribe%20{token}>"
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


def _msgid_atom(opaque: str, *, limit: int) -> str:
    """An opaque id as dot-atom text for a Message-ID: percent-encoded (dots too, so no empty
    atoms) and cut at ``limit``; the random part of the msg-id keeps it unique anyway."""
    if _MSGID_PLAIN.fullmatch(opaque) and len(opaque) <= limit:
        return opaque
    return quote(opaque, safe="").replace(".", "%2E").replace("~", "%7E")[:limit] or "-"
