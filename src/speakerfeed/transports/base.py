"""What every transport takes and gives back, in the style of Django's email backends.

A transport only moves rendered mail: ``open()``/``close()`` (no-ops unless it holds
connections), a context manager, and ``send(batch) -> results``; ``start(batch)`` hands a batch
over and, for a transport that sends in the background (SendGrid), returns before it is sent.

A ``Batch`` is one message rendered once (subject, text, HTML, shared headers) and the
recipients who each get their own copy, with the few values that differ per recipient
(``Recipient.values``, keyed by the markers of speakerfeed.mail.placeholders, and
per-recipient headers). SMTP and the outbox fill the markers in to make one MIME message per
recipient; SendGrid sends the shared parts once per request with one personalization
(substitutions and headers) per recipient.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import ClassVar, Self

from speakerfeed.errors import TransportError
from speakerfeed.models import Batch, DeliveryResult


class LocalWriteError(TransportError):
    """This machine cannot write what the transport writes (a full disk, a read-only or
    forbidden folder): no recipient's fault, so the send pauses at once, naming the error.
    Unlike other TransportErrors it may come once some of the batch was sent: ``results`` then
    holds the batch's results so far, one per recipient (the unsent ones DEFERRED)."""

    def __init__(self, message: str, results: Sequence[DeliveryResult] = ()) -> None:
        super().__init__(message)
        self.results = list(results)


class InFlight:
    """A batch handed to a transport by ``Transport.start``: ``results`` waits until it is sent
    and gives what ``send`` would have (one result per recipient, in the batch's order)."""

    __slots__ = ("_wait",)

    def __init__(self, wait: Callable[[], list[DeliveryResult]]) -> None:
        self._wait = wait

    def results(self) -> list[DeliveryResult]:
        return self._wait()


class Transport(ABC):
    """Base class: subclasses implement ``send``; ``open`` and ``close`` may hold connections."""

    name: ClassVar[str]

    def open(self) -> None:  # noqa: B027 - optional: most transports hold nothing to open
        """Get ready to send (connect, log in). Calling it twice is harmless."""

    def close(self) -> None:  # noqa: B027 - optional, as open
        """Release what ``open`` took. Calling it twice is harmless."""

    @abstractmethod
    def send(self, batch: Batch) -> list[DeliveryResult]:
        """Deliver one copy per recipient; one result per recipient, in the batch's order.

        A recipient that cannot be sent (an unsafe address, say) is FAILED on its own. Raises
        (TransportError, HeaderError) only for a batch nothing can be sent of, before sending
        anything; never once something may have been sent, except LocalWriteError, which
        carries the results so far. Opens and closes the transport
        itself when it is not open. One ``send`` at a time per transport."""

    def start(self, batch: Batch) -> InFlight:
        """Hand ``batch`` over: ``send``, but a transport that can send in the background
        returns as soon as the batch is on its way, so the caller can get the next one ready
        meanwhile. Raises as ``send`` does, before anything is sent. The transport must be
        open; a caller may start a second batch before the first one's results. This one
        sends the batch before it returns."""
        results = self.send(batch)
        return InFlight(lambda: results)

    def __enter__(self) -> Self:
        """``open``; when that fails, ``close`` releases what it took before the error goes on
        (a pool whose third connection failed, say): ``__exit__`` never runs then."""
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
