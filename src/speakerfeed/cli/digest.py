"""`digest preview` and `digest lint`: a list's next digest, looked at before it is sent."""

from __future__ import annotations

from pathlib import Path
from typing import assert_never

import click

from speakerfeed.cli.common import (
    NO_FETCH,
    cadence_option,
    digest_name,
    load,
    print_findings,
    print_problems,
)
from speakerfeed.wording import counted


@click.group()
def digest() -> None:
    """Email digests: preview and lint the next digest of a list."""


@digest.command()
@click.argument("list_name", metavar="LIST")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("preview"),
    show_default=True,
    help="Folder for the .html, .txt and .eml files.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML in a web browser.")
@NO_FETCH
@cadence_option("Preview")
@click.pass_context
def preview(
    ctx: click.Context,
    list_name: str,
    out: Path,
    open_browser: bool,
    no_fetch: bool,
    cadence: str,
) -> None:
    """Write LIST's next digest, as a sample subscriber gets it, to .html, .txt and .eml files.

    Nothing is sent or recorded. Exits with 1 when the pre-send lint would block the digest.
    """
    from speakerfeed.actions.digests import Previewed, preview_digest
    from speakerfeed.digest.issue import NothingNew

    settings = load(ctx)
    made = preview_digest(
        settings, list_name, out=out, cadence=cadence, fetch_upstreams=not no_fetch
    )
    match made:
        case NothingNew():
            name = digest_name(list_name, cadence)
            click.echo(f"{name}: no new articles since the last digest, so no digest.")
            return
        case Previewed(made_digest, paths):
            pass
        case _:
            assert_never(made)
    print_problems(made_digest.problems)
    for path in paths:
        click.echo(f"wrote {path}")
    rendered = made_digest.rendered
    click.echo(
        f"{rendered.digest.id}: {counted(len(rendered.digest.articles), 'article')}; "
        f"{rendered.subject}"
    )
    note = made_digest.note
    if note is not None:  # the editor sees which file the next send will take, and move
        click.echo(f"editor's note: {note.path} ({note.view.heading!r}), above the articles")
    print_findings(made_digest.findings)
    if open_browser:
        import webbrowser

        html = next((p for p in paths if p.suffix == ".html"), None)
        if html is None or not webbrowser.open(html.resolve().as_uri()):
            click.echo("no web browser is available here; open the .html file yourself")
    if made_digest.blocked:
        ctx.exit(1)


@digest.command()
@click.argument("list_name", metavar="LIST")
@NO_FETCH
@cadence_option("Lint")
@click.pass_context
def lint(ctx: click.Context, list_name: str, no_fetch: bool, cadence: str) -> None:
    """Check LIST's next digest as the pre-send lint does; exit 1 if it would be blocked."""
    from speakerfeed.actions.digests import Linted, lint_digest
    from speakerfeed.digest.issue import NothingNew

    settings = load(ctx)
    linted = lint_digest(settings, list_name, cadence=cadence, fetch_upstreams=not no_fetch)
    match linted:
        case NothingNew():
            name = digest_name(list_name, cadence)
            click.echo(f"{name}: no new articles since the last digest, so nothing to lint.")
        case Linted():
            print_findings(linted.findings)
            click.echo(
                f"{linted.digest_id}: {counted(linted.errors, 'error')}, "
                f"{counted(linted.warnings, 'warning')}"
            )
            if linted.errors:
                ctx.exit(1)
        case _:
            assert_never(linted)
