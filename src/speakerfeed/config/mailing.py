"""The settings of the email digests: [email], [[lists]], [signup] and [sending] ([delivery] is
config.delivery's)."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from speakerfeed.config.fields import Section, Strings, http_url

_HEADER_BREAKS = ("\r", "\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def _single_line(value: str) -> str:
    if any(mark in value for mark in _HEADER_BREAKS) or "=?" in value:
        raise ValueError("expected one line of text without line breaks or encoded words (=?)")
    return value


class EmailSettings(Section):
    from_address: str = Field(
        "", description='Sender of digests, e.g. "The Speaker <digest@example.org>".'
    )
    reply_to: str = Field("", description="Optional Reply-To address.")
    postal_address: str = Field(
        "", description="The publication's postal address, shown in every email's footer."
    )
    app_url: str = Field(
        "",
        description="Public URL of `speakerfeed serve` for confirm, unsubscribe, preferences and "
        "archive links [default: http://server.host:server.port, where `serve` listens].",
    )
    unsubscribe_mailto: str = Field(
        "", description="Address for mailto: one-click unsubscribe in List-Unsubscribe."
    )

    @field_validator("from_address", "reply_to", "unsubscribe_mailto", "postal_address")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _single_line(value)

    @field_validator("from_address", "reply_to", "unsubscribe_mailto")
    @classmethod
    def _address(cls, value: str) -> str:
        if value and "@" not in email.utils.parseaddr(value)[1]:
            raise ValueError(
                f"expected an email address such as Name <name@example.org>, got {value!r}"
            )
        return value

    @field_validator("app_url")
    @classmethod
    def _app(cls, value: str) -> str:
        return http_url(value).rstrip("/") if value else value


_CADENCE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,15}")


def _crontab_line(value: str) -> str:
    from speakerfeed.config.crontab import crontab_trigger

    try:
        crontab_trigger(value, "UTC")
    except ValueError as exc:
        raise ValueError(f"expected a crontab line such as '0 7 * * *': {exc}") from None
    return value


class ListSettings(Section):
    name: str = Field(
        min_length=1,
        max_length=40,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Short name used in commands and URLs (lower-case letters, digits, -).",
    )
    title: str = Field(min_length=1, description="The list's name as readers see it.")
    description: str = Field(
        "",
        description="What the list is, in a sentence; shown on the sign-up, confirm and "
        "preferences pages.",
    )
    reason: str = Field(
        "",
        description="Why a reader receives this email; the sentence in every digest's footer "
        '[default: "You receive this because you subscribed to <title>."].',
    )
    tags: Strings = Field((), description="Only articles with one of these tags [default: all].")
    max_items: int = Field(10, ge=1, le=100, description="Articles in one digest at most.")
    max_age_days: int = Field(
        7,
        ge=1,
        le=3650,
        description="Articles published longer ago than this are never sent, so importing an old "
        "archive does not flood readers (a list's first digest takes its newest `max_items` "
        "whatever their age).",
    )
    subject: str = Field(
        "{{ list.title }}{% if articles %}: {{ articles[0].title }}{% endif %}",
        min_length=1,
        description="Subject line: a Jinja2 template with `list`, `articles` and `date`.",
    )
    schedule: str = Field(
        "0 7 * * *",
        description="When the digest goes out: a crontab line (min hour dom mon dow; 0 or 7 is "
        "Sunday), or six fields with seconds first.",
    )
    timezone: str = Field("", description="Time zone of the schedule [default: site.timezone].")
    send_when_empty: bool = Field(False, description="Send even when no article is new.")
    welcome: bool = Field(
        True,
        description="Send a welcome email once when a reader confirms a subscription: what the "
        "list is, when the next issue comes, the latest issue's web copy.",
    )
    cadences: dict[str, str] = Field(
        default_factory=dict,
        description="Other schedules a reader may choose on the preferences page, by name, e.g. "
        '{ weekly = "0 7 * * 1" }: each gets its own digest of what is new since its last one.',
    )

    @field_validator("schedule")
    @classmethod
    def _crontab(cls, value: str) -> str:
        return _crontab_line(value)

    @field_validator("cadences")
    @classmethod
    def _cadences(cls, value: dict[str, str]) -> dict[str, str]:
        for name, line in value.items():
            if not _CADENCE_NAME.fullmatch(name):
                raise ValueError(
                    f"cadence name {name!r}: expected lower-case letters, digits and - (at most 16)"
                )
            try:
                _crontab_line(line)
            except ValueError as exc:
                raise ValueError(f"cadence {name!r}: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError("expected an IANA time zone name such as Europe/London") from None
        return value

    @field_validator("title", "description", "reason")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _single_line(value)


class SignupSettings(Section):
    confirm_link_hours: int = Field(
        48, ge=1, le=24 * 30, description="How long the link in a confirmation email works."
    )
    per_ip: int = Field(
        40,
        ge=1,
        description="Sign-ups accepted from one IPv4 address or IPv6 network per window; then "
        "429. A burst allowance: enough for a class or an office behind one address to sign up "
        "together (30 in a few minutes, with room for typos), while a flood stops after this many.",
    )
    per_ip_window_minutes: int = Field(
        10, ge=1, le=24 * 60, description="The window of `per_ip`, in minutes."
    )
    ipv6_prefix: int = Field(
        64,
        ge=32,
        le=128,
        description="`per_ip` counts an IPv6 client by its network of this prefix length (one "
        "host usually has a whole /64 to pick addresses from); an IPv4 client by its address.",
    )
    per_address: int = Field(
        1, ge=1, description="Emails (confirmations, links) sent to one address per window."
    )
    per_address_window_minutes: int = Field(
        60, ge=1, le=7 * 24 * 60, description="The window of `per_address`, in minutes."
    )


class SendingSettings(Section):
    batch_size: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Recipients claimed and handed to the transport at a time (SendGrid takes "
        "1,000 per request and sends several requests of a batch at once).",
    )
    messages_per_second: float = Field(
        0.0, ge=0, description="Average sending rate at most; 0: as fast as the transport goes."
    )
    max_errors: int = Field(
        1000, ge=0, description="Failed or deferred messages after which a send pauses; 0: never."
    )
    max_lateness_minutes: float = Field(
        180,
        gt=0,
        description="A send that would start this long after its scheduled time is cancelled.",
    )
    claim_lease_seconds: int = Field(
        600,
        ge=10,
        description="A batch in flight this long belongs to a sender that stopped: its rows "
        "become unknown (never resent automatically).",
    )
    processes: int = Field(
        1,
        ge=1,
        le=32,
        description="Processes that `speakerfeed send` and `sends resume` use for one send, each "
        "claiming its own batches (forked; messages_per_second is shared out among them). "
        "`serve` sends from one; start `speakerfeed worker` processes to add senders there.",
    )


def check_digest_id_prefixes(lists: Sequence[ListSettings]) -> None:
    """Digest ids start with the list's name, and a cadence's with "<list>-<cadence>": list
    "a-b" and list "a" with cadence "b" would share ids (and so sends)."""
    owners: dict[str, str] = {}
    for item in lists:
        for cadence in ("", *item.cadences):
            prefix = f"{item.name}-{cadence}" if cadence else item.name
            owner = f"list {item.name!r}" + (f" cadence {cadence!r}" if cadence else "")
            if prefix in owners:
                raise ValueError(
                    f"{owners[prefix]} and {owner} would give their digests the same ids "
                    f"({prefix}-<date>); rename one of them"
                )
            owners[prefix] = owner
