"""`suppressions list|show|lift`: the addresses never to be mailed, and the record of lifts."""

from __future__ import annotations

import getpass
from datetime import datetime

import click

from speakerfeed.cli.common import address, fail, load, store

# The reasons, as store.schema.SUPPRESSION_REASONS names them (spelt out: --help loads no store).
_REASONS = ("unsubscribed", "bounced", "complained", "erased", "manual")


@click.group()
def suppressions() -> None:
    """The suppression list: addresses never mailed (list, show, lift).

    Suppressions keep a keyed hash of the address, not the address: `list` shows the address
    only while a subscriber still holds it.
    """


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


@suppressions.command("list")
@click.option(
    "--reason",
    type=click.Choice(_REASONS),
    default=None,
    help="Only suppressions for this reason [default: all].",
)
@click.pass_context
def suppressions_list(ctx: click.Context, reason: str | None) -> None:
    """Print the suppressions, newest first: since when, why, and the address (or, when no
    subscriber holds it, the start of its hash)."""
    from speakerfeed.actions.suppressions import list_suppressions

    settings = load(ctx)
    with store(ctx, settings) as opened:
        found = list_suppressions(settings, opened, reason=reason)
    for item in found:
        who = item.email or f"(address not stored; hash {item.address_hash[:16]}…)"
        click.echo(f"{_when(item.since)}  {item.reason:<12}  {who}")
    click.echo(f"{len(found)} suppressed", err=True)


@suppressions.command("show")
@click.argument("email")
@click.pass_context
def suppressions_show(ctx: click.Context, email: str) -> None:
    """Print whether EMAIL is suppressed (why, since when) and every lift of its suppressions:
    who lifted it, when, and the consent note."""
    from speakerfeed.actions.suppressions import show_suppression

    checked = address(ctx, email)
    settings = load(ctx)
    with store(ctx, settings) as opened:
        history = show_suppression(settings, opened, checked)
    if history.reason is None:
        click.echo(f"{history.email}: not suppressed")
    else:
        click.echo(f"{history.email}: suppressed ({history.reason}) since {_when(history.since)}")
    for lift in history.lifts:
        forced = " with --force" if lift.forced else ""
        click.echo(
            f"  lifted {_when(lift.lifted_at)} by {lift.lifted_by}{forced}: was {lift.reason} "
            f"since {_when(lift.suppressed_at)}; consent: {lift.consent_note}"
        )


@suppressions.command("lift")
@click.argument("email")
@click.option(
    "--consent-note",
    required=True,
    metavar="TEXT",
    help="How the person asked to be mailed again (kept in the record).",
)
@click.option("--force", is_flag=True, help="Also lift a bounced, complained or erased one.")
@click.option(
    "--by",
    "lifted_by",
    default=None,
    metavar="NAME",
    help="Who lifts it, for the record [default: your login name].",
)
@click.pass_context
def suppressions_lift(
    ctx: click.Context, email: str, consent_note: str, force: bool, lifted_by: str | None
) -> None:
    """Lift EMAIL's suppression, recording who, when and the consent note.

    Unsubscribed and manual suppressions need the note; bounced, complained and erased ones
    also need --force. Lifting subscribes no one: the person signs up again, or an editor
    adds them.
    """
    from speakerfeed.actions.suppressions import LiftRefusedError, lift_suppression

    checked = address(ctx, email)
    settings = load(ctx)
    who = lifted_by or _login_name()
    with store(ctx, settings) as opened:
        try:
            lifted = lift_suppression(
                settings, opened, checked, consent_note=consent_note, lifted_by=who, force=force
            )
        except LiftRefusedError as exc:
            fail(ctx, str(exc))
    click.echo(f"{checked}: {lifted.reason} suppression lifted by {lifted.lifted_by}; recorded")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for the user id (a container, say)
        return "unknown"
