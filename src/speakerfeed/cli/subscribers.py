"""`subscribers import|export|add|remove|count|show|erase`: the editors' subscriber commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from speakerfeed.cli.common import address, fail, load, print_problems, progress_bar, store
from speakerfeed.errors import AddressError, SuppressedAddressError, UnsubscribedAddressError

if TYPE_CHECKING:
    from speakerfeed.actions.subscribers import Status


@click.group()
def subscribers() -> None:
    """The editors' subscriber commands: import, export, add, remove, count, show, erase,
    resend-confirmation.

    Each first migrates the database named by [store] url, so a fresh one works.
    """


_LIST = click.option("--list", "list_name", required=True, metavar="LIST", help="A [[lists]] name.")
_STATUS = click.option(
    "--status",
    type=click.Choice(["pending", "confirmed", "unsubscribed"]),
    default=None,
    help="Only subscriptions with this status [default: all].",
)


def _status(value: str | None) -> Status | None:
    from speakerfeed.actions.subscribers import Status

    return None if value is None else Status(value)


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_LIST
@click.option(
    "--confirmed",
    is_flag=True,
    help='The addresses have consented: subscribe them confirmed, with consent "imported".',
)
@click.option(
    "--update",
    is_flag=True,
    help="Replace the names and time zones stored with the file's [default: keep those stored, "
    "which readers may have chosen, and only fill in missing ones].",
)
@click.option("--dry-run", is_flag=True, help="Check the file and report; write nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def subscribers_import(
    ctx: click.Context,
    file: Path,
    list_name: str,
    confirmed: bool,
    update: bool,
    dry_run: bool,
    quiet: bool,
) -> None:
    """Import FILE (CSV with an email column; name and timezone optional) into LIST.

    Fields may be separated by commas, semicolons or tabs (guessed from the header). Without
    --confirmed new subscriptions are pending (they need double opt-in). Suppressed or
    unsubscribed addresses are never subscribed again. Every bad row is reported with its line
    and the rest are imported; a row whose time zone is unknown is imported without it (and
    reported). Exits with 1 if any row was rejected.
    """
    from speakerfeed.actions.subscribers import import_subscribers

    settings = load(ctx)
    with store(ctx, settings, list_name) as opened, progress_bar(not quiet) as progress:
        report = import_subscribers(
            settings,
            opened,
            list_name,
            file,
            confirmed=confirmed,
            update=update,
            dry_run=dry_run,
            progress=progress,
        )
    print_problems(report.problems)
    click.echo(f"{file} → {list_name}: {report.summary()}")
    if dry_run:
        click.echo("dry run: nothing was written")
    if report.rejected:
        ctx.exit(1)


@contextmanager
def _text_out(path: Path | None) -> Iterator[TextIO]:
    """The file at path, or standard output; newline="" as the csv module wants."""
    if path is None:
        yield sys.stdout
        return
    with path.open("w", encoding="utf-8", newline="") as stream:
        yield stream


@subscribers.command("export")
@_LIST
@_STATUS
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the CSV to this file [default: standard output].",
)
@click.pass_context
def subscribers_export(
    ctx: click.Context, list_name: str, status: str | None, out: Path | None
) -> None:
    """Write LIST's subscribers as CSV (email, name, timezone, status), in a form import reads."""
    from speakerfeed.actions.subscribers import export_subscribers

    settings = load(ctx)
    with store(ctx, settings, list_name, need_secret=False) as opened, _text_out(out) as stream:
        export_subscribers(settings, opened, list_name, stream, status=_status(status))
    if out is not None:
        click.echo(f"wrote {out}", err=True)


@subscribers.command("add")
@click.argument("email")
@_LIST
@click.option("--name", default="", help="The subscriber's name.")
@click.option("--confirmed", is_flag=True, help="They have consented: no double opt-in.")
@click.pass_context
def subscribers_add(
    ctx: click.Context, email: str, list_name: str, name: str, confirmed: bool
) -> None:
    """Subscribe EMAIL to LIST (pending unless --confirmed). A suppressed or unsubscribed address
    is refused."""
    from speakerfeed.actions.subscribers import add_subscriber, new_address

    settings = load(ctx)
    try:  # the check sign-up and import make, not the looser one of look-ups
        checked = new_address(settings, email)
    except AddressError as exc:
        fail(ctx, str(exc))
    with store(ctx, settings, list_name) as opened:
        try:
            added = add_subscriber(
                settings, opened, list_name, checked, name=name, confirmed=confirmed
            )
        except SuppressedAddressError as exc:
            fail(ctx, str(exc))
        except UnsubscribedAddressError as exc:
            click.secho(f"error: {exc}", err=True)
            ctx.exit(1)
    click.echo(f"{added.address}: {added.status} on {added.list_name}")


_NOT_SENT = {
    "not-pending": "not sent: no pending subscription to the list",
    "suppressed": "not sent: the address is suppressed (see `suppressions show`)",
    "limited": "not sent: the address had its share of emails for now ([signup] per_address); "
    "try again later",
    "failed": "not sent: the transport failed",
}


