"""SendGrid's Event Webhook: signed like SendGrid signs, posted to the endpoint, applied once."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
from collections.abc import Iterator, MutableMapping
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Connection, Engine, func, select
from starlette.applications import Starlette
from starlette.routing import Route

from speakerfeed.errors import (
    MalformedPayloadError,
    PayloadTooLargeError,
    SignatureError,
    StaleTimestampError,
    WebhookError,
)
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import upgrade
from speakerfeed.store.schema import consent_records, subscriptions, suppressions, webhook_events
from speakerfeed.webhooks import apply_events, parse_events, verify_signature
from speakerfeed.webhooks.sendgrid import (
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sendgrid_events_endpoint,
)
from tests.support.asgi_server import running

NOW = 1_790_000_000
SECRET = b"test-secret-for-address-hashes"
PATH = "/webhooks/sendgrid"


@pytest.fixture(scope="module")
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def sign(
    key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: int | str = NOW
) -> dict[str, str]:
    """The two headers SendGrid sends: ECDSA P-256/SHA-256 over timestamp + body, DER, base64."""
    signature = key.sign(str(timestamp).encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    return {
        SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
        TIMESTAMP_HEADER: str(timestamp),
    }


def event(email: object, kind: str, event_id: object, **extra: Any) -> dict[str, Any]:
    # object, not str: the malformed-body tests pass wrong types on purpose.
    return {"email": email, "event": kind, "sg_event_id": event_id, "timestamp": NOW, **extra}


def app_for(engine: Engine, key: ec.EllipticCurvePrivateKey) -> Starlette:
    endpoint = sendgrid_events_endpoint(engine, public_b64(key), SECRET, clock=lambda: NOW)
    return Starlette(routes=[Route(PATH, endpoint, methods=["POST"])])


@pytest.fixture
def store(engine: Engine) -> Engine:
    upgrade(engine)
    return engine


def confirmed(conn: Connection, email: str, *lists: str) -> str:
    subscriber_id = repo.add_subscriber(conn, email)
    for name in lists:
        repo.subscribe(conn, subscriber_id, name, status="confirmed", consent={"action": "test"})
    return subscriber_id


def statuses(conn: Connection, subscriber_id: str) -> dict[str, str]:
    rows = conn.execute(
        select(subscriptions.c.list_name, subscriptions.c.status).where(
            subscriptions.c.subscriber_id == subscriber_id
        )
    )
    return {row.list_name: row.status for row in rows}


def suppressed(conn: Connection) -> dict[str, str]:
    rows = conn.execute(select(suppressions.c.address_hash, suppressions.c.reason))
    return {row.address_hash: row.reason for row in rows}


def count(conn: Connection, table: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def h(email: str) -> str:
    return repo.address_hash(SECRET, email)


# --- verify_signature -----------------------------------------------------------------------


def test_verify_signature_accepts_what_sendgrid_signs(
    private_key: ec.EllipticCurvePrivateKey,
) -> None:
    body = b'[{"event":"open"}]'
    headers = sign(private_key, body, NOW - 299)
    signature = headers[SIGNATURE_HEADER]
    key = public_b64(private_key)
    verify_signature(key, signature, str(NOW - 299), body, now=NOW)  # raises on any failure
    # The same signature must not check out for one changed byte: the pass above was no accident.
    with pytest.raises(WebhookError):
        verify_signature(key, signature, str(NOW - 299), body + b" ", now=NOW)


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("tampered body", SignatureError),
        ("tampered signature", SignatureError),
        ("another key", SignatureError),
        ("signature not base64", SignatureError),
        ("missing signature", SignatureError),
        ("missing timestamp", SignatureError),
        ("timestamp not an integer", SignatureError),
        ("timestamp with a sign", SignatureError),
        ("stale timestamp", StaleTimestampError),
        ("future timestamp", StaleTimestampError),
    ],
)
def test_verify_signature_refuses(
    private_key: ec.EllipticCurvePrivateKey, case: str, error: type[WebhookError]
) -> None:
    body = b'[{"event":"bounce"}]'
    timestamp = {"stale timestamp": NOW - 301, "future timestamp": NOW + 301}.get(case, NOW)
    key = ec.generate_private_key(ec.SECP256R1()) if case == "another key" else private_key
    signature = sign(key, body, timestamp)[SIGNATURE_HEADER]
    stamp = str(timestamp)
    if case == "tampered body":
        body = body.replace(b"bounce", b"bounced")
    elif case == "tampered signature":
        raw = bytearray(base64.b64decode(signature))
        raw[-1] ^= 1
        signature = base64.b64encode(bytes(raw)).decode("ascii")
    elif case == "signature not base64":
        signature = "%%%" + signature
    elif case == "missing signature":
        signature = ""
    elif case == "missing timestamp":
        stamp = ""
    elif case == "timestamp not an integer":
        stamp = f"{NOW}.0"
    elif case == "timestamp with a sign":
        stamp = f"+{NOW}"
    with pytest.raises(error):
        verify_signature(public_b64(private_key), signature, stamp, body, now=NOW)


def test_a_key_that_is_not_p256_is_refused() -> None:
    with pytest.raises(WebhookError, match="base64 DER"):
        verify_signature("not a key", "c2ln", str(NOW), b"[]", now=NOW)
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(WebhookError, match="P-256"):
        verify_signature(public_b64(p384), "c2ln", str(NOW), b"[]", now=NOW)


# --- parse_events ---------------------------------------------------------------------------


def test_parse_events_keeps_suppressing_events_and_skips_others() -> None:
    body = json.dumps(
        [
            event("Ann@Example.org ", "bounce", "e1", reason="550 no such user", type="bounce"),
            event("bob@example.org", "open", "e2"),
            {"event": "click"},  # unknown types are not validated, only skipped
            event("cy@example.org", "group_unsubscribe", "e3"),
            # SendGrid reports its own drops of unusable addresses: skipped, not a bad batch.
            {"email": "not an address", "event": "dropped", "reason": "Invalid"},
        ]
    ).encode()
    events = parse_events(body)
    assert [(e.email, e.event, e.sg_event_id) for e in events] == [
        ("ann@example.org", "bounce", "e1"),
        ("cy@example.org", "group_unsubscribe", "e3"),
    ]
    assert events[0].reason == "550 no such user"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"event": "bounce"}',
        b"[1]",
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps([event("a@example.org", "bounce", 7)]).encode(),
        json.dumps([event("a@example.org", "bounce", "x" * 101)]).encode(),
        json.dumps([event("a@example.org", "bounce", "e1", timestamp="1")]).encode(),
        json.dumps([event("a@example.org", "bounce", "e1", timestamp=True)]).encode(),
        json.dumps([event(["a@example.org"], "bounce", "e1")]).encode(),
        json.dumps([event("a@example.org", "dropped", "e1", reason=5)]).encode(),
        b"\xff\xfe[",
    ],
)
def test_parse_events_refuses_malformed_bodies(body: bytes) -> None:
    with pytest.raises(MalformedPayloadError):
        parse_events(body)


def test_parse_events_caps_size_and_count() -> None:
    with pytest.raises(PayloadTooLargeError):
        parse_events(b" " * (MAX_BODY_BYTES + 1))
    with pytest.raises(PayloadTooLargeError):
        parse_events(b"[" + b"{}," * 10_000 + b"{}]")


# --- apply_events ---------------------------------------------------------------------------


def test_apply_events_suppresses_unsubscribes_and_is_idempotent(store: Engine) -> None:
    events = parse_events(
        json.dumps(
            [
                event("ann@example.org", "bounce", "b1", type="bounce"),
                event("bob@example.org", "spamreport", "s1"),
                event("cy@example.org", "unsubscribe", "u1"),
                event("dee@example.org", "dropped", "d1", reason="Bounced Address"),
                event("eve@example.org", "dropped", "d2", reason="Invalid SMTPAPI header"),
                event("fay@example.org", "bounce", "b2", type="blocked"),
                event("gus@example.org", "group_unsubscribe", "g1"),
            ]
        ).encode()
    )
    with store.begin() as conn:
        ann = confirmed(conn, "ann@example.org", "daily", "weekly")
        eve = confirmed(conn, "eve@example.org", "daily")
        fay = confirmed(conn, "fay@example.org", "daily")
        report = apply_events(conn, events, secret=SECRET)
    assert (report.suppressed, report.unsubscribed, report.duplicates) == (5, 2, 0)
    assert report.not_suppressing == 2
    with store.connect() as conn:
        assert suppressed(conn) == {
            h("ann@example.org"): "bounced",
            h("bob@example.org"): "complained",
            h("cy@example.org"): "unsubscribed",
            h("dee@example.org"): "bounced",
            h("gus@example.org"): "unsubscribed",
        }
        assert statuses(conn, ann) == {"daily": "unsubscribed", "weekly": "unsubscribed"}
        assert statuses(conn, eve) == statuses(conn, fay) == {"daily": "confirmed"}
        actions = conn.execute(
            select(consent_records.c.action).where(consent_records.c.subscriber_id == ann)
        ).scalars()
        assert sorted(actions) == ["sendgrid_bounce", "sendgrid_bounce", "test", "test"]

    # Ann subscribes again; a redelivery of the old bounce must not take her off again.
    with store.begin() as conn:
        repo.set_status(conn, ann, "daily", "confirmed")
        before = (suppressed(conn), count(conn, consent_records), count(conn, webhook_events))
        again = apply_events(conn, events, secret=SECRET)
    assert (again.suppressed, again.unsubscribed, again.duplicates) == (0, 0, 5)
    with store.connect() as conn:
        assert statuses(conn, ann) == {"daily": "confirmed", "weekly": "unsubscribed"}
        after = (suppressed(conn), count(conn, consent_records), count(conn, webhook_events))
        assert after == before


# --- the endpoint ---------------------------------------------------------------------------


@pytest.fixture
def client(store: Engine, private_key: ec.EllipticCurvePrivateKey) -> Iterator[httpx.Client]:
    """An HTTP client for uvicorn serving the endpoint on a free 127.0.0.1 port, in a thread."""
    with (
        running(app_for(store, private_key)) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        yield http


def post(client: httpx.Client, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return client.post(PATH, content=body, headers={"content-type": "application/json", **headers})


def test_good_delivery_answers_204_and_applies(
    client: httpx.Client, store: Engine, private_key: ec.EllipticCurvePrivateKey
) -> None:
    with store.begin() as conn:
        ann = confirmed(conn, "ann@example.org", "daily")
    body = json.dumps([event("ann@example.org", "bounce", "b1", type="bounce")]).encode()
    response = post(client, body, sign(private_key, body))
    assert response.status_code == 204
    assert response.content == b""
    with store.connect() as conn:
        assert suppressed(conn) == {h("ann@example.org"): "bounced"}
        assert statuses(conn, ann) == {"daily": "unsubscribed"}


def test_duplicate_delivery_changes_nothing(
    client: httpx.Client, store: Engine, private_key: ec.EllipticCurvePrivateKey
) -> None:
    with store.begin() as conn:
        ann = confirmed(conn, "ann@example.org", "daily")
    body = json.dumps([event("ann@example.org", "unsubscribe", "u1")]).encode()
    assert post(client, body, sign(private_key, body)).status_code == 204
    with store.begin() as conn:
        repo.set_status(conn, ann, "daily", "confirmed")  # she came back
        before = (suppressed(conn), count(conn, consent_records), count(conn, webhook_events))
    # SendGrid retries with a fresh timestamp and signature but the same event ids.
    assert post(client, body, sign(private_key, body, NOW + 30)).status_code == 204
    with store.connect() as conn:
        assert statuses(conn, ann) == {"daily": "confirmed"}
        assert (suppressed(conn), count(conn, consent_records), count(conn, webhook_events)) == (
            before
        )


def _refused(client: httpx.Client, store: Engine, body: bytes, headers: dict[str, str]) -> int:
    """POST, check nothing was applied and the answer is short plain text; return the status."""
    response = post(client, body, headers)
    assert response.headers["content-type"].startswith("text/plain")
    assert len(response.text) < 100
    assert "Traceback" not in response.text
    with store.connect() as conn:
        assert count(conn, suppressions) == count(conn, webhook_events) == 0
    return response.status_code


BOUNCE = json.dumps([event("ann@example.org", "bounce", "b1", type="bounce")]).encode()


def test_tampered_body_is_401(
    client: httpx.Client, store: Engine, private_key: ec.EllipticCurvePrivateKey
) -> None:
    tampered = BOUNCE.replace(b"ann@", b"bob@")
    assert _refused(client, store, tampered, sign(private_key, BOUNCE)) == 401


def test_tampered_signature_is_401(
    client: httpx.Client, store: Engine, private_key: ec.EllipticCurvePrivateKey
) -> None:
    headers = sign(private_key, BOUNCE)
    raw = bytearray(base64.b64decode(headers[SIGNATURE_HEADER]))
    raw[10] ^= 0x40
    headers[SIGNATURE_HEADER] = base64.b64encode(bytes(raw)).decode("ascii")
    assert _refused(client, store, BOUNCE, headers) == 401


def test_signature_from_another_key_is_401(client: httpx.Client, store: Engine) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    assert _refused(client, store, BOUNCE, sign(other, BOUNCE)) == 401


@pytest.mark.parametrize("offset", [-301, -3600, 301])
def test_stale_or_future_timestamp_is_403(
    client: httpx.Client, store: Engine, private_key: ec.EllipticCurvePrivateKey, offset: int
) -> None:
    assert _refused(client, store, BOUNCE, sign(private_key, BOUNCE, NOW + offset)) == 403


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER])
def test_missing_header_is_401(
    client: httpx.Client, store: Engine, private_key: ec.EllipticCurvePrivateKey, missing: str
) -> None:
    headers = sign(private_key, BOUNCE)
    del headers[missing]
    assert _refused(client, store, BOUNCE, headers) == 401


@pytest.mark.parametrize(
    "body",
    [
        b'[{"email": "ann@example.org", "event": "bounce"',
        # A good event then a broken one: the batch is all or nothing.
        json.dumps(
            [event("ann@example.org", "bounce", "b1"), event("bob@example.org", "bounce", None)]
        ).encode(),
    ],
)
def test_malformed_body_with_a_valid_signature_is_400(
    client: httpx.Client, store: Engine, private_key: ec.EllipticCurvePrivateKey, body: bytes
) -> None:
    assert _refused(client, store, body, sign(private_key, body)) == 400


# --- the body cap, at the ASGI level so the bytes actually read can be counted ----------------


def _post_stream(app: Starlette, headers: dict[str, str], declared: int | None) -> tuple[int, int]:
    """POST an endless 64 KiB-chunked body; return (status, bytes the app pulled)."""
    chunk = b" " * 65536
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if declared is not None:
        raw.append((b"content-length", str(declared).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    # In a thread of its own: Playwright's sync API may already run an event loop in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    return sent[0]["status"], pulled


@pytest.mark.parametrize("declared", [MAX_BODY_BYTES + 1, None])
def test_oversized_body_is_413_without_reading_it_all(
    tmp_path: Any, private_key: ec.EllipticCurvePrivateKey, declared: int | None
) -> None:
    from speakerfeed.store.engine import engine_for_url

    made = engine_for_url(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    try:
        status, pulled = _post_stream(
            app_for(made, private_key), sign(private_key, b"[]"), declared
        )
    finally:
        made.dispose()
    assert status == 413
    # Declared too large: refused before the first byte; streamed: just past the cap.
    assert pulled == (0 if declared else MAX_BODY_BYTES + 65536)


def test_a_forged_batch_then_the_real_one(
    client: httpx.Client, store: Engine, private_key: ec.EllipticCurvePrivateKey
) -> None:
    forged = json.dumps([event("bob@example.org", "spamreport", "s1")]).encode()
    other = ec.generate_private_key(ec.SECP256R1())
    refused = post(client, forged, sign(other, forged))
    assert (refused.status_code, refused.text) == (401, "signature does not verify")
    assert post(client, BOUNCE, sign(private_key, BOUNCE)).status_code == 204
    with store.connect() as conn:
        assert suppressed(conn) == {h("ann@example.org"): "bounced"}
