"""The one check of a subscriber's address: what sign-up, import and `subscribers add` store is
exactly what the mailer can send.

``mailable_address`` returns the address as it is stored and sent (stripped, lower-cased as
store.subscribers.normalise_email does, an internationalised domain in its ASCII "xn--" form) or
raises AddressError saying why, in words a reader understands. The rules are email_validator's
(no DNS look-up; ``strict`` for the RFC 5321 lengths: 64 octets before the @, 254 in all; IDNA
2008 for the domain) plus the mailer's own (mail.headers.safe_address: a dot-atom before the @, a
host name after it, no encoded word), so nothing is stored that the letter encoder would refuse
later with a 503 to the reader and a used-up per-address window.

A non-ASCII part before the @ (``jöhn@example.org``) needs SMTPUTF8 from the first relay to the
last; ``smtputf8_allowed`` says whether the configured transport can send one. None can today: the
letter encoder writes ASCII headers only and the SMTP transport never asks for SMTPUTF8 in MAIL
FROM, so such addresses are refused whatever the transport.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final, NoReturn

from email_validator import EmailNotValidError, validate_email

from speakerfeed.config.delivery import DeliverySettings, TransportName
from speakerfeed.errors import AddressError, HeaderError
from speakerfeed.mail.headers import safe_address

MAX_LOCAL_PART: Final = 64  # RFC 5321 4.5.3.1.1, in octets
EXPECTED: Final = "expected an email address such as name@example.org"

# Whether each transport can deliver to a non-ASCII local part (SMTPUTF8, RFC 6531).
# - smtp: the message's headers are encoded as ASCII (mail.mime) and MAIL FROM carries no SMTPUTF8
#   parameter, so even a server announcing SMTPUTF8 would get no such message from us.
# - outbox: the .eml files are handed to some relay later; nothing says it speaks SMTPUTF8.
# - sendgrid: its v3 API accepts the request, then drops the message as "Invalid"
#   (sendgrid/sendgrid-csharp#656): a silent loss, worse than a refusal at sign-up.
# - memory: tests only; it behaves as the transports it stands in for.
# Turning one on needs the encoder to write UTF-8 headers and the transport to ask for SMTPUTF8.
_SMTPUTF8: Final[dict[TransportName, bool]] = {
    "smtp": False,
    "outbox": False,
    "sendgrid": False,
    "memory": False,
}


def smtputf8_allowed(delivery: DeliverySettings) -> bool:
    """Whether the configured transport can send to a non-ASCII local part."""
    return _SMTPUTF8[delivery.transport]


def mailable_address(raw: str, *, smtputf8: bool = False) -> str:
    """The address as stored and sent, or AddressError (``reason`` says why, for a form field)."""
    text = raw.strip()
    # Only ASCII takes the quick path: lower() maps some non-ASCII letters to ASCII ones (the
    # Kelvin sign to "k"), which would store an address other than the one typed.
    plain = _plain(text.lower()) if text.isascii() else None
    return plain if plain is not None else _validated(text, smtputf8=smtputf8)


def _plain(lowered: str) -> str | None:
    """The usual address (ASCII dot-atom, ASCII host name) quickly, or None to look closer.

    An import checks a million of these: the mailer's pattern and the local part's length are
    checked here, and email_validator sees each domain only once (cached). Anything this
    accepts, _validated accepts with the same result (tests/mail/test_addresses.py)."""
    local, _, domain = lowered.rpartition("@")
    if len(local) > MAX_LOCAL_PART:
        return None
    try:
        safe_address(lowered, field="email")
    except HeaderError:
        return None
    return lowered if _domain_is_plain(domain) else None


@lru_cache(maxsize=4096)
def _domain_is_plain(domain: str) -> bool:
    """The ASCII domain is one email_validator accepts as it is (not reserved, a real top-level
    domain, labels of 63 characters at most, a valid "xn--" label if any)."""
    try:
        checked = validate_email(
            f"postmaster@{domain}", check_deliverability=False, allow_smtputf8=False, strict=True
        )
    except EmailNotValidError:
        return False
    return checked.ascii_domain == domain


def _validated(text: str, *, smtputf8: bool) -> str:
    local = text.rpartition("@")[0]
    if "=?" in text:
        _refuse(text, "an encoded word (=?...?=) is not part of an email address")
    odd = "".join(dict.fromkeys(c for c in local if not c.isascii()))
    if odd and odd.isprintable() and not smtputf8:  # line breaks and such: email_validator's
        _refuse(
            text,
            f"we can only send to addresses with plain letters, digits and . _ - + before "
            f"the @ (this one has {odd!r})",
        )
    try:
        checked = validate_email(
            text, check_deliverability=False, allow_smtputf8=smtputf8, strict=True
        )
    except EmailNotValidError as exc:
        _refuse(text, str(exc).rstrip("."))
    address = f"{checked.local_part}@{checked.ascii_domain}".lower()
    if address.isascii():  # the letter encoder's own check, so it can never refuse it later
        try:
            safe_address(address, field="email")
        except HeaderError:
            _refuse(text, "the mailer cannot put this address in a message header")
    return address


def _refuse(text: str, reason: str) -> NoReturn:
    shown = text if len(text) <= 80 else text[:77] + "..."
    raise AddressError(f"{reason}: {shown!r}; {EXPECTED}", reason=reason[0].upper() + reason[1:])
