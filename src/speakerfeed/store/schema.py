"""The store's tables, declared once with SQLAlchemy Core for both SQLite and PostgreSQL.

migrations/versions/ must create exactly these; tests compare the two with Alembic's autogenerate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
    true,
)
from sqlalchemy.types import TypeDecorator

from speakerfeed.models import DeliveryState, SendState

# Deterministic constraint names, so migrations can refer to them on both engines.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SUBSCRIPTION_STATUSES = ("pending", "confirmed", "unsubscribed")
SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained", "erased", "manual")

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A time-zone aware datetime, stored as UTC.

    SQLite has no time zones: SQLAlchemy writes the wall-clock digits and reads back a naive
    value. Converting to UTC on the way in and marking UTC on the way out makes both engines
    return the same aware datetimes. A naive datetime is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"expected a time-zone aware datetime, got {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK constraint's text. ``str(value)``: an enum member's repr is not its value."""
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


subscribers = Table(
    "subscribers",
    metadata,
    # Random and opaque: it appears in signed links, so it must not reveal order or count.
    Column("id", String(32), primary_key=True),
    # Normalised by subscribers.normalise_email (stripped, lower-cased) before it gets here.
    Column("email", String(320), nullable=False, unique=True),
    Column("name", Text, nullable=False, server_default=""),
    Column("timezone", String(64), nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column(
        "subscriber_id",
        String(32),
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # A [[lists]] name from config.toml; lists live in config, so there is no lists table.
    Column("list_name", String(40), primary_key=True),
    Column("status", String(16), nullable=False),
    # "" means the list's own schedule.
    Column("cadence", String(16), nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint(_one_of("status", SUBSCRIPTION_STATUSES), name="status"),
    # Sending walks a list's confirmed subscribers in id order (keyset paging); with the
    # cadence, a send's audience is read from the index alone (migration 0007).
    Index("ix_subscriptions_list_status", "list_name", "status", "subscriber_id", "cadence"),
)

consent_records = Table(
    "consent_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "subscriber_id",
        String(32),
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("list_name", String(40), nullable=False),
    Column("action", String(32), nullable=False),  # subscribed, confirmed, imported, ...
    Column("created_at", UTCDateTime, nullable=False),
    Column("ip", String(45), nullable=False, server_default=""),
    Column("user_agent", Text, nullable=False, server_default=""),
    Column("form", String(200), nullable=False, server_default=""),
    Column("confirmation_message_id", String(200), nullable=False, server_default=""),
)

suppressions = Table(
    "suppressions",
    metadata,
    # HMAC-SHA256 of the normalised address (hex): an erased address is kept out without
    # keeping the address itself.
    Column("address_hash", String(64), primary_key=True),
    Column("reason", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint(_one_of("reason", SUPPRESSION_REASONS), name="reason"),
)

# Every suppression lifted by an editor: who, when, why, and the consent they relied on. The
# suppression itself is deleted, so this is what remains of it (migration 0010).
suppression_lifts = Table(
    "suppression_lifts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("address_hash", String(64), nullable=False, index=True),
    Column("reason", String(16), nullable=False),  # the suppression's, as it was
    Column("suppressed_at", UTCDateTime, nullable=False),
    Column("lifted_at", UTCDateTime, nullable=False),
    Column("lifted_by", String(200), nullable=False),
    Column("consent_note", Text, nullable=False),
    Column("forced", Boolean, nullable=False),  # --force: bounced, complained or erased
)

webhook_events = Table(
    "webhook_events",
    metadata,
    # SendGrid's sg_event_id of each event that was acted on: a redelivered batch (SendGrid
    # retries until it gets a 2xx) then changes nothing the second time.
    Column("event_id", String(100), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
)

rate_limits = Table(
    "rate_limits",
    metadata,
    # "<kind>:<HMAC of the IP or address>": a counter never stores who it counts.
    Column("bucket", String(80), primary_key=True),
    Column("window_start", UTCDateTime, nullable=False),
    Column("hits", Integer, nullable=False),
)

# In the enums' order, which the CHECK constraints' text (migration 0004) follows.
SEND_STATES = tuple(state.value for state in SendState)
DELIVERY_STATES = tuple(state.value for state in DeliveryState)
# The partial index's predicate. A query uses the index only when it says the same, with the
# value written in, not bound: see ledger.PENDING.
PENDING = "state = 'pending'"

sends = Table(
    "sends",
    metadata,
    # The digest's id: "daily-2026-11-24-0700", or "daily-weekly-2026-11-24-0700" for a cadence.
    Column("id", String(120), primary_key=True),
    Column("list_name", String(40), nullable=False),
    Column("cadence", String(16), nullable=False, server_default=""),
    Column("state", String(16), nullable=False),
    # What every recipient gets, rendered once, kept so any process can resume the send.
    Column("subject", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("view_url", Text, nullable=False, server_default=""),
    # The editor's note (notes/<list>.md) as it was when the send opened: filed away as sent
    # once the send is done, unless the editor changed it meanwhile ("": none).
    Column("editor_note", Text, nullable=False, server_default=""),
    Column("scheduled_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("errors", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    # False while the ledger's rows are still being added: the senders add the audience a
    # batch at a time, in subscriber order, as they run out of pending rows
    # (ledger.claim_audience), so a large send starts at once and a crash halfway through
    # adding carries on from there.
    Column("audience_complete", Boolean, nullable=False, server_default=true()),
    CheckConstraint(_one_of("state", SEND_STATES), name="state"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column(
        "send_id",
        String(120),
        ForeignKey("sends.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # No foreign key: an erased subscriber's row stays as the record that a message went out.
    Column("subscriber_id", String(32), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("worker", String(64), nullable=False, server_default=""),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("provider_id", String(200), nullable=False, server_default=""),
    Column("detail", Text, nullable=False, server_default=""),
    CheckConstraint(_one_of("state", DELIVERY_STATES), name="state"),
    # Claiming walks a send's pending rows in subscriber order. Only those: a row leaves the
    # index when claimed, and recording its result touches no index (migration 0006).
    Index(
        "ix_deliveries_pending",
        "send_id",
        "subscriber_id",
        sqlite_where=text(PENDING),
        postgresql_where=text(PENDING),
    ),
)

leases = Table(
    "leases",
    metadata,
    # Who holds a role that only one process may hold (the scheduler on SQLite), until when.
    Column("name", String(40), primary_key=True),
    Column("holder", String(80), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

schedule_pauses = Table(
    "schedule_pauses",
    metadata,
    # A list whose scheduled digests are paused by an editor (`speakerfeed schedule pause`).
    Column("list_name", String(40), primary_key=True),
    Column("paused_at", UTCDateTime, nullable=False),
)

digest_articles = Table(
    "digest_articles",
    metadata,
    # Which articles went into which digest, per list and cadence ("" for the list's own
    # schedule): an article is in at most one digest of each, which the key enforces. No foreign
    # key to sends: digests recovered from the web archive (migration 0009) may have no send.
    Column("list_name", String(40), primary_key=True),
    Column("cadence", String(16), primary_key=True),
    # SHA-256 (hex) of the article's id: ids come from upstream feeds too, of any length.
    Column("article_hash", String(64), primary_key=True),
    Column("article_id", Text, nullable=False),
    Column("digest_id", String(120), nullable=False, index=True),
    Column("included_at", UTCDateTime, nullable=False),
)

WELCOME_STATES = ("owed", "sending", "sent", "failed", "dropped")

welcomes = Table(
    "welcomes",
    metadata,
    # The welcome email a confirmed subscription is owed, until it is sent (store.welcomes).
    Column(
        "subscriber_id",
        String(32),
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("list_name", String(40), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # When an owed welcome may next be tried; when a "sending" one was claimed.
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint(_one_of("state", WELCOME_STATES), name="state"),
    # The retry job looks for owed welcomes that are due.
    Index("ix_welcomes_state", "state", "next_attempt_at"),
)
