"""Request bodies for SendGrid's v3 /v3/mail/send, made fast enough for 1,000 recipients a go.

sendgrid.helpers.mail builds a tree of helper objects per personalization: far too slow for
requests of 1,000 recipients made again and again through a large send. So the helpers build
only the shared part, once per batch, where their model and rules are worth having (text/plain
content before text/html; their check for an API key pasted into the content only looks at its
start, so a search here looks everywhere), and each personalization is written as JSON text
directly with json's C string encoder, checked with the shared header checks and escaped with
html.escape. Every request switches SendGrid's tracking off explicitly (see ``no_tracking``),
whatever the account's settings say. The body is ``{"personalizations":[...],`` then the shared
part's members. A test checks that the JSON is the helpers' JSON. (Personalizations built as
dicts and serialised by json.dumps were measured too, and were clearly slower.)

SendGrid substitutes the same value wherever a key occurs, in text and HTML alike, but an HTML
value must be escaped: so where some recipient's value needs escaping, the shared HTML gets its
own key for that marker (its ``SFMARK`` spelled ``SFHTML``), and every personalization carries
both the plain and the escaped values; the other markers keep one key for both parts.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sendgrid.helpers.mail import (
    Category,
    ClickTracking,
    Content,
    From,
    Ganalytics,
    Header,
    Mail,
    OpenTracking,
    ReplyTo,
    Subject,
    SubscriptionTracking,
    TrackingSettings,
)
from sendgrid.helpers.mail.exceptions import ApiKeyIncludedException

from speakerfeed.errors import HeaderError, MessageError, TransportError
from speakerfeed.mail.body import MARKERS
from speakerfeed.mail.fields import MAX_NAME_CHARS, display_name, field_key, field_value, mailbox
from speakerfeed.mail.headers import quoted_string, safe_address, safe_header_value
from speakerfeed.models import Batch, Recipient

MAX_PERSONALIZATIONS = 1_000  # per request, and as many recipients: one "to" each
MAX_SUBSTITUTIONS = 10_000  # per request
MAX_PERSONALIZATION_BYTES = 10_000  # of substitutions, and of custom_args, per personalization
MAX_CATEGORY = 255
KEY_ARG = "speakerfeed_key"  # custom_args name carrying Recipient.key back in webhook events

HTML_KEYS = {marker: marker.replace("SFMARK", "SFHTML") for marker in MARKERS}
# SendGrid replaces keys one after another: no key may hold another.
assert not any(
    a != b and a in b
    for a in (*MARKERS, *HTML_KEYS.values())
    for b in (*MARKERS, *HTML_KEYS.values())
)
_json = json.encoder.encode_basestring_ascii  # a str as a JSON string, in C
_API_KEY_LIKE = re.compile(r"SG\.[\w-]{16,}\.[\w-]{16,}")  # SendGrid's keys: SG.<id>.<secret>
# Display names SendGrid splits or drops unless quoted (sendgrid-ruby issue 394).
_NAME_SPECIALS = frozenset('()<>[]:;@\\,"')


@dataclass(frozen=True, slots=True, repr=False)
class SendGridPayload:
    """A Batch's shared request part, serialised once; ``personalization`` per recipient."""

    shared: bytes  # the request's members after "personalizations", up to the final "}"
    # Per marker in the content: (marker, its text key as JSON + ":" or "", its HTML key as
    # JSON + ":" or ""), "" when the marker is not in that part.
    keys: tuple[tuple[str, str, str], ...]
    shared_names: frozenset[str]  # the batch's header names, lower case
    max_recipients: int  # per request

    @classmethod
    def build(cls, batch: Batch) -> SendGridPayload:
        """TransportError (or HeaderError) when the batch's shared parts cannot be sent."""
        from_name, from_address = mailbox(batch.sender, field="From")
        subject = safe_header_value(batch.subject, field="Subject", clean=True)
        if not subject:
            raise TransportError("SendGrid needs a subject: the batch's is empty")
        for key in HTML_KEYS.values():
            if key in batch.text or key in batch.html:
                raise TransportError(f"the batch's content holds {key}, a reserved key")
        text_used = [marker for marker in MARKERS if marker in batch.text]
        html_used = [marker for marker in MARKERS if marker in batch.html]
        # Keys of their own in the HTML only for values that some recipient of the batch needs
        # escaped there: the links never do, names seldom, and each key left out is a value
        # less per recipient, to build and to send. (All the batch's values for a marker are
        # joined and searched at once, faster than a test per value.)
        own_html = [
            marker
            for marker in html_used
            if _needs_escape("".join([r.values.get(marker, "") for r in batch.recipients]))
        ]
        plain = set(text_used) | (set(html_used) - set(own_html))
        rich = batch.html
        for marker in own_html:
            rich = rich.replace(marker, HTML_KEYS[marker])

        mail = Mail()
        mail.from_email = From(from_address, from_name or None)
        mail.subject = Subject(subject)
        for mime_type, content in (("text/plain", batch.text), ("text/html", rich)):
            if _API_KEY_LIKE.search(content):
                raise TransportError(f"the batch's {mime_type} content holds a SendGrid API key")
            try:
                if content:
                    mail.add_content(Content(mime_type, content))
            except ApiKeyIncludedException:  # the helper's own check (of the start only)
                raise TransportError(
                    f"the batch's {mime_type} content holds a SendGrid API key"
                ) from None
        if not batch.text and not rich:
            raise TransportError("SendGrid needs content: the batch's text and HTML are empty")
        if batch.reply_to:
            reply_name, reply_address = mailbox(batch.reply_to, field="Reply-To")
            mail.reply_to = ReplyTo(reply_address, reply_name or None)
        names: set[str] = set()
        for name, value in batch.headers:
            names.add(_unique(name, names))
            mail.add_header(Header(name, field_value(name, value)))
        mail.tracking_settings = no_tracking()
        if batch.category:
            if not batch.category.isascii() or len(batch.category) > MAX_CATEGORY:
                raise TransportError(
                    f"SendGrid categories are ASCII, at most {MAX_CATEGORY} characters: "
                    f"{batch.category[:60]!r}"
                )
            mail.add_category(Category(batch.category))
        shared = json.dumps(mail.get(), ensure_ascii=False, separators=(",", ":"))
        per_recipient = len(plain) + len(own_html)
        keys = tuple(
            (
                marker,
                _json(marker) + ":" if marker in plain else "",
                _json(HTML_KEYS[marker]) + ":" if marker in own_html else "",
            )
            for marker in MARKERS
            if marker in plain or marker in own_html
        )
        return cls(
            shared=shared[1:].encode(),
            keys=keys,
            shared_names=frozenset(names),
            max_recipients=min(MAX_PERSONALIZATIONS, MAX_SUBSTITUTIONS // max(per_recipient, 1)),
        )

    def __repr__(self) -> str:
        return f"<SendGridPayload {len(self.shared)} bytes shared>"

    def personalization(self, recipient: Recipient) -> str:
        """The recipient's personalization as JSON text (ASCII): to, substitutions, headers and
        custom_args. HeaderError or MessageError when it cannot be sent."""
        # Written as JSON text rather than dicts for json.dumps: kept for speed (see above).
        key, address, name, values, headers = recipient
        address = safe_address(address, field="To")
        name = _display_name(name)
        to = (
            f'{{"email":{_json(address)},"name":{_json(name)}}}'
            if name
            else f'{{"email":{_json(address)}}}'
        )
        substitutions = self._substitutions(key, values) if self.keys else ""
        own_headers = self._headers(headers) if headers else ""
        key_json = _json(key)
        if len(key_json) > MAX_PERSONALIZATION_BYTES // 2:
            raise MessageError(f"recipient key too long for SendGrid: {key[:40]!r}…")
        return (
            f'{{"to":[{to}]{substitutions}{own_headers},"custom_args":{{"{KEY_ARG}":{key_json}}}}}'
        )

    def body(self, personalizations: Sequence[str]) -> bytes:
        """The request body for these personalizations (1 to max_recipients of them)."""
        assert 0 < len(personalizations) <= self.max_recipients
        joined = ",".join(personalizations).encode("ascii")
        return b'{"personalizations":[' + joined + b"]," + self.shared

    def _substitutions(self, key: str, values: Mapping[str, str]) -> str:
        """``,"substitutions":{...}`` for the recipient's ``values``."""
        items = []
        for marker, text_key, html_key in self.keys:
            value = values.get(marker)
            if value is None:
                raise MessageError(f"recipient {key!r} has no value for {marker}")
            if not value.isascii():
                _check_text(value, key, marker)
            encoded = _json(value)
            if text_key:
                items.append(text_key + encoded)
            if html_key:
                items.append(
                    html_key + (_json(html.escape(value)) if _needs_escape(value) else encoded)
                )
        joined = ",".join(items)
        # JSON text is never shorter than the UTF-8 it stands for: measured exactly only when
        # it is long.
        if len(joined) > MAX_PERSONALIZATION_BYTES and _octets(items) > MAX_PERSONALIZATION_BYTES:
            raise MessageError(
                f"recipient {key!r}: values over SendGrid's {MAX_PERSONALIZATION_BYTES} bytes"
            )
        return ',"substitutions":{' + joined + "}"

    def _headers(self, headers: tuple[tuple[str, str], ...]) -> str:
        """``,"headers":{...}`` for the recipient's own ``headers``."""
        items = []
        own: list[str] = []
        for name, value in headers:
            key, name_json = _header_name(name)
            if key in self.shared_names or key in own:
                raise HeaderError(name, "given twice")
            own.append(key)
            items.append(name_json + _json(field_value(name, value)))
        return ',"headers":{' + ",".join(items) + "}"


def no_tracking() -> TrackingSettings:
    """Every kind of SendGrid tracking switched off. Left unset, the account's settings apply:
    an open pixel from SendGrid's host in every email, links rewritten through its click
    tracker, its own unsubscribe footer and Google Analytics parameters on links."""
    return TrackingSettings(
        click_tracking=ClickTracking(enable=False, enable_text=False),
        open_tracking=OpenTracking(enable=False),
        subscription_tracking=SubscriptionTracking(enable=False),
        ganalytics=Ganalytics(enable=False),
    )


@functools.lru_cache(maxsize=64)
def _header_name(name: str) -> tuple[str, str]:
    """(the name in lower case, the name as a JSON key and ":"), once checked."""
    return field_key(name), _json(name) + ":"


def _needs_escape(value: str) -> bool:
    # Five "in" tests cost less than html.escape's five replaces, and a URL or a name seldom
    # holds any of them.
    return "&" in value or "<" in value or ">" in value or '"' in value or "'" in value


def _check_text(value: str, key: str, marker: str) -> None:
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate: not text at all
        raise MessageError(f"recipient {key!r}: {marker} is not text") from None


def _octets(items: list[str]) -> int:
    """The UTF-8 size of the keys and values that the JSON ``items`` ("key":"value") hold."""
    return sum(
        len(key) + len(value.encode())
        for key, value in json.loads("{" + ",".join(items) + "}").items()
    )


def _unique(name: str, seen: set[str] | frozenset[str]) -> str:
    key = field_key(name)
    if key in seen:
        raise HeaderError(name, "given twice")
    return key


def _display_name(name: str) -> str:
    """A recipient's name as SendGrid takes it: cleaned like any header text, and quoted when it
    holds a character SendGrid would otherwise read as address syntax."""
    clean = display_name(name, MAX_NAME_CHARS)
    if _NAME_SPECIALS.isdisjoint(clean):
        return clean
    return quoted_string(clean)
