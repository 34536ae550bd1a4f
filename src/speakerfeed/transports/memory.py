"""A transport that keeps every message in memory, for tests (Django's locmem backend).

The messages are made exactly as the SMTP transport and the outbox make them, header checks and
all, so a test sees the bytes a reader would get. ``outcomes`` makes chosen addresses report
another outcome instead (a failure, a deferral) to test what a caller does with it.
"""

from __future__ import annotations

import email.parser
import email.policy
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage

from speakerfeed.mail.mime import BatchTemplate
from speakerfeed.models import Batch, DeliveryResult, Outcome, Recipient
from speakerfeed.transports.base import Transport
from speakerfeed.transports.one_by_one import send_one_by_one

_PARSER = email.parser.BytesParser(policy=email.policy.default)


@dataclass(frozen=True, slots=True)
class SentMessage:
    key: str
    envelope_from: str
    envelope_to: str
    data: bytes  # the complete message, CRLF line endings

    def parsed(self) -> EmailMessage:
        message = _PARSER.parsebytes(self.data)
        assert isinstance(message, EmailMessage)  # what policy.default makes
        return message


class MemoryTransport(Transport):
    name = "memory"

    def __init__(self, outcomes: Mapping[str, Outcome] | None = None) -> None:
        """``outcomes``: address -> the outcome to report for it, instead of keeping it."""
        self.outcomes = dict(outcomes or {})
        self.sent: list[SentMessage] = []
        self.batches: list[Batch] = []

    def send(self, batch: Batch) -> list[DeliveryResult]:
        results = send_one_by_one(batch, self._keep)  # raises before keeping a bad batch
        self.batches.append(batch)
        return results

    def _keep(self, template: BatchTemplate, recipient: Recipient, data: bytes) -> DeliveryResult:
        outcome = self.outcomes.get(recipient.address, Outcome.SENT)
        if outcome is not Outcome.SENT:
            return DeliveryResult(recipient.key, outcome, "as told (memory)")
        self.sent.append(
            SentMessage(recipient.key, template.sender_address, recipient.address, data)
        )
        return DeliveryResult(recipient.key, Outcome.SENT, provider_id=f"memory-{len(self.sent)}")
