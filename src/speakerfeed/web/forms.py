"""Reading what a visitor sends: a size-capped form body, and who sent it (the client's address,
and the network a rate limit counts it in).

Forms are small, so the body is read whole but refused past MAX_FORM_BYTES before it is parsed;
both encodings browsers and mail providers use are accepted (RFC 8058's one-click POST is
``multipart/form-data`` in its example and urlencoded from some providers). A file part is refused.
"""

from __future__ import annotations

import ipaddress

import anyio
from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 50


class FormTooLargeError(Exception):
    pass


async def read_form(request: Request, *, deadline_seconds: float = 30.0) -> FormData:
    """The request's form fields; FormTooLargeError past the caps, TimeoutError when the body
    takes longer than ``deadline_seconds`` (a trickle would hold the connection), and
    ClientDisconnect passes on."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormTooLargeError
    chunks, size = [], 0
    with anyio.fail_after(deadline_seconds):
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                raise FormTooLargeError
            chunks.append(chunk)
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            raise ClientDisconnect
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    parsed = Request(request.scope, replay)
    form = await parsed.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FORM_BYTES)
    if any(isinstance(value, UploadFile) for value in form.values()):
        raise FormTooLargeError
    return form


def field(form: FormData, name: str) -> str:
    """A text field's value, "" when absent."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def client_ip(request: Request) -> str:
    """The client's address as uvicorn saw it (after trusted proxies' X-Forwarded-For)."""
    return request.client.host if request.client else ""


def client_network(request: Request, ipv6_prefix: int) -> str:
    """What a per-client rate limit counts: see ``network_of``."""
    return network_of(client_ip(request), ipv6_prefix)


def network_of(address: str, ipv6_prefix: int) -> str:
    """An IPv4 client by its address; an IPv6 client by its /``ipv6_prefix`` network, because one
    host is usually given a whole /64 and can pick a new address in it for every request. An
    IPv4-mapped IPv6 address (::ffff:192.0.2.1) is the IPv4 client it maps. Anything that is not
    an address (no client, a Unix socket) is counted as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, ipv6_prefix), strict=False))
    return str(ip)
