"""`send LIST` (and its dry run and test copy) and `sends list|show|resume`: the digests sent
through the delivery ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, assert_never

import click

from speakerfeed.cli.common import (
    NO_FETCH,
    cadence_option,
    digest_name,
    fail,
    load,
    print_findings,
    send_progress,
    store,
)
from speakerfeed.errors import AddressError, SendNotFoundError
from speakerfeed.wording import counted

if TYPE_CHECKING:
    from speakerfeed.config import Settings
    from speakerfeed.digest.deliver import SendReport

_QUIET = click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
# The exit status of `send` and `sends resume` when the send did not get done: it paused (too
# many errors, a transport that cannot work, an outbox that cannot be written), was cancelled
# (too late), or stopped with rows pending (refused for now) or a process of it failed. 1 stays
# for what stops before sending (a lint error, bad input), so a script can tell "resume later"
# from "fix the configuration".
NOT_DONE = 3
_EXIT_STATUS = (
    "Exit status: 0 when the send is done (or carried on by another process of it); "
    f"{NOT_DONE} when it paused, was cancelled, or stopped with readers still pending (refused "
    "for now) or a process of it failed (see `speakerfeed sends show ID`); 1 when nothing "
    "could be sent (a lint error, a bad setting)."
)


@click.command(epilog=_EXIT_STATUS)
@click.argument("list_name", metavar="LIST")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send and record nothing.")
@click.option(
    "--test-to",
    metavar="EMAIL[,EMAIL...]",
    default=None,
    help='Send a test copy to each EMAIL only (comma-separated), its subject starting "[Test]": '
    "not recorded as a send, nobody else gets it, the articles stay for the real send.",
)
@click.option(
    "--now", is_flag=True, help="Send now, whatever the list's schedule says (the default)."
)
@NO_FETCH
@cadence_option("Send", ", to the readers who chose it")
@_QUIET
@click.pass_context
def send(
    ctx: click.Context,
    list_name: str,
    dry_run: bool,
    test_to: str | None,
    now: bool,
    no_fetch: bool,
    cadence: str,
    quiet: bool,
) -> None:
    """Send LIST's next digest to its confirmed subscribers, through the delivery ledger.

    Without --cadence the digest goes to those on the list's own schedule; with --cadence NAME,
    that cadence's digest (what is new since its last one) goes to those who chose NAME.

    The digest is linted first (an error blocks it). Each recipient gets it once, even across
    crashes and restarts; an interrupted send is carried on by `speakerfeed sends resume ID`.
    """
    from speakerfeed.actions.digests import check_cadence
    from speakerfeed.actions.sends import Sent, send_now, transport_for
    from speakerfeed.digest.issue import Blocked, NothingNew, Unfinished

    settings = load(ctx)
    check_cadence(settings, list_name, cadence)  # an unknown one stops here, before anything
    name = digest_name(list_name, cadence)
    moment = datetime.now(UTC)
    if dry_run or test_to is not None:  # `--test-to ''` too: an error, never a real send
        _rehearse(ctx, settings, list_name, cadence, moment, dry_run, test_to, not no_fetch)
        return
    # Made first: a missing password or API key is reported before anything is recorded.
    transport = transport_for(settings)
    with store(ctx, settings, list_name) as opened, send_progress(not quiet) as progress:
        result = send_now(
            settings,
            opened,
            list_name,
            transport,
            cadence=cadence,
            fetch_upstreams=not no_fetch,
            now=moment,
            progress=progress,
        )
    match result:
        case NothingNew():
            click.echo(f"{name}: no new articles since the last digest, so no digest.")
        case Blocked(preview):
            print_findings(preview.findings)
            click.secho("the digest is blocked by the lint above; nothing was sent", err=True)
            ctx.exit(1)
        case Sent(issued, report):
            if isinstance(issued, Unfinished):
                click.echo(f"{name}: carrying on with the unfinished send {issued.send_id}")
            _print_report(ctx, report)
        case _:
            assert_never(result)


def _rehearse(
    ctx: click.Context,
    settings: Settings,
    list_name: str,
    cadence: str,
    moment: datetime,
    dry: bool,
    test_to: str | None,
    fetch: bool,
) -> None:
    """`send --dry-run` and `send --test-to`: the digest, who it would go to, a test copy."""
    from speakerfeed.actions.digests import dry_run, send_test_copies, upcoming_digest
    from speakerfeed.digest.issue import NothingNew

    made = upcoming_digest(settings, list_name, cadence=cadence, fetch_upstreams=fetch, now=moment)
    if isinstance(made, NothingNew):
        name = digest_name(list_name, cadence)
        click.echo(f"{name}: no new articles since the last digest, so no digest.")
        return
    print_findings(made.findings)
    rendered = made.rendered
    click.echo(f"{rendered.digest.id}: {counted(len(rendered.digest.articles), 'article')}")
    click.echo(f"  subject: {rendered.subject}")
    if dry:
        with store(ctx, settings, list_name) as opened:
            rehearsed = dry_run(settings, opened, list_name, cadence=cadence)
        chose = f" who chose {cadence}" if cadence else ""
        click.echo(
            f"  would go to {counted(rehearsed.audience, 'confirmed subscriber')}{chose} "
            f"through the {rehearsed.transport} transport (dry run: nothing sent)"
        )
    if test_to is not None:
        copies = send_test_copies(settings, made, _test_addresses(ctx, test_to))
        for copy in copies:
            click.echo(
                f"  test copy to {copy.address}: {copy.outcome.value} {copy.detail}".rstrip()
            )
        if not all(copy.sent for copy in copies):
            ctx.exit(1)
    if made.blocked:
        ctx.exit(1)


def _test_addresses(ctx: click.Context, test_to: str) -> list[str]:
    """--test-to's comma-separated addresses, each checked as subscribers' are; a bad or empty
    one stops before anything is sent."""
    from speakerfeed.actions.subscribers import checked_address

    addresses = [part.strip() for part in test_to.split(",")]
    if not any(addresses):
        fail(ctx, "--test-to: expected one or more email addresses, separated by commas")
    for number, part in enumerate(addresses, start=1):
        if not part:
            fail(ctx, f"--test-to: address {number} of {len(addresses)} is empty ({test_to!r})")
    try:
        return [checked_address(part) for part in addresses]
    except AddressError as exc:
        fail(ctx, f"--test-to: {exc}")


def _print_report(ctx: click.Context, report: SendReport) -> None:
    """The send's outcome; exit NOT_DONE when it paused, was cancelled, or stopped with rows
    pending (refused for now) or one of its processes failed."""
    counts = ", ".join(f"{n:,} {state}" for state, n in report.counts.items() if n) or "no rows"
    click.echo(f"{report.send_id}: {report.state} ({counts})")
    if report.note and report.state == "done":
        click.echo(f"  {report.note}")
    if report.counts.get("unknown"):
        click.secho(
            f"  {report.counts['unknown']} unknown: they may or may not have arrived; "
            f"`speakerfeed sends resume {report.send_id} --resend-unknown` sends them again",
            fg="yellow",
        )
    pending = report.counts.get("pending", 0)
    stuck = report.state == "sending" and (report.note or pending)
    if report.state not in ("paused", "cancelled") and not stuck:
        return  # done, or carried on by another process of the same send (its rows in flight)
    if report.note:
        click.secho(f"{report.state}: {report.note}", err=True, fg="red")
    elif pending:
        click.secho(f"not done: {pending:,} pending (refused for now)", err=True, fg="red")
    if report.state != "cancelled":
        click.echo(
            f"once that is mended, `speakerfeed sends resume {report.send_id}` carries on",
            err=True,
        )
    ctx.exit(NOT_DONE)


@click.group()
def sends() -> None:
    """The delivery ledger: list sends, show one, resume one."""


@sends.command("list")
@click.option("--limit", default=20, show_default=True, help="How many, newest first.")
@click.pass_context
def sends_list(ctx: click.Context, limit: int) -> None:
    """The newest sends with their state."""
    from speakerfeed.actions.sends import list_sends

    settings = load(ctx)
    with store(ctx, settings, need_secret=False) as opened:
        found = list_sends(settings, opened, limit=limit)
    if not found:
        click.echo("no sends yet")
        return
    click.echo(f"{'ID':32} {'STATE':10} {'SENT/RECIPIENTS':>19} CREATED")
    for item in found:
        progress = f"{item.done:,}/{item.total:,}"
        click.echo(
            f"{item.id:32} {item.state:10} {progress:>19} "
            f"{item.created_at.isoformat(timespec='seconds')}"
        )


@sends.command("show")
@click.argument("send_id", metavar="ID")
@click.pass_context
def sends_show(ctx: click.Context, send_id: str) -> None:
    """One send: its counts per state and its commonest errors."""
    from speakerfeed.actions.sends import show_send

    settings = load(ctx)
    with store(ctx, settings, need_secret=False) as opened:
        try:
            details = show_send(settings, opened, send_id)
        except SendNotFoundError as exc:
            fail(ctx, str(exc))
    record = details.send
    click.echo(f"{send_id}: {record.state} (list {record.list_name})")
    click.echo(f"  subject: {record.subject}")
    click.echo(f"  scheduled {record.scheduled_at}, created {record.created_at}")
    if record.finished_at:
        click.echo(f"  finished {record.finished_at}")
    for state, number in details.counts.items():
        click.echo(f"  {state:8} {number:>10,}")
    if details.left:
        click.echo(f"  {details.left:,} more to be added to the ledger as the send goes on")
    if details.errors:
        click.echo("  errors:")
        for detail, number in details.errors:
            click.echo(f"  {number:>10,}  {detail or '(no detail)'}")


@sends.command("resume", epilog=_EXIT_STATUS)
@click.argument("send_id", metavar="ID")
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Also send the rows marked unknown again (some of them may get a second copy).",
)
@_QUIET
@click.pass_context
def sends_resume(ctx: click.Context, send_id: str, resend_unknown: bool, quiet: bool) -> None:
    """Carry on with an interrupted or paused send: its pending rows only."""
    from speakerfeed.actions.sends import resume_send, transport_for

    settings = load(ctx)
    transport = transport_for(settings)
    with store(ctx, settings) as opened, send_progress(not quiet) as progress:
        try:
            resumed = resume_send(
                settings,
                opened,
                send_id,
                transport,
                resend_unknown=resend_unknown,
                progress=progress,
            )
        except SendNotFoundError as exc:
            fail(ctx, str(exc))
    if resumed.again:
        click.echo(f"{counted(resumed.again, 'unknown row')} will be sent again")
    _print_report(ctx, resumed.report)