def _age(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    """ "90m", "48h" or "2d" as a timedelta."""
    units = {"m": "minutes", "h": "hours", "d": "days"}
    number, unit = value[:-1].strip(), value[-1:].lower()
    if unit not in units or not number.isdigit():
        raise click.BadParameter(
            f"expected minutes, hours or days such as 90m, 48h or 2d; got {value!r}"
        )
    return timedelta(**{units[unit]: int(number)})


@subscribers.command("resend-confirmation")
@click.argument("emails", nargs=-1, metavar="[EMAIL]...")
@_LIST
@click.option(
    "--all-pending",
    is_flag=True,
    help="Every address pending on LIST for at least --min-age (instead of EMAILs).",
)
@click.option(
    "--min-age",
    "min_age",
    default="24h",
    show_default=True,
    callback=_age,
    metavar="AGE",
    help="With --all-pending: how long since the sign-up or the last confirmation (90m, 48h, 2d).",
)
@click.pass_context
def subscribers_resend_confirmation(
    ctx: click.Context,
    emails: tuple[str, ...],
    list_name: str,
    all_pending: bool,
    min_age: timedelta,
) -> None:
    """Send LIST's confirmation email again to each pending EMAIL (or --all-pending).

    By the sign-up form's rules: never to a suppressed address, and within [signup]
    per_address emails per address per window (a resend counts as a sign-up does). Each is
    recorded in the person's consent records. Exits with 1 if a named EMAIL was not sent, or
    a sending failed.
    """
    from speakerfeed.actions.sends import transport_for
    from speakerfeed.actions.subscribers import resend_confirmations

    if bool(emails) == all_pending:
        fail(ctx, "name the pending EMAIL addresses, or pass --all-pending (not both)")
    checked = [address(ctx, email) for email in emails]
    settings = load(ctx)
    transport = transport_for(settings)  # a missing password is reported before anything
    with store(ctx, settings, list_name) as opened:
        results = resend_confirmations(
            settings,
            opened,
            list_name,
            transport,
            emails=checked,
            pending_for=min_age if all_pending else None,
        )
    for result in results:
        if result.sent:
            click.echo(f"{result.address}: confirmation sent")
        else:
            detail = f" ({result.detail})" if result.detail else ""
            click.secho(f"{result.address}: {_NOT_SENT[result.outcome]}{detail}", err=True)
    sent = sum(result.sent for result in results)
    click.echo(f"{sent} of {len(results)} confirmation(s) sent for {list_name}")
    failed = any(result.outcome == "failed" for result in results)
    if failed or (emails and sent < len(results)):
        ctx.exit(1)


@subscribers.command("remove")
@click.argument("email")
@_LIST
@click.pass_context
def subscribers_remove(ctx: click.Context, email: str, list_name: str) -> None:
    """Unsubscribe EMAIL from LIST; leaving the last list also suppresses the address
    (reason "unsubscribed"), as the readers' unsubscribe page does."""
    from speakerfeed.actions.subscribers import remove_subscriber

    checked = address(ctx, email)
    settings = load(ctx)
    with store(ctx, settings, list_name) as opened:
        removed = remove_subscriber(settings, opened, list_name, checked)
    if not removed.on_list:
        click.echo(f"{removed.address}: not subscribed to {list_name}; nothing changed")
    else:
        also = " and suppressed (no list left)" if removed.suppressed else ""
        click.echo(f"{removed.address}: unsubscribed from {list_name}{also}")


@subscribers.command("count")
@_LIST
@_STATUS
@click.pass_context
def subscribers_count(ctx: click.Context, list_name: str, status: str | None) -> None:
    """Print the number of LIST's subscriptions (of one status, or all)."""
    from speakerfeed.actions.subscribers import count_subscribers

    settings = load(ctx)
    with store(ctx, settings, list_name, need_secret=False) as opened:
        click.echo(count_subscribers(settings, opened, list_name, status=_status(status)))


@subscribers.command("show")
@click.argument("email")
@click.pass_context
def subscribers_show(ctx: click.Context, email: str) -> None:
    """Print everything stored about EMAIL as JSON (subscriptions, consent, suppression)."""
    from speakerfeed.actions.subscribers import show_subscriber

    checked = address(ctx, email)
    settings = load(ctx)
    with store(ctx, settings) as opened:
        found = show_subscriber(settings, opened, checked)
    click.echo(json.dumps(found.as_json(), indent=2, ensure_ascii=False))


@subscribers.command("erase")
@click.argument("email")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--block",
    is_flag=True,
    help="Suppress the address even if no subscriber holds it (someone asked never to be "
    "mailed) [default: an unknown address is left alone].",
)
@click.pass_context
def subscribers_erase(ctx: click.Context, email: str, yes: bool, block: bool) -> None:
    """Delete EMAIL and everything tied to it, keeping only a hash of the address (suppressed,
    reason "erased") so it cannot be imported or subscribed again. Asks first unless --yes.
    An address no subscriber holds is not suppressed unless --block."""
    from speakerfeed.actions.subscribers import erase_subscriber

    checked = address(ctx, email)
    settings = load(ctx)
    if not yes:
        try:
            click.confirm(
                f"Erase {checked} and everything stored about it? This cannot be undone",
                abort=True,
                err=True,
            )
        except click.Abort:  # "no", or no answer (standard input closed or not a terminal)
            fail(ctx, f"{checked}: not erased (answer yes, or pass --yes)")
    with store(ctx, settings) as opened:
        erased = erase_subscriber(settings, opened, checked, block=block)
    if erased.found:
        click.echo(f"{erased.address}: erased; only a suppressed hash of the address is kept")
    elif erased.suppressed:
        click.echo(f"{erased.address}: nothing stored; its hash is suppressed (--block)")
    else:
        click.echo(
            f"{erased.address}: nothing stored; nothing changed (--block suppresses it anyway)"
        )
