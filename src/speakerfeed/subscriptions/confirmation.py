"""The double opt-in email as a one-recipient Batch, ready for any transport."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from email.utils import parseaddr
from html import escape

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


def new_links_batch(
    settings: Settings,
    list_settings: ListSettings,
    subscriber: Subscriber,
    unsubscribe_url: str,
    preferences_url: str,
) -> Batch:
    """The email a reader asks for from an expired or broken unsubscribe link: a fresh
    unsubscribe link and preferences link for the list, signed like the ones in a digest."""
    title = list_settings.title
    subject = f"Your links for {title}"
    postal = settings.email.postal_address
    text = (
        f"You asked for a new link to leave {title} or to change what you receive.\n\n"
        f"Unsubscribe from {title}:\n{unsubscribe_url}\n\n"
        f"Manage your preferences:\n{preferences_url}\n\n"
        "If you did not ask for this, ignore this email: nothing has changed.\n"
        + (f"\n{postal}\n" if postal else "")
    )
    language = settings.site.language
    html = (
        f'<!doctype html><html lang="{escape(language)}"><head><meta charset="utf-8">'
        f"<title>{escape(subject)}</title></head><body><main>"
        f"<p>You asked for a new link to leave {escape(title)} or to change what you receive.</p>"
        f'<p><a href="{escape(unsubscribe_url)}">Unsubscribe from {escape(title)}</a></p>'
        f'<p><a href="{escape(preferences_url)}">Manage your preferences</a></p>'
        "<p>If you did not ask for this, ignore this email: nothing has changed.</p>"
        + (f"<p>{escape(postal)}</p>" if postal else "")
        + "</main></body></html>"
    )
    recipient = Recipient(
        key=subscriber.id,
        address=subscriber.email,
        name=subscriber.name,
        headers=(("Message-ID", new_message_id(settings).replace("<confirm.", "<links.")),),
    )
    return Batch(
        sender=settings.email.from_address,
        subject=subject,
        text=text,
        html=html,
        recipients=(recipient,),
        reply_to=settings.email.reply_to,
        headers=(("Auto-Submitted", "auto-generated"),),
        category="links",
    )
