"""The double opt-in email as a one-recipient Batch, ready for any transport."""

from __future__ import annotations

import secrets
from email.utils import parseaddr

from speakerfeed.config import ListSettings, Settings
from speakerfeed.models import Batch, Recipient, Subscriber
from speakerfeed.render.email import render_confirmation


def new_message_id(settings: Settings) -> str:
    """A Message-ID for a confirmation, made before it is sent so the consent record holds it."""
    domain = parseaddr(settings.email.from_address)[1].rpartition("@")[2] or "localhost"
    return f"<confirm.{secrets.token_urlsafe(18)}@{domain}>"


def confirmation_batch(
    settings: Settings,
    list_settings: ListSettings,
    subscriber: Subscriber,
    confirm_url: str,
    message_id: str,
) -> Batch:
    rendered = render_confirmation(settings, list_settings, confirm_url)
    recipient = Recipient(
        key=subscriber.id,
        address=subscriber.email,
        name=subscriber.name,
        headers=(("Message-ID", message_id),),
    )
    return Batch(
        sender=settings.email.from_address,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        recipients=(recipient,),
        reply_to=settings.email.reply_to,
        # RFC 3834: a machine wrote it, so auto-responders must not answer it.
        headers=(("Auto-Submitted", "auto-generated"),),
        category="confirmation",
    )
