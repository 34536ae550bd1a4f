"""`schedule list`, `schedule pause` and `schedule resume`: the lists' digest schedules."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from speakerfeed.cli.common import load, store

if TYPE_CHECKING:
    from speakerfeed.actions.schedules import ScheduleState


@click.group("schedule")
def schedule_group() -> None:
    """The lists' digest schedules (each list's own and its cadences'): list them, pause or
    resume a list's."""


@schedule_group.command("list")
@click.pass_context
def schedule_list(ctx: click.Context) -> None:
    """Each digest job, its crontab and its next run in the list's own time zone: digest:LIST
    for the list's own schedule, digest:LIST:CADENCE for each of its cadences."""
    from speakerfeed.actions.schedules import list_schedules

    settings = load(ctx)
    with store(ctx, settings, need_secret=False) as opened:
        runs = list_schedules(settings, opened)
    if not runs:
        click.echo("no [[lists]] in the configuration: nothing is scheduled")
    for run in runs:
        when = run.next_run.strftime("%a %d %b %Y %H:%M %Z") if run.next_run else "never"
        state = "paused" if run.paused else f"next: {when}"
        click.echo(f"{run.job:28} {run.schedule:16} {run.zone:20} {state}")


@schedule_group.command("pause")
@click.argument("list_name", metavar="LIST")
@click.pass_context
def schedule_pause(ctx: click.Context, list_name: str) -> None:
    """Stop LIST's scheduled digests, its cadences' too, until `schedule resume` (takes effect
    at once)."""
    from speakerfeed.actions.schedules import pause_schedule

    settings = load(ctx)
    with store(ctx, settings, list_name, need_secret=False) as opened:
        _print(pause_schedule(settings, opened, list_name))


@schedule_group.command("resume")
@click.argument("list_name", metavar="LIST")
@click.pass_context
def schedule_resume(ctx: click.Context, list_name: str) -> None:
    """Let LIST's scheduled digests (its cadences' too) go out again, from the next scheduled
    time."""
    from speakerfeed.actions.schedules import resume_schedule

    settings = load(ctx)
    with store(ctx, settings, list_name, need_secret=False) as opened:
        _print(resume_schedule(settings, opened, list_name))


def _print(state: ScheduleState) -> None:
    cadences = ", ".join(state.cadences)
    also = f" (its cadences too: {cadences})" if cadences else ""
    verb = "paused" if state.paused else "resumed"
    click.echo(f"{state.list_name}: scheduled digests {verb}{also}")
