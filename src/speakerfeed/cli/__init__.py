"""The `speakerfeed` command: parse the arguments, call an action (speakerfeed.actions), print
what it returns. No SQL and no rules of the business here.

One module per group of commands: ``init`` (a new publication), ``site`` (build, check, serve,
worker), ``digest``, ``subscribers``, ``send`` (send and sends), ``schedule`` and ``db``;
``common`` holds what they share.
"""

from __future__ import annotations

from pathlib import Path

import click

from speakerfeed import __version__
from speakerfeed.cli.common import Options, setup_logging
from speakerfeed.cli.db import db
from speakerfeed.cli.digest import digest
from speakerfeed.cli.init import init
from speakerfeed.cli.schedule import schedule_group
from speakerfeed.cli.send import send, sends
from speakerfeed.cli.site import build, check, serve, worker
from speakerfeed.cli.subscribers import subscribers
from speakerfeed.cli.suppressions import suppressions
from speakerfeed.config import config_path
from speakerfeed.errors import SpeakerfeedError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="speakerfeed")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file [default: $SPEAKERFEED_CONFIG or ./config.toml].",
)
@click.option("-v", "--verbose", count=True, help="Say more (-vv for debugging).")
@click.option("--log-json", is_flag=True, help="Log one JSON object per line.")
@click.pass_context
def main(ctx: click.Context, config: Path | None, verbose: int, log_json: bool) -> None:
    """Feeds and email digests for The Speaker."""
    setup_logging(verbose, log_json)
    ctx.obj = Options(config_path(explicit=str(config) if config else None))


for command in (
    init,
    build,
    check,
    serve,
    worker,
    digest,
    db,
    subscribers,
    suppressions,
    send,
    sends,
    schedule_group,
):
    main.add_command(command)


def run() -> None:
    """Entry point that turns any error we raise on purpose into a message, not a traceback."""
    try:
        main()
    except SpeakerfeedError as exc:
        click.secho(f"error: {exc}", err=True, fg="red")
        raise SystemExit(1) from None


__all__ = ["main", "run"]
