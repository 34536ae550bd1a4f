"""A list's next digest before it is sent: preview it, lint it, rehearse its send (a dry run
that counts who would get it, a test copy to one address). Nothing here records a send.

The dry run counts by the definition the send itself takes its audience by
(store.subscribers.count_audience), so the number it gives is the number that goes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from speakerfeed.actions.database import Store, open_store
from speakerfeed.actions.subscribers import checked_address
from speakerfeed.config import Settings
from speakerfeed.config.secret_key import load_secret_key
from speakerfeed.digest.issue import NothingNew
from speakerfeed.digest.letter import MessageTemplate
from speakerfeed.digest.prepare import Preview, prepare, write_preview
from speakerfeed.digest.select import cadence_schedule
from speakerfeed.errors import AddressError
from speakerfeed.models import Outcome, Subscriber
from speakerfeed.render.lint import Finding
from speakerfeed.store.subscribers import count_audience
from speakerfeed.transports.base import Transport
from speakerfeed.transports.registry import transport_from_settings


def check_cadence(settings: Settings, list_name: str, cadence: str = "") -> None:
    """ConfigError unless the list exists and has the ``cadence`` ("": its own schedule)."""
    cadence_schedule(settings.require_list(list_name), cadence)


def upcoming_digest(
    settings: Settings,
    list_name: str,
    *,
    cadence: str = "",
    fetch_upstreams: bool = True,
    now: datetime | None = None,
) -> Preview | NothingNew:
    """The list's next digest of ``cadence`` as a sample subscriber would get it now, linted.
    The database is opened (and migrated) for what earlier digests held; nothing is recorded."""
    list_settings = settings.require_list(list_name)
    with open_store(settings, need_secret=False) as store:
        made = prepare(
            store.engine,
            settings,
            list_settings,
            fetch_upstreams=fetch_upstreams,
            now=now,
            cadence=cadence,
        )
    return NothingNew() if made is None else made


@dataclass(frozen=True, slots=True)
class Previewed:
    digest: Preview
    paths: tuple[Path, ...]  # the .eml, .html and .txt files written


def preview_digest(
    settings: Settings,
    list_name: str,
    *,
    out: Path,
    cadence: str = "",
    fetch_upstreams: bool = True,
) -> Previewed | NothingNew:
    """Write the list's next digest, as a sample subscriber gets it, to .eml, .html and .txt
    files in ``out``. Nothing is sent or recorded."""
    made = upcoming_digest(settings, list_name, cadence=cadence, fetch_upstreams=fetch_upstreams)
    if isinstance(made, NothingNew):
        return made
    return Previewed(made, tuple(write_preview(made, out)))


@dataclass(frozen=True, slots=True)
class Linted:
    digest_id: str
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> int:
        """Findings that block the send."""
        return sum(1 for finding in self.findings if finding.severity == "error")

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors


def lint_digest(
    settings: Settings, list_name: str, *, cadence: str = "", fetch_upstreams: bool = True
) -> Linted | NothingNew:
    """Check the list's next digest as the pre-send lint does (an error blocks its send)."""
    made = upcoming_digest(settings, list_name, cadence=cadence, fetch_upstreams=fetch_upstreams)
    if isinstance(made, NothingNew):
        return made
    return Linted(made.rendered.digest.id, tuple(made.findings))


@dataclass(frozen=True, slots=True)
class DryRun:
    list_name: str
    cadence: str
    audience: int  # the people a send now would go to
    transport: str  # the name of the transport it would go through


def dry_run(settings: Settings, store: Store, list_name: str, *, cadence: str = "") -> DryRun:
    """Who a send of the list's ``cadence`` would go to now: its confirmed subscribers who get
    that cadence's digests, less the suppressed. Nothing is sent or recorded."""
    list_settings = settings.require_list(list_name)
    cadence_schedule(list_settings, cadence)
    with store.engine.connect() as conn:
        audience = count_audience(
            conn, list_name, cadence, list_settings.cadences, secret=store.secret
        )
    return DryRun(list_name, cadence, audience, settings.delivery.transport)


@dataclass(frozen=True, slots=True)
class CopySent:
    address: str
    outcome: Outcome
    detail: str

    @property
    def sent(self) -> bool:
        return self.outcome is Outcome.SENT


# Who a test copy is made for. Its unsubscribe and preferences links are signed for this id,
# which no reader can have (theirs are 16 random URL-safe characters: store.subscribers), so a
# colleague who clicks "unsubscribe" in a test copy unsubscribes nobody.
TEST_SUBSCRIBER_ID = "test-send"
TEST_SUBJECT_PREFIX = "[Test] "


def send_test_copies(
    settings: Settings,
    digest: Preview,
    emails: Sequence[str],
    *,
    transport: Transport | None = None,
) -> tuple[CopySent, ...]:
    """Send ``digest`` (from ``upcoming_digest``) as a sample reader gets it to each of
    ``emails`` (To: that address alone), its subject starting "[Test] ", through the
    configured transport (or ``transport``). Every address is checked first: AddressError
    names the first bad one and nothing is sent. Nothing is recorded: no send, no ledger row,
    no inclusion, so the real send still carries the same articles."""
    addresses = list(dict.fromkeys(checked_address(email) for email in emails))
    if not addresses:
        raise AddressError("no address to send a test copy to")
    rendered = digest.rendered
    list_settings = settings.require_list(rendered.digest.list_name)
    template = MessageTemplate.build(rendered, settings, list_settings, load_secret_key(settings))
    template = replace(template, subject=TEST_SUBJECT_PREFIX + template.subject)
    batch = template.batch(Subscriber(TEST_SUBSCRIBER_ID, address, "") for address in addresses)
    with transport or transport_from_settings(settings.delivery, settings.root) as sending:
        results = sending.send(batch)  # one per recipient, in the batch's order
    return tuple(
        CopySent(address, result.outcome, result.detail)
        for address, result in zip(addresses, results, strict=True)
    )
