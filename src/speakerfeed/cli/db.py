"""`db upgrade`: the subscriber database's migrations."""

from __future__ import annotations

import click

from speakerfeed.cli.common import load


@click.group()
def db() -> None:
    """The subscriber database named by [store] url: SQLite or PostgreSQL."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply every pending migration (creating the SQLite file if needed); print the revision."""
    from speakerfeed.actions.database import upgrade_database

    upgraded = upgrade_database(load(ctx))
    click.echo(f"{upgraded.database}: at revision {upgraded.revision}")
