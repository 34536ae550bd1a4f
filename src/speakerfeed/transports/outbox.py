"""A transport that writes each message as a .eml file into a folder: the default, needing no
server, and a way to look at exactly what would be sent.

Each file appears whole or not at all (speakerfeed.output.write_atomic: written under a
temporary name, a dot file which folder watchers skip, and renamed into place). Names sort by
time and never repeat: the UTC time to the microsecond, the recipient's key (made safe for a
file name) and 48 random bits. Files are readable by their owner only (they hold signed
unsubscribe links). Nothing is fsynced: that would cost a disk flush per message, and an
outbox lost in a crash is sent again.

A write that fails (ENOSPC, EROFS, EACCES...) is this machine's fault, not the recipient's: the
batch stops at the first one and ``send`` raises LocalWriteError, naming the error and the
folder, with the results so far (the rest DEFERRED), so the send pauses instead of retrying.
"""

from __future__ import annotations

import errno
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from speakerfeed.mail.mime import BatchTemplate
from speakerfeed.models import Batch, DeliveryResult, Outcome, Recipient
from speakerfeed.output import write_atomic
from speakerfeed.transports.base import LocalWriteError, Transport
from speakerfeed.transports.one_by_one import send_one_by_one

_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")
_KEY_CHARS = 40


class OutboxTransport(Transport):
    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LocalWriteError(self._cannot_write(exc)) from None

    def send(self, batch: Batch) -> list[DeliveryResult]:
        self.open()
        stopped: list[str] = []  # the first write error: nothing more is tried after it

        def deliver(_: BatchTemplate, recipient: Recipient, data: bytes) -> DeliveryResult:
            if not stopped:
                try:
                    path = self._write(recipient.key, data)
                except OSError as exc:
                    stopped.append(self._cannot_write(exc))
                else:
                    return DeliveryResult(recipient.key, Outcome.SENT, provider_id=path.name)
            return DeliveryResult(recipient.key, Outcome.DEFERRED, stopped[0])

        results = send_one_by_one(batch, deliver)
        if stopped:
            raise LocalWriteError(stopped[0], results)
        return results

    def _cannot_write(self, exc: OSError) -> str:
        code = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        reason = exc.strerror or str(exc)
        return f"outbox: cannot write to {self.folder}: {code} ({reason})"

    def _write(self, key: str, data: bytes) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        safe_key = _UNSAFE_IN_NAME.sub("_", key)[:_KEY_CHARS] or "-"
        path = self.folder / f"{stamp}-{safe_key}-{secrets.token_hex(6)}.eml"
        write_atomic(path, data, mode=0o600)
        return path
