"""A digest's message for one subscriber, made as a transport makes it: the MessageTemplate's
Batch, encoded by speakerfeed.mail.mime (the one MIME encoder)."""

from __future__ import annotations

from datetime import datetime

from speakerfeed.digest.letter import MessageTemplate
from speakerfeed.mail.mime import BatchTemplate
from speakerfeed.models import Subscriber


def personalise(
    template: MessageTemplate, subscriber: Subscriber, *, now: datetime | None = None
) -> bytes:
    """The complete message for ``subscriber``, CRLF line endings, dated ``now`` (default: the
    current time). HeaderError when the subscriber's address or id cannot go into a header."""
    batch = template.batch([subscriber])
    return BatchTemplate.build(batch, now=now).personalise(batch.recipients[0])
