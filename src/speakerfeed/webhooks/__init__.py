"""Webhooks from the email provider: signed, untrusted, applied once each."""

from speakerfeed.errors import WebhookError
from speakerfeed.webhooks.sendgrid import (
    ApplyReport,
    Event,
    apply_events,
    parse_events,
    sendgrid_events_endpoint,
    verify_signature,
)

__all__ = [
    "ApplyReport",
    "Event",
    "WebhookError",
    "apply_events",
    "parse_events",
    "sendgrid_events_endpoint",
    "verify_signature",
]
