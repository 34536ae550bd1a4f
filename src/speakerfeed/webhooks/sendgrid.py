"""SendGrid's Event Webhook: verify the signature, parse the events, turn them into suppressions.

The body is untrusted until its signature checks out, so nothing parses it before then. SendGrid
signs ``timestamp + raw body`` with ECDSA P-256 / SHA-256; the signature (base64 DER) and the
timestamp arrive in headers, the public key (base64 DER SubjectPublicKeyInfo) in our settings.

Verification uses ``cryptography`` (OpenSSL underneath) rather than the ``sendgrid`` package's
EventWebhook helper: that one is built on starkbank-ecdsa, a pure-Python implementation that is
slow and makes no constant-time claims, while ``cryptography`` is maintained, audited and fast.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response

from speakerfeed.errors import (
    MalformedPayloadError,
    PayloadTooLargeError,
    SignatureError,
    StaleTimestampError,
    WebhookError,
)
from speakerfeed.store import memberships
from speakerfeed.store import subscribers as repo
from speakerfeed.store.webhook_events import claim_event

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

# SendGrid posts a batch every 30 s or at 768 KB, so these leave a wide margin while keeping a
# forged or broken request from costing much memory or time.
MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_EVENTS = 10_000
MAX_HEADER_CHARS = 200  # a DER P-256 signature is at most 72 bytes, 96 in base64
MAX_EVENT_ID_CHARS = 100  # webhook_events.event_id
MAX_EMAIL_CHARS = 320  # subscribers.email

# Event type -> suppression reason. "dropped" is decided by its reason (see _suppression_reason).
SUPPRESSING_EVENTS = {
    "bounce": "bounced",
    "dropped": "bounced",
    "spamreport": "complained",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
}
# SendGrid drops a message to an address it already knows bounced ("Bounced Address") or finds
# invalid ("Invalid"); other drop reasons (e.g. "Invalid SMTPAPI header", "Spam Content") are
# about our message, not the address, so they must not suppress anyone.
_ADDRESS_DROP = re.compile(r"^\s*(bounced address|invalid( (email )?address)?)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Event:
    email: str  # normalised
    event: str  # one of SUPPRESSING_EVENTS
    sg_event_id: str
    timestamp: int
    reason: str = ""  # "dropped" and "bounce" explain themselves here
    type: str = ""  # "bounce" events: "bounce" (permanent) or "blocked" (temporary)


@dataclass(slots=True)
class ApplyReport:
    suppressed: int = 0  # new suppressions written
    unsubscribed: int = 0  # subscriptions moved to unsubscribed
    duplicates: int = 0  # events already processed in an earlier delivery
    not_suppressing: int = 0  # known events that suppress nobody (blocked, other drops)


@functools.lru_cache(maxsize=8)
def load_public_key(public_key_b64: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key; anything but a P-256 public key is refused."""
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64.strip(), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise WebhookError(f"the SendGrid verification key is not a base64 DER key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise WebhookError("the SendGrid verification key is not an ECDSA P-256 public key")
    return key


def verify_signature(
    public_key_b64: str,
    signature_b64: str,
    timestamp: str,
    body: bytes,
    *,
    now: float,
    max_age: float = 300,
) -> None:
    """Raise a WebhookError unless ``body`` was signed by SendGrid within ``max_age`` of ``now``."""
    key = load_public_key(public_key_b64)
    if not signature_b64 or not timestamp:
        raise SignatureError("missing signature or timestamp header")
    if len(signature_b64) > MAX_HEADER_CHARS or len(timestamp) > MAX_HEADER_CHARS:
        raise SignatureError("signature or timestamp header too long")
    # isdigit alone admits non-ASCII digits; int() alone admits signs, spaces and underscores.
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise SignatureError("timestamp is not an integer")
    # Cheap check first, so a replayed old request costs no signature verification.
    if abs(now - int(timestamp)) > max_age:
        raise StaleTimestampError("timestamp is too old or in the future")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except binascii.Error as exc:
        raise SignatureError("signature is not base64") from exc
    try:
        key.verify(signature, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify") from exc


def parse_events(body: bytes) -> list[Event]:
    """The suppressing events in a verified body; other event types are skipped.

    Verified only means SendGrid sent it, so shapes and sizes are still checked: anything off
    is a MalformedPayloadError and nothing of the batch is applied.
    """
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLargeError("body too large")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise MalformedPayloadError("body is not JSON") from exc
    if not isinstance(data, list):
        raise MalformedPayloadError("expected a JSON array of events")
    if len(data) > MAX_EVENTS:
        raise PayloadTooLargeError(f"more than {MAX_EVENTS} events")
    events = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise MalformedPayloadError(f"event {index} is not an object")
        if item.get("event") in SUPPRESSING_EVENTS and (parsed := _event(index, item)):
            events.append(parsed)
    return events


def _event(index: int, item: dict[str, object]) -> Event | None:
    """The event, or None when its address is not one we could ever have stored."""
    email, kind, event_id, stamp = (
        item.get(k) for k in ("email", "event", "sg_event_id", "timestamp")
    )
    reason, bounce_type = item.get("reason", ""), item.get("type", "")
    if not isinstance(email, str) or len(email) > MAX_EMAIL_CHARS:
        raise MalformedPayloadError(f"event {index}: email must be an address")
    try:
        address = repo.normalise_email(email)
    except ValueError:
        # SendGrid itself reports sends to unusable addresses (dropped, reason "Invalid"): such
        # an event must not fail the whole batch, and there is nothing of ours to suppress.
        log.info("SendGrid event %d (%s) skipped: not an address", index, kind)
        return None
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID_CHARS:
        raise MalformedPayloadError(f"event {index}: sg_event_id must be a short string")
    # bool is an int subclass; True is not a timestamp.
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        raise MalformedPayloadError(f"event {index}: timestamp must be an integer")
    if not isinstance(reason, str) or not isinstance(bounce_type, str):
        raise MalformedPayloadError(f"event {index}: reason and type must be strings")
    assert isinstance(kind, str)  # the caller looked it up in SUPPRESSING_EVENTS
    return Event(address, kind, event_id, stamp, reason, bounce_type)


def _suppression_reason(event: Event) -> str | None:
    if event.event == "bounce" and event.type == "blocked":
        # A temporary refusal (often the receiver's view of our reputation), not a dead address.
        return None
    if event.event == "dropped" and not _ADDRESS_DROP.match(event.reason):
        return None
    return SUPPRESSING_EVENTS[event.event]


def apply_events(conn: Connection, events: Sequence[Event], *, secret: bytes) -> ApplyReport:
    """Suppress and unsubscribe per event, each event id once, in the caller's transaction."""
    report = ApplyReport()
    now = datetime.now(UTC)
    for event in events:
        reason = _suppression_reason(event)
        if reason is None:
            report.not_suppressing += 1
            continue
        # Claim the id first: the primary key makes a concurrent redelivery wait, then skip.
        if not claim_event(conn, event.sg_event_id, now):
            report.duplicates += 1
            continue
        if repo.suppress(conn, repo.address_hash(secret, event.email), reason):
            report.suppressed += 1
        report.unsubscribed += _unsubscribe_everywhere(conn, event)
    return report


def _unsubscribe_everywhere(conn: Connection, event: Event) -> int:
    subscriber = repo.find_by_email(conn, event.email)
    if subscriber is None:
        return 0
    lists = memberships.lists_not_left(conn, subscriber.id)
    # The consent record is the evidence of why the subscription ended, and when.
    consent = {"action": f"sendgrid_{event.event}"}
    return sum(
        repo.set_status(conn, subscriber.id, name, "unsubscribed", consent=consent)
        for name in lists
    )


async def _read_body(request: Request) -> bytes:
    """The raw body, refused as soon as it passes MAX_BODY_BYTES rather than read to the end."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLargeError("body too large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLargeError("body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def sendgrid_events_endpoint(
    engine: Engine,
    public_key_b64: str,
    secret: bytes,
    *,
    clock: Callable[[], float] = time.time,
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint for SendGrid's Event Webhook (mount it with ``methods=["POST"]``).

    204 once the batch is applied; 401/403/413/400 with a one-line message otherwise. The key is
    checked now, so a bad setting fails at start-up rather than on the first delivery.
    """
    load_public_key(public_key_b64)
    if not secret:
        raise ValueError("an empty secret would make address hashes guessable")

    def apply(body: bytes) -> ApplyReport:
        events = parse_events(body)
        with engine.begin() as conn:
            return apply_events(conn, events, secret=secret)

    async def endpoint(request: Request) -> Response:
        signature = request.headers.get(SIGNATURE_HEADER, "")
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        try:
            if not signature or not timestamp:
                # Before reading a byte of the body: an unsigned request gets nothing from us.
                raise SignatureError("missing signature or timestamp header")
            body = await _read_body(request)
            verify_signature(public_key_b64, signature, timestamp, body, now=clock())
            report = await run_in_threadpool(apply, body)
        except WebhookError as exc:
            log.warning("SendGrid webhook refused (%d): %s", exc.status, exc)
            return PlainTextResponse(str(exc), status_code=exc.status)
        except ClientDisconnect:
            return Response(status_code=400)
        except SQLAlchemyError:
            # A 5xx makes SendGrid retry later; the details go to our log, not to the caller.
            log.exception("SendGrid webhook could not be applied")
            return PlainTextResponse("store unavailable", status_code=503)
        log.info("SendGrid webhook applied: %s", report)
        return Response(status_code=204)

    return endpoint
