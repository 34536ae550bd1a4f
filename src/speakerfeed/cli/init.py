"""`init`: a new publication in a folder, ready for `build`, `serve` and `digest preview`."""

from __future__ import annotations

from pathlib import Path

import click

from speakerfeed.actions.project import create_project


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--title", default="My Publication", show_default=True, help="The site's name.")
@click.option(
    "--url", default="https://www.example.org", show_default=True, help="The site's address."
)
@click.option("--force", is_flag=True, help="Replace an existing config.toml.")
def init(folder: Path, title: str, url: str, force: bool) -> None:
    """Create a new publication in FOLDER: a commented config.toml, articles/ with a sample
    article, and an empty templates/ folder for overriding any template by file name.

    An existing config.toml is kept unless --force; existing articles are never touched."""
    project = create_project(folder, title=title, url=url, force=force)
    for path in project.written:
        click.echo(f"created {path}{'/' if path.is_dir() else ''}")
    click.echo(
        f"Next: cd {folder} && speakerfeed build && speakerfeed serve "
        "(then open http://127.0.0.1:8080/)"
    )
