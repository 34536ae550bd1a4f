"""The welcome email: sent once when a reader confirms a subscription to a list whose
``welcome`` setting is on (the default).

The confirmation records that a welcome is owed in its own transaction (``owe_welcome``), so the
reader is subscribed whatever happens to the email. The confirm page then tries to send it at
once, after its answer; what fails is retried by the scheduler's ``welcomes`` job
(``send_owed_welcomes``) with a doubling delay, 1 minute to 6 hours, ``MAX_ATTEMPTS`` tries in
all (about 17 hours), then given up and logged. A re-used confirm link or a change of preferences
never owes another one; a reader who left and confirms a new sign-up is welcomed again.

Exactly once: a welcome is claimed ("sending", store.welcomes) in a transaction of its own
before the transport is called, so the confirm page and the retry job can never both send it.
If the process dies between the transport's call and the mark "sent", the claim is left; after
``STALE_CLAIM`` the retry job counts it as sent, not owed: a welcome may then be missing, never
doubled (the email may well have left; a second "welcome" would look broken, a missing one costs
little). For the same reason a transport's "unknown" outcome (the connection broke after the
message left) counts as sent.

The email is a list's email like a digest: made with render.email (templates/email/welcome.*),
checked by render.lint's rules (an error holds it back, to be tried again later: the editor can
fix the config meanwhile), and given the digest's headers by digest.letter (List-Id,
List-Unsubscribe with List-Unsubscribe-Post, RFC 8058, and the signed unsubscribe and
preferences links).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Engine

from speakerfeed.actions.schedules import list_trigger
from speakerfeed.config import ListSettings, Settings
from speakerfeed.digest.archive import latest_web_copy_url
from speakerfeed.digest.letter import MessageTemplate
from speakerfeed.digest.select import list_cadences, list_zone
from speakerfeed.errors import TransportError
from speakerfeed.models import Batch, Outcome, Subscriber
from speakerfeed.render.email import render_welcome
from speakerfeed.render.lint import Finding, lint_email
from speakerfeed.render.pages import local_time
from speakerfeed.store import memberships, welcomes
from speakerfeed.store.schedules import is_paused
from speakerfeed.transports.base import Transport

log = logging.getLogger("speakerfeed.welcome")

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)
MAX_ATTEMPTS = 10
STALE_CLAIM = timedelta(minutes=15)  # far longer than one email takes through any transport
BATCH_LIMIT = 200  # owed welcomes tried per run of the job; the rest wait for the next run


class WelcomeOutcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # failed for now: tried again later
    FAILED = "failed"  # refused for good, or out of tries
    DROPPED = "dropped"  # no longer wanted: the reader left, the list or its welcome is gone
    NOT_OWED = "not-owed"  # sent already, being sent elsewhere, or not due yet


def owe_welcome(
    conn: Connection,
    settings: Settings,
    subscriber_id: str,
    list_name: str,
    *,
    now: datetime | None = None,
) -> bool:
    """In the confirmation's transaction: record the welcome the new subscription is owed;
    False when the list sends none."""
    list_settings = settings.mailing_list(list_name)
    if list_settings is None or not list_settings.welcome:
        return False
    welcomes.owe(conn, subscriber_id, list_name, now=now or datetime.now(UTC))
    return True


def next_issue(
    settings: Settings,
    list_settings: ListSettings,
    *,
    cadence: str,
    reader_zone: str,
    now: datetime,
) -> datetime | None:
    """When the reader's next issue is scheduled (their cadence, else the list's own schedule),
    in the reader's time zone, else the list's; None when the schedule never fires again."""
    if cadence not in list_cadences(list_settings):
        cadence = ""  # a cadence since removed from config.toml: the list's own schedule
    upcoming = list_trigger(settings, list_settings, cadence).get_next_fire_time(None, now)
    if upcoming is None:
        return None
    return local_time(upcoming, _zone(reader_zone) or list_zone(settings, list_settings))


@dataclass(frozen=True, slots=True)
class WelcomeMail:
    batch: Batch  # one recipient, markers and headers as a digest's
    findings: list[Finding]  # render.lint's: an error holds the email back


def compose_welcome(
    settings: Settings,
    list_settings: ListSettings,
    secret: bytes,
    subscriber: Subscriber,
    *,
    next_issue_at: datetime | None,
) -> WelcomeMail:
    """The welcome for ``subscriber`` as a transport Batch, and what the lint found in it.
    MessageError or HeaderError when the settings or key cannot make a message."""
    rendered = render_welcome(
        settings,
        list_settings,
        next_issue=next_issue_at,
        latest_url=latest_web_copy_url(settings, list_settings.name),
    )
    template = MessageTemplate.for_list(
        settings,
        list_settings,
        secret,
        id_part="welcome",
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
    )
    batch = template.batch([subscriber])
    batch = dataclasses.replace(
        batch,
        # RFC 3834, as the confirmation: a machine wrote it, auto-responders must not answer.
        headers=(*batch.headers, ("Auto-Submitted", "auto-generated")),
        category="welcome",
    )
    return WelcomeMail(batch, lint_email(settings, rendered.html, rendered.text))


def send_welcome(
    engine: Engine,
    settings: Settings,
    secret: bytes,
    transport: Callable[[], Transport],
    subscriber_id: str,
    list_name: str,
    *,
    now: datetime | None = None,
) -> WelcomeOutcome:
    """Send the welcome the subscription is owed, if it is owed and due now."""
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        attempts = welcomes.claim(conn, subscriber_id, list_name, now=now)
        if attempts is None:
            return WelcomeOutcome.NOT_OWED
        person = memberships.profile(conn, subscriber_id)
        status = memberships.status_of(conn, subscriber_id, list_name)
        cadence = memberships.cadence_of(conn, subscriber_id, list_name) or ""
    list_settings = settings.mailing_list(list_name)
    if person is None or status != "confirmed" or list_settings is None:
        return _finish(engine, subscriber_id, list_name, WelcomeOutcome.DROPPED, now)
    if not list_settings.welcome:
        return _finish(engine, subscriber_id, list_name, WelcomeOutcome.DROPPED, now)
    label = f"welcome to list {list_name}"
    try:
        upcoming = None
        if not is_paused(engine, list_name):
            upcoming = next_issue(
                settings, list_settings, cadence=cadence, reader_zone=person.timezone, now=now
            )
        mail = compose_welcome(
            settings,
            list_settings,
            secret,
            Subscriber(subscriber_id, person.email, person.name),
            next_issue_at=upcoming,
        )
    except Exception:  # a config the editor can fix: keep it owed, and say why
        log.exception("%s not made", label)
        return _retry(engine, subscriber_id, list_name, attempts, now)
    errors = [finding for finding in mail.findings if finding.severity == "error"]
    if errors:
        log.error("%s held back by the lint: %s", label, "; ".join(map(str, errors)))
        return _retry(engine, subscriber_id, list_name, attempts, now)
    try:
        with transport() as opened:
            (result,) = opened.send(mail.batch)
    except TransportError as exc:
        log.error("%s not sent: %s", label, exc)
        return _retry(engine, subscriber_id, list_name, attempts, now)
    match result.outcome:
        case Outcome.SENT:
            log.info("%s sent", label)
            return _finish(engine, subscriber_id, list_name, WelcomeOutcome.SENT, now)
        case Outcome.UNKNOWN:
            # It may have arrived: never risk a second one (see the module's docstring).
            log.warning("%s may not have arrived (%s): not sent again", label, result.detail)
            return _finish(engine, subscriber_id, list_name, WelcomeOutcome.SENT, now)
        case Outcome.FAILED:
            log.error("%s refused for good: %s", label, result.detail)
            return _finish(engine, subscriber_id, list_name, WelcomeOutcome.FAILED, now)
        case _:
            log.error("%s not sent: %s %s", label, result.outcome, result.detail)
            return _retry(engine, subscriber_id, list_name, attempts, now)


def send_owed_welcomes(
    engine: Engine,
    settings: Settings,
    secret: bytes,
    transport: Callable[[], Transport],
    *,
    now: datetime | None = None,
) -> dict[WelcomeOutcome, int]:
    """The scheduler's ``welcomes`` job: every owed welcome that is due, tried once; how many
    ended how."""
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        stale = welcomes.close_stale_claims(conn, claimed_before=now - STALE_CLAIM, now=now)
        owed = welcomes.due(conn, now=now, limit=BATCH_LIMIT)
    if stale:
        log.warning("%d welcomes were being sent when a process stopped: counted as sent", stale)
    counts: dict[WelcomeOutcome, int] = {}
    for item in owed:
        outcome = send_welcome(
            engine, settings, secret, transport, item.subscriber_id, item.list_name, now=now
        )
        counts[outcome] = counts.get(outcome, 0) + 1
    if owed:
        log.info(
            "owed welcomes: %s", ", ".join(f"{count} {kind}" for kind, count in counts.items())
        )
    return counts


def retry_delay(attempts: int) -> timedelta:
    """The wait before the next try after ``attempts`` failed ones (1 or more)."""
    doubled: timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(doubled, LONGEST_RETRY)


def _retry(
    engine: Engine, subscriber_id: str, list_name: str, attempts: int, now: datetime
) -> WelcomeOutcome:
    failed = attempts + 1
    if failed >= MAX_ATTEMPTS:
        log.error("welcome to list %s: given up after %d tries", list_name, failed)
        return _finish(engine, subscriber_id, list_name, WelcomeOutcome.FAILED, now)
    with engine.begin() as conn:
        at = now + retry_delay(failed)
        welcomes.retry_later(conn, subscriber_id, list_name, at=at, now=now)
    return WelcomeOutcome.RETRY


def _finish(
    engine: Engine, subscriber_id: str, list_name: str, outcome: WelcomeOutcome, now: datetime
) -> WelcomeOutcome:
    with engine.begin() as conn:
        welcomes.finish(conn, subscriber_id, list_name, outcome.value, now=now)
    return outcome


def _zone(name: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # stored before zones were checked, say
        return None
