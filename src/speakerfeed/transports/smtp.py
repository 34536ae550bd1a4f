"""A transport that sends over SMTP (smtplib), each connection reused for many messages.

A batch's messages are shared out over a small pool of connections (``pool_size``, one thread
each). A connection is opened when first needed (TLS from the start, or STARTTLS, or neither for
a relay on this machine; then AUTH when a username is set), checked with NOOP when it has been
idle, replaced after ``messages_per_connection`` messages, and closed with QUIT by ``close``.

What a failure means depends on when it happens:

* before the server has the whole message (a 4xx to MAIL, RCPT or DATA, a lost connection, a
  failed connect): nothing was accepted, so the message is retried, with a doubling wait between
  rounds, up to ``max_retries`` times, and then reported DEFERRED;
* a 5xx: FAILED; a 550/551/553 to RCPT (or an enhanced status 5.1.x, 5.2.1) refuses the address
  itself, a hard bounce; the connection is reset (RSET) before the next message, so that a
  server which holds a refused transaction open charges no other recipient with it (a 503 to
  MAIL, the server lost track of the session, is tried again on a fresh connection);
* the connection lost (or timed out) after the message's final "." and before the server's
  reply: the server may have accepted it, so it is UNKNOWN and never resent.

The AUTH password comes from an environment variable (see ``SmtpTransport.from_settings``).
A refused AUTH, or TLS that cannot be set up, stops the batch: what was not sent is DEFERRED.

Each connection's session, and what its replies mean, is speakerfeed.transports.smtp_session.
"""

from __future__ import annotations

import functools
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from speakerfeed.config.delivery import SmtpSettings
from speakerfeed.errors import SpeakerfeedError, TransportError
from speakerfeed.mail.mime import BatchTemplate
from speakerfeed.models import Batch, DeliveryResult, Outcome, Recipient
from speakerfeed.transports.base import Transport
from speakerfeed.transports.smtp_session import (
    NOOP_AFTER_IDLE_SECONDS,
    Connection,
    Retry,
    SessionError,
)

__all__ = ["MAX_RETRY_DELAY_SECONDS", "NOOP_AFTER_IDLE_SECONDS", "SmtpTransport"]

log = logging.getLogger(__name__)
MAX_RETRY_DELAY_SECONDS = 300.0


@functools.cache
def system_ssl_context() -> ssl.SSLContext:
    """The system's CAs, loaded once per process and shared (an SSLContext is safe to share
    between threads): loading them took 110-270 ms of CPU, and the sign-up page makes a
    transport for every confirmation email (bench/load.py)."""
    return ssl.create_default_context()


