"""Transports by name: the one [delivery] chooses, made from its settings.

Each maker imports its transport only when chosen, so that a site sending through the outbox
never loads smtplib's TLS set-up, httpx or the sendgrid package.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from speakerfeed.config.delivery import DeliverySettings
from speakerfeed.errors import TransportError
from speakerfeed.transports.base import Transport

Maker = Callable[[DeliverySettings, Path, Mapping[str, str]], Transport]


def _outbox(settings: DeliverySettings, root: Path, environ: Mapping[str, str]) -> Transport:
    from speakerfeed.transports.outbox import OutboxTransport

    return OutboxTransport((root / settings.outbox_folder).resolve())


def _smtp(settings: DeliverySettings, root: Path, environ: Mapping[str, str]) -> Transport:
    from speakerfeed.transports.smtp import SmtpTransport

    return SmtpTransport.from_settings(settings.smtp, root, environ)


def _sendgrid(settings: DeliverySettings, root: Path, environ: Mapping[str, str]) -> Transport:
    from speakerfeed.transports.sendgrid import SendGridTransport

    return SendGridTransport.from_settings(settings.sendgrid, environ)


def _memory(settings: DeliverySettings, root: Path, environ: Mapping[str, str]) -> Transport:
    from speakerfeed.transports.memory import MemoryTransport

    return MemoryTransport()


TRANSPORTS: Mapping[str, Maker] = {
    "outbox": _outbox,
    "smtp": _smtp,
    "sendgrid": _sendgrid,
    "memory": _memory,
}


def transport_from_settings(
    settings: DeliverySettings, root: Path, *, environ: Mapping[str, str] | None = None
) -> Transport:
    """The transport ``settings.transport`` names, not yet opened. ``root``: the folder relative
    paths (the outbox, a CA file) start from, the configuration file's; ``environ``: where
    secrets are read (default: os.environ). TransportError when a secret is missing."""
    maker = TRANSPORTS.get(settings.transport)
    if maker is None:  # the settings allow only known names; this is for a hand-made object
        raise TransportError(
            f"unknown transport {settings.transport!r}; expected one of {', '.join(TRANSPORTS)}"
        )
    return maker(settings, root, os.environ if environ is None else environ)
