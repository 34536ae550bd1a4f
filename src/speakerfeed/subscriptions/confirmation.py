"""The double opt-in email as a one-recipient Batch, ready for any transport."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from email.utils import parseaddr

from speakerfeed.config import ListSettings, Settings
from speakerfeed.mail import tokens
from speakerfeed.models import Batch, Recipient, Subscriber
from speakerfeed.render.email import render_confirmation
from speakerfeed.subscriptions.membership import MailLimit


def new_message_id(settings: Settings) -> str:
    """A Message-ID for a confirmation, made before it is sent so the consent record holds it."""
    domain = parseaddr(settings.email.from_address)[1].rpartition("@")[2] or "localhost"
    return f"<confirm.{secrets.token_urlsafe(18)}@{domain}>"


def mail_limit(settings: Settings) -> MailLimit:
    """[signup] per_address emails per per_address_window_minutes to one address."""
    signup = settings.signup
    return MailLimit(signup.per_address, timedelta(minutes=signup.per_address_window_minutes))


def confirm_url(
    settings: Settings, secret: bytes, subscriber_id: str, list_name: str, *, now: float = 0
) -> str:
    """The signed /confirm link, valid for [signup] confirm_link_hours from ``now`` (the
    current time when 0)."""
    hours = settings.signup.confirm_link_hours
    expires = int(now or time.time()) + hours * 3600
    token = tokens.sign(secret, "confirm", subscriber_id, list_name, expires)
    return f"{settings.app_url}/confirm/{list_name}/{token}"


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
