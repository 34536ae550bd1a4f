"""A transport that writes each message as a .eml file into a folder: the default, needing no
server, and a way to look at exactly what would be sent.

Each file appears whole or not at all (speakerfeed.output.write_atomic: written under a
temporary name, a dot file which folder watchers skip, and renamed into place). Names sort by
time and never repeat: the UTC time to the microsecond, the recipient's key (made safe for a
file name) and 48 random bits. Files are readable by their owner only (they hold signed
unsubscribe links). Nothing is fsynced: that would cost a disk flush per message, and an
outbox lost in a crash is sent again.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from speakerfeed.mail.mime import BatchTemplate
from speakerfeed.models import Batch, DeliveryResult, Outcome, Recipient
from speakerfeed.output import write_atomic
from speakerfeed.transports.base import Transport
from speakerfeed.transports.one_by_one import send_one_by_one

_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")
_KEY_CHARS = 40


class OutboxTransport(Transport):
    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def send(self, batch: Batch) -> list[DeliveryResult]:
        self.open()
        return send_one_by_one(batch, self._deliver)

    def _deliver(self, _: BatchTemplate, recipient: Recipient, data: bytes) -> DeliveryResult:
        try:
            path = self._write(recipient.key, data)
        except OSError as exc:  # a full disk, say: nothing is written, so it can be retried
            return DeliveryResult(recipient.key, Outcome.DEFERRED, f"outbox: {exc}")
        return DeliveryResult(recipient.key, Outcome.SENT, provider_id=path.name)

    def _write(self, key: str, data: bytes) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        safe_key = _UNSAFE_IN_NAME.sub("_", key)[:_KEY_CHARS] or "-"
        path = self.folder / f"{stamp}-{safe_key}-{secrets.token_hex(6)}.eml"
        write_atomic(path, data, mode=0o600)
        return path
