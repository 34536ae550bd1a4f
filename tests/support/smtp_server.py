"""A real SMTP server (aiosmtpd, in a thread) on 127.0.0.1, for tests of the SMTP transport.

``tls_files`` makes a self-signed certificate for localhost and 127.0.0.1 with ``cryptography``;
``running_smtp_server`` serves with STARTTLS required and AUTH (LOGIN, PLAIN) required after it,
or with TLS from the start, or plain. It records every message it accepts and counts the TCP
connections made to it. ``script`` makes it answer a given MAIL, RCPT or end of DATA with a
given reply (421 closes the connection after it, as servers do), or with ``DROP``: the
connection closed without an answer. With ``holds_refused=True`` it behaves as some servers do
after a 5xx at the end of DATA: the refused transaction stays open until RSET, so a next MAIL
without one gets "503 Error: nested MAIL command".
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DROP = "drop"  # a scripted answer: close the connection without a word
USERNAME = "speakerfeed"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True, slots=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # as the client sent it, dot-stuffing undone, CRLF line endings
    connection: int  # which TCP connection (1, 2, ...) carried it
    user: str  # the AUTH user, or ""


def tls_files(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files: a self-signed EC certificate for localhost and 127.0.0.1,
    which a client may also use as its CA file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class SmtpServer:
    """What the running server saw, and what it is told to answer."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.connections = 0
        self.auth_failures = 0
        self._scripts: dict[tuple[str, str], list[str]] = {}
        self._lock = threading.Lock()
        self._live: list[SMTP] = []
        self.holds_refused = False  # a 5xx at the end of DATA leaves the transaction open
        self.host = "127.0.0.1"
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None

    def script(self, stage: str, address: str, *replies: str) -> None:
        """Answer the next ``len(replies)`` ``stage`` commands ("MAIL", "RCPT" or "DATA", the
        end of the message) for ``address`` (the sender for MAIL, else the recipient) with
        these replies, one each, then as usual."""
        assert stage in ("MAIL", "RCPT", "DATA")
        with self._lock:
            self._scripts.setdefault((stage, address), []).extend(replies)

    def drop_connections(self) -> None:
        """Close every open client connection, as a server does with idle ones."""
        assert self.loop is not None
        done = threading.Event()

        def close_all() -> None:
            for protocol in self._live:
                if protocol.transport is not None:
                    protocol.transport.close()
            done.set()

        self.loop.call_soon_threadsafe(close_all)
        assert done.wait(5)

    def recipients(self) -> list[str]:
        with self._lock:
            return [address for message in self.messages for address in message.rcpt_tos]

    def _take(self, stage: str, address: str) -> str | None:
        with self._lock:
            replies = self._scripts.get((stage, address))
            return replies.pop(0) if replies else None

    def _connected(self, protocol: SMTP) -> int:
        with self._lock:
            self.connections += 1
            self._live.append(protocol)
            return self.connections

    def _record(self, message: Received) -> int:
        with self._lock:
            self.messages.append(message)
            return len(self.messages)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook names
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        scripted = self._scripted(smtp, "MAIL", address)
        if scripted is not None:
            return scripted
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        scripted = self._scripted(smtp, "RCPT", address)
        if scripted is not None:
            return scripted
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, smtp: SMTP, session: Session, envelope: Envelope
    ) -> str:
        scripted = self._scripted(smtp, "DATA", envelope.rcpt_tos[0])
        if scripted is not None:
            return scripted
        content = envelope.original_content
        assert isinstance(content, bytes)
        auth = session.auth_data
        number = self.server._record(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=content,
                connection=getattr(smtp, "connection_number", 0),
                user=auth.login.decode() if isinstance(auth, LoginPassword) else "",
            )
        )
        return f"250 2.0.0 Ok: queued as Q{number:04d}"

    def _scripted(self, smtp: SMTP, stage: str, address: str) -> str | None:
        reply = self.server._take(stage, address)
        if reply is None:
            return None
        transport = smtp.transport
        assert transport is not None
        if reply == DROP:
            transport.close()  # the answer pushed after this goes nowhere
            return "250 never seen"
        if reply.startswith("421"):
            asyncio.get_running_loop().call_soon(transport.close)  # after the reply is out
        if stage == "DATA" and reply.startswith("5") and isinstance(smtp, _CountedSMTP):
            smtp.holding = self.server.holds_refused
        return reply


class _CountedSMTP(SMTP):
    connection_number = 0  # which TCP connection of the server's this is
    holding = False  # a refused transaction kept open (SmtpServer.holds_refused) until RSET

    def _set_post_data_state(self) -> None:
        if not self.holding:
            super()._set_post_data_state()  # type: ignore[no-untyped-call]

    def _set_rset_state(self) -> None:
        self.holding = False
        super()._set_rset_state()  # type: ignore[no-untyped-call]


class _Controller(Controller):
    """aiosmtpd's threaded controller, on a free port, counting connections."""

    def __init__(self, server: SmtpServer, **kwargs: Any) -> None:
        super().__init__(_Handler(server), hostname="127.0.0.1", port=0, **kwargs)
        self.recorder = server

    def factory(self) -> SMTP:  # called once per TCP connection, as Controller.factory is
        protocol = _CountedSMTP(self.handler, **self.SMTP_kwargs)
        protocol.connection_number = self.recorder._connected(protocol)
        return protocol

    def _trigger_server(self) -> None:
        # Port 0 lets the OS choose: read the port it chose before connecting to it.
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


def _authenticate(
    smtp: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


@contextmanager
def running_smtp_server(
    certificate: tuple[Path, Path] | None,
    *,
    mode: str = "starttls",
    auth: bool = True,
    holds_refused: bool = False,
) -> Iterator[SmtpServer]:
    """A started server; ``mode``: "starttls" (required), "tls" (from the start) or "none";
    ``holds_refused``: see the module's docstring."""
    server = SmtpServer()
    server.holds_refused = holds_refused
    context = None
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
    kwargs: dict[str, Any] = {"server_hostname": "localhost", "ready_timeout": 10.0}
    if mode == "starttls":
        kwargs |= {"tls_context": context, "require_starttls": True}
    elif mode == "tls":
        kwargs |= {"ssl_context": context}
    if auth:  # over TLS only: aiosmtpd warns against AUTH in clear
        assert mode != "none"
        kwargs["authenticator"] = _authenticate
        if mode == "starttls":
            kwargs["auth_required"] = True
        else:  # aiosmtpd cannot tell TLS from the start from none: it must not insist
            kwargs["auth_require_tls"] = False
    controller = _Controller(server, **kwargs)
    controller.start()
    server.port, server.loop = controller.port, controller.loop
    with server._lock:  # forget the controller's own start-up connection
        server.connections, server._live = 0, []
    try:
        yield server
    finally:
        controller.stop()
