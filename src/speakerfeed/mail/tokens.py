"""Signed tokens for the links in emails: unsubscribe, preferences and confirm.

A token is ``payload.mac``, both URL-safe base64 without padding (so a token needs no escaping in
a URL, in HTML or in a mailto subject). The payload holds the expiry time (empty: never expires)
and the subscriber id; the MAC also covers the purpose and the list, so a token made for one
purpose or one list is worthless for another, and nothing needs storing on the server.

The MAC is HMAC-SHA256 truncated to 128 bits: RFC 2104 (section 5) allows truncating to half the
hash output, and it keeps the links (and the List-Unsubscribe header) short.

``Signer`` makes the same tokens as ``sign`` for one list, many times over (two per recipient of
a send): the checks are done once, and each purpose's HMAC is keyed and fed the purpose and list
once (``KeyedHmac``), then copied per token: less time than ``hmac.digest``, which sets the key
up every time.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import time

from speakerfeed.config.secret_key import MIN_SECRET_BYTES

PURPOSES = frozenset({"unsubscribe", "preferences", "confirm"})
MAX_TOKEN_CHARS = 2048  # verify() gets tokens from URLs: refuse silly sizes before any work

_MAC_BYTES = 16
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_URLSAFE_TEXT = re.compile(r"[A-Za-z0-9_-]+")
_BLOCK = 64  # SHA-256's block size, in bytes
_IPAD = bytes(byte ^ 0x36 for byte in range(256))  # translate tables: XOR each byte (RFC 2104)
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


def sign(
    secret: bytes, purpose: str, subscriber_id: str, list_name: str, expires: int | None = None
) -> str:
    """A token for ``subscriber_id`` on ``list_name``, valid for ``purpose`` until ``expires``
    (seconds since the epoch; None: for ever, as unsubscribe links must keep working)."""
    _check(secret, purpose, list_name)
    if not subscriber_id:
        raise ValueError("a token needs a subscriber id")
    if expires is not None and expires < 0:
        raise ValueError(f"expires must be a time in seconds since the epoch, got {expires}")
    payload = f"{'' if expires is None else expires}.{subscriber_id}".encode()
    mac = hmac.digest(secret, _signed(purpose, list_name, payload), "sha256")[:_MAC_BYTES]
    return f"{_encode(payload)}.{_encode(mac)}"


class KeyedHmac:
    """HMAC-SHA256 (RFC 2104) of ``prefix + message`` for one key and prefix, many times over.

    The key's inner and outer hash states (and the prefix) are computed once and copied per
    message: the hashlib copies cost less than ``hmac.digest`` (which keys OpenSSL's HMAC
    afresh each time) and ``hmac.HMAC.copy`` (Python wrapping the same C calls), for the two
    tokens of every recipient of a send.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, prefix: bytes = b"") -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD) + prefix)
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def __repr__(self) -> str:  # never the key
        return "<KeyedHmac>"

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class Signer:
    """Never-expiring tokens for one secret key and list, one per purpose, as ``sign`` makes."""

    __slots__ = ("_keyed",)

    def __init__(self, secret: bytes, list_name: str, purposes: tuple[str, ...]) -> None:
        for purpose in purposes:
            _check(secret, purpose, list_name)
        self._keyed = tuple(
            KeyedHmac(secret, _signed(purpose, list_name, b"")) for purpose in purposes
        )

    def __repr__(self) -> str:  # never the key
        return f"<Signer of {len(self._keyed)} purposes>"

    def sign(self, subscriber_id: str) -> tuple[str, ...]:
        """A token per purpose (in the order given) for ``subscriber_id``."""
        if not subscriber_id:
            raise ValueError("a token needs a subscriber id")
        payload = f".{subscriber_id}".encode()  # no expiry: nothing before the "."
        encoded = _encode(payload) + "."
        return tuple([encoded + _encode_mac(keyed.digest(payload)) for keyed in self._keyed])


def verify(
    secret: bytes, token: str, purpose: str, *, list_name: str, now: float | None = None
) -> str | None:
    """The subscriber id the token was signed for, or None when it is not a valid, unexpired
    token for this purpose and list."""
    _check(secret, purpose, list_name)
    if len(token) > MAX_TOKEN_CHARS:
        return None
    encoded_payload, dot, encoded_mac = token.partition(".")
    payload = _decode(encoded_payload)
    mac = _decode(encoded_mac)
    if not dot or payload is None or mac is None:
        return None
    expected = hmac.digest(secret, _signed(purpose, list_name, payload), "sha256")[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        return None
    # Signed by us, so well formed: "<expiry digits or nothing>.<subscriber id>".
    expiry, _, subscriber_id = payload.decode().partition(".")
    if expiry and int(expiry) <= (time.time() if now is None else now):
        return None
    return subscriber_id


def _check(secret: bytes, purpose: str, list_name: str) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the secret key must be at least {MIN_SECRET_BYTES} bytes")
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}; expected one of {sorted(PURPOSES)}")
    if not list_name or "\0" in list_name:
        raise ValueError(f"expected a list name, got {list_name!r}")


def _signed(purpose: str, list_name: str, payload: bytes) -> bytes:
    # NUL separates the fields: neither a purpose nor a list name can hold one (see _check), and
    # the payload comes last, so no two (purpose, list, payload) give the same bytes.
    return f"{purpose}\0{list_name}\0".encode() + payload


def _encode(data: bytes) -> str:
    # binascii plus translate is faster than base64.urlsafe_b64encode.
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def _encode_mac(digest: bytes) -> str:
    """``_encode(digest[:_MAC_BYTES])``: 16 bytes are always 22 characters and "==", so the
    padding is cut off by length (a sign() per recipient of a send)."""
    return (
        binascii.b2a_base64(digest[:_MAC_BYTES], newline=False)[:22].translate(_TO_URLSAFE).decode()
    )


def _decode(text: str) -> bytes | None:
    if not _URLSAFE_TEXT.fullmatch(text):
        return None
    raw = text.encode().translate(_FROM_URLSAFE)
    try:
        data = binascii.a2b_base64(raw + b"=" * (-len(raw) % 4), strict_mode=True)
    except binascii.Error:
        return None
    # Only the one canonical spelling is accepted: base64 ignores some trailing bits, and a
    # tampered token must not pass by flipping them.
    return data if _encode(data) == text else None