class SmtpTransport(Transport):
    name = "smtp"

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        password: str = "",
        ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``password``: for AUTH (from_settings reads it from the environment);
        ``ssl_context``: how the server's certificate is checked (default: the system's CAs);
        ``sleep`` and ``clock``: for tests."""
        self.settings = settings
        self._password = password
        self._context = ssl_context or system_ssl_context()
        self.sleep = sleep
        self._clock = clock
        self.connections: list[Connection] = []
        self.executor: ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(
        cls, settings: SmtpSettings, root: Path, environ: Mapping[str, str]
    ) -> SmtpTransport:
        """The transport for [delivery.smtp]: the password from the environment variable the
        settings name, the CA file relative to ``root``. TransportError when either is missing."""
        password = ""
        if settings.username:
            password = environ.get(settings.password_env, "")
            if not password:
                raise TransportError(
                    f"SMTP AUTH as {settings.username!r} needs a password: set the environment "
                    f"variable {settings.password_env} (named by delivery.smtp.password_env)"
                )
        context = None
        if settings.ca_file:
            ca_file = root / settings.ca_file
            try:
                context = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise TransportError(
                    f"delivery.smtp.ca_file: cannot load {ca_file}: {exc}"
                ) from None
        return cls(settings, password=password, ssl_context=context)

    def open(self) -> None:
        if self.connections:
            return
        self.connections = [
            Connection(self.settings, self._password, self._context, self._clock)
            for _ in range(self.settings.pool_size)
        ]
        if self.settings.pool_size > 1:
            self.executor = ThreadPoolExecutor(self.settings.pool_size, "speakerfeed-smtp")

    def close(self) -> None:
        connections, self.connections = self.connections, []
        executor, self.executor = self.executor, None
        if executor is not None:
            executor.shutdown()
        for connection in connections:
            connection.close()

    def send(self, batch: Batch) -> list[DeliveryResult]:
        template = BatchTemplate.build(batch)
        opened_here = not self.connections
        self.open()
        try:
            return _Delivery(self, template, batch.recipients).run()
        finally:
            if opened_here:
                self.close()


class _Delivery:
    """One batch over the pool: rounds of attempts, a wait before each retry round."""

    def __init__(
        self,
        transport: SmtpTransport,
        template: BatchTemplate,
        recipients: Sequence[Recipient],
    ) -> None:
        self.settings = transport.settings
        self.connections = transport.connections
        self.executor = transport.executor
        self.sleep = transport.sleep
        self.template = template
        self.recipients = recipients
        self.results: list[DeliveryResult | None] = [None] * len(recipients)
        self.details: dict[int, str] = {}  # why each unfinished message is not sent yet
        self.session_error = ""  # the last connection that could not be made, and why
        self.stopped = False  # a session error no retry can mend: the batch stops
        self._lock = threading.Lock()

    def run(self) -> list[DeliveryResult]:
        pending = list(range(len(self.recipients)))
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                delay = self.settings.retry_delay_seconds * 2.0 ** (attempt - 1)
                self.sleep(min(delay, MAX_RETRY_DELAY_SECONDS))
            self._round(pending)
            pending = [index for index in pending if self.results[index] is None]
            if not pending or self.stopped:
                break
        return [result or self._deferred(index) for index, result in enumerate(self.results)]

    def _deferred(self, index: int) -> DeliveryResult:
        if self.stopped:
            detail = self.session_error
        else:
            detail = self.details.get(index) or self.session_error or "not sent"
        return DeliveryResult(self.recipients[index].key, Outcome.DEFERRED, detail)

    def _round(self, pending: list[int]) -> None:
        work = iter(pending)
        connections = self.connections[: len(pending)]
        if not connections:
            return
        if self.executor is None or len(connections) == 1:
            self._work(connections[0], work)
            return
        futures = [self.executor.submit(self._work, connection, work) for connection in connections]
        for future in futures:
            future.result()

    def _work(self, connection: Connection, work: Iterator[int]) -> None:
        """Send messages from ``work`` over ``connection`` until none is left, the batch stops,
        or no connection can be made (the other workers carry on)."""
        sender = self.template.sender_address
        while not self.stopped:
            with self._lock:
                index = next(work, None)
            if index is None:
                return
            recipient = self.recipients[index]
            try:
                data = self.template.personalise(recipient)
            except SpeakerfeedError as exc:
                self.results[index] = DeliveryResult(
                    recipient.key, Outcome.FAILED, f"not sent: {exc}"
                )
                continue
            try:
                outcome = connection.deliver(sender, recipient, data)
            except SessionError as exc:
                self.details[index] = self.session_error = exc.detail
                self.stopped = self.stopped or exc.fatal
                return
            except Exception as exc:  # a bug: the batch's other results must not be lost
                log.exception("SMTP delivery to %s failed unexpectedly", recipient.key)
                connection.drop()
                outcome = DeliveryResult(
                    recipient.key,
                    Outcome.UNKNOWN,
                    f"unexpected error, it may have been sent: {exc!r}",
                )
            if isinstance(outcome, Retry):
                self.details[index] = outcome.detail
            else:
                self.results[index] = outcome
