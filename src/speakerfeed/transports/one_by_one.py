"""What the transports that hand over one whole message at a time (outbox, memory) share."""

from __future__ import annotations

from collections.abc import Callable

from speakerfeed.errors import SpeakerfeedError
from speakerfeed.mail.mime import BatchTemplate
from speakerfeed.models import Batch, DeliveryResult, Outcome, Recipient

Deliver = Callable[[BatchTemplate, Recipient, bytes], DeliveryResult]


def send_one_by_one(batch: Batch, deliver: Deliver) -> list[DeliveryResult]:
    """Each recipient's message, made from the batch's shared template, given to ``deliver``;
    a recipient whose message cannot be made (a bad address, say) is FAILED and never given."""
    template = BatchTemplate.build(batch)
    results = []
    for recipient in batch.recipients:
        try:
            data = template.personalise(recipient)
        except SpeakerfeedError as exc:
            results.append(DeliveryResult(recipient.key, Outcome.FAILED, f"not sent: {exc}"))
            continue
        results.append(deliver(template, recipient, data))
    return results
