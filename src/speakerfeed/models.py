"""The data that flows through speakerfeed. Depends on nothing of ours."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    alt: str


@dataclass(frozen=True, slots=True)
class Article:
    """One article, whatever it was read from.

    ``id`` is the permanent identity used in feeds (RSS guid, Atom id, JSON Feed id): it never
    depends on the title or the URL slug, so editing either does not make readers see a new item.
    """

    id: str
    title: str
    url: str
    published: datetime  # always time-zone aware
    content_html: str
    summary: str  # plain text
    source: str  # where it came from, for messages: a path relative to the project, or an upstream
    slug: str
    updated: datetime | None = None
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    image: Image | None = None
    draft: bool = False
    fingerprint: str = field(default="", compare=False)  # content hash; see collect.fingerprint

    @property
    def last_modified(self) -> datetime:
        return self.updated or self.published


class Subscriber(NamedTuple):
    """Someone a digest is sent to. ``id`` is opaque and stable: tokens in links are bound to it.
    A NamedTuple: immutable, and made once per recipient of a send, faster than a frozen
    dataclass."""

    id: str
    email: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Digest:
    """One issue of a list's email: its articles, chosen once, newest first."""

    id: str  # unique and URL-safe, e.g. "daily-2023-11-29-0700" or "daily-weekly-2023-11-27-0700"
    list_name: str
    list_title: str
    articles: tuple[Article, ...]
    issued: datetime  # time-zone aware: when the digest was put together
    cadence: str = ""  # one of the list's cadences; "" is the list's own schedule

    @property
    def archive_path(self) -> str:
        """Where its web copy lives, relative to the output folder (the "view in browser" page)."""
        return f"digests/{self.list_name}/{self.id}/"


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    """A digest rendered once for every subscriber: HTML and plain text holding the markers of
    speakerfeed.mail.placeholders where per-subscriber values go."""

    digest: Digest
    subject: str
    preheader: str
    html: str
    text: str
    view_url: str  # the digest's public web copy ("view in browser"), the same for everyone


_NO_VALUES: Mapping[str, str] = MappingProxyType({})


class Recipient(NamedTuple):
    """One copy of a Batch's message. A NamedTuple, like DeliveryResult: immutable, and made a
    million times in a send of a million, much faster than a frozen dataclass (whose
    ``__init__`` goes through ``object.__setattr__`` for every field)."""

    key: str  # the caller's handle for this copy's result (the ledger row or subscriber id)
    address: str  # bare, normalised address
    name: str = ""
    # marker -> plain-text value; a transport HTML-escapes it for the HTML part itself.
    values: Mapping[str, str] = _NO_VALUES
    headers: tuple[tuple[str, str], ...] = ()  # e.g. List-Unsubscribe, Message-ID


@dataclass(frozen=True, slots=True)
class Batch:
    sender: str  # From as written in config, e.g. "The Speaker <digest@example.org>"
    subject: str
    text: str  # text/plain part, with markers
    html: str  # text/html part, with markers
    recipients: tuple[Recipient, ...]
    reply_to: str = ""
    headers: tuple[tuple[str, str], ...] = ()  # shared, e.g. List-Id, List-Unsubscribe-Post
    category: str = ""  # e.g. the list name: a tag providers can report by


class Outcome(StrEnum):
    SENT = "sent"  # the server or API accepted it
    FAILED = "failed"  # refused for good (5xx, or a 4xx that retrying cannot fix)
    DEFERRED = "deferred"  # refused for now, retries used up: safe to try again later
    UNKNOWN = "unknown"  # the connection broke after the message left: it may have arrived


class SendState(StrEnum):
    """A send's state (store.schema's sends.state): the values the ledger writes."""

    SENDING = "sending"  # running, or waiting for a sender to carry on
    PAUSED = "paused"  # stopped by errors or a transport that cannot send; ``resume`` it
    DONE = "done"  # every row of the audience finished
    CANCELLED = "cancelled"  # too late to be worth sending


class DeliveryState(StrEnum):
    """A ledger row's state (store.schema's deliveries.state): one recipient of one send."""

    PENDING = "pending"  # to be sent (again, after a refusal for now)
    SENDING = "sending"  # claimed by a sender and handed to the transport
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the sender stopped while it was in flight: never resent on its own
    SKIPPED = "skipped"  # left the list or was suppressed before their turn


class DeliveryResult(NamedTuple):
    """What became of one recipient's copy (a NamedTuple, as Recipient)."""

    key: str
    outcome: Outcome
    detail: str = ""  # the provider's message or error
    provider_id: str = ""  # the provider's message or queue id when it gives one
    # A permanent refusal of the address itself (SMTP 550 user unknown): it becomes a
    # suppression ("bounced"), unlike a refusal of the whole message or request.
    hard_bounce: bool = False
