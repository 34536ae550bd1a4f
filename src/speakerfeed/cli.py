"""The `speakerfeed` command: parse, call, print. The work is done in publish and friends."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from speakerfeed import __version__
from speakerfeed.config import Settings, config_path, load_settings
from speakerfeed.errors import ConfigError, Problem, SpeakerfeedError
from speakerfeed.publish import Builder, ProgressCallback

log = logging.getLogger("speakerfeed")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        return json.dumps(entry, ensure_ascii=False)


def _setup_logging(verbose: int, json_logs: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        click.secho(str(problem), err=True, fg="yellow" if problem.warning else "red")


def _load(ctx: click.Context) -> Settings:
    try:
        settings: Settings = load_settings(ctx.obj["config"])
    except ConfigError as exc:
        _print_problems(exc.problems)
        click.secho(f"{len(exc.problems)} problem(s) in {ctx.obj['config']}", err=True, bold=True)
        ctx.exit(1)
    return settings


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[ProgressCallback | None]:
    """A progress bar for long builds, shown only on a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    bars: dict[str, Any] = {}

    def advance(phase: str, done: int, total: int) -> None:
        if total < 200:  # over in a blink: not worth a bar
            return
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = click.progressbar(
                length=total, label=f"{phase:16}", file=sys.stderr, show_pos=True, show_eta=True
            )
            bar.__enter__()
        bar.update(done)
        if bar.pos >= total:
            bar.__exit__(None, None, None)

    yield advance


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
    _setup_logging(verbose, log_json)
    ctx.obj = {"config": config_path(explicit=str(config) if config else None)}


@main.command()
@click.option(
    "--strict", is_flag=True, help="Exit with 1 if any article or upstream had a problem."
)
@click.option("--no-fetch", is_flag=True, help="Do not fetch upstream feeds (use articles/ only).")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
@click.pass_context
def build(ctx: click.Context, strict: bool, no_fetch: bool, quiet: bool) -> None:
    """Read the articles and upstream feeds and write the feeds to the output folder.

    Files whose bytes did not change are not rewritten; only changed articles are parsed again.
    A bad article is reported with its path and line, and every other article still builds.
    """
    settings = _load(ctx)
    with _progress_bar(not quiet) as progress:
        report = Builder(settings, fetch_upstreams=not no_fetch, progress=progress).build()
    _print_problems(report.problems)
    if not quiet:
        click.echo(f"Built {settings.output_dir}: {report.summary()}")
    if strict and report.errors:
        ctx.exit(1)


@main.command()
@click.option("--no-fetch", is_flag=True, help="Do not fetch upstream feeds.")
@click.pass_context
def check(ctx: click.Context, no_fetch: bool) -> None:
    """Validate config.toml and every article; print every problem. Exit 1 if there is any.

    Nothing is written.
    """
    settings = _load(ctx)
    _, report = Builder(settings, fetch_upstreams=not no_fetch).read_articles()
    _print_problems(report.problems)
    errors = len(report.errors)
    click.echo(
        f"{ctx.obj['config']}: ok; {report.files} article files, {report.articles} published, "
        f"{report.drafts} drafts; {errors} problem(s), {len(report.problems) - errors} warning(s)"
    )
    if errors:
        ctx.exit(1)


@main.command()
@click.option("--host", default=None, help="Address to listen on [default: server.host].")
@click.option("--port", type=int, default=None, help="Port to listen on [default: server.port].")
@click.option("--no-build", is_flag=True, help="Serve the output folder as it is.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, no_build: bool) -> None:
    """Build the feeds, then serve the output folder over HTTP (127.0.0.1 by default)."""
    import uvicorn

    from speakerfeed.web.app import create_app

    settings = _load(ctx)
    if not no_build:
        report = Builder(settings).build()
        _print_problems(report.problems)
        click.echo(f"Built {settings.output_dir}: {report.summary()}")
    host = host or settings.server.host
    port = port or settings.server.port
    click.echo(f"Serving {settings.output_dir} on http://{host}:{port}/ (Ctrl+C to stop)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def run() -> None:
    """Entry point that turns any error we raise on purpose into a message, not a traceback."""
    try:
        main()
    except SpeakerfeedError as exc:
        click.secho(f"error: {exc}", err=True, fg="red")
        raise SystemExit(1) from None


@main.group()
def digest() -> None:
    """Email digests: preview and lint the next digest of a list."""


def _findings(preview: Any) -> None:
    for finding in preview.findings:
        colour = "red" if finding.severity == "error" else "yellow"
        click.secho(f"{finding.severity}: {finding.rule}: {finding.message}", err=True, fg=colour)


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
@click.option("--no-fetch", is_flag=True, help="Do not fetch upstream feeds.")
@click.pass_context
def preview(
    ctx: click.Context, list_name: str, out: Path, open_browser: bool, no_fetch: bool
) -> None:
    """Write LIST's next digest, as a sample subscriber gets it, to .html, .txt and .eml files.

    Nothing is sent or recorded. Exits with 1 when the pre-send lint would block the digest.
    """
    from speakerfeed.preview import find_list, prepare, write_preview

    settings = _load(ctx)
    made = prepare(settings, find_list(settings, list_name), fetch_upstreams=not no_fetch)
    if made is None:
        click.echo(f"{list_name}: no new articles since the last digest, so no digest.")
        return
    _print_problems(made.problems)
    paths = write_preview(made, out)
    for path in paths:
        click.echo(f"wrote {path}")
    digest_made = made.rendered.digest
    click.echo(f"{digest_made.id}: {len(digest_made.articles)} articles; {made.rendered.subject}")
    _findings(made)
    if open_browser:
        import webbrowser

        html = next((p for p in paths if p.suffix == ".html"), None)
        if html is None or not webbrowser.open(html.resolve().as_uri()):
            click.echo("no web browser is available here; open the .html file yourself")
    if made.blocked:
        ctx.exit(1)


@digest.command()
@click.argument("list_name", metavar="LIST")
@click.option("--no-fetch", is_flag=True, help="Do not fetch upstream feeds.")
@click.pass_context
def lint(ctx: click.Context, list_name: str, no_fetch: bool) -> None:
    """Check LIST's next digest as the pre-send lint does; exit 1 if it would be blocked."""
    from speakerfeed.preview import find_list, prepare

    settings = _load(ctx)
    made = prepare(settings, find_list(settings, list_name), fetch_upstreams=not no_fetch)
    if made is None:
        click.echo(f"{list_name}: no new articles since the last digest, so nothing to lint.")
        return
    _findings(made)
    errors = sum(1 for f in made.findings if f.severity == "error")
    click.echo(
        f"{made.rendered.digest.id}: {errors} error(s), {len(made.findings) - errors} warning(s)"
    )
    if errors:
        ctx.exit(1)


@main.group()
def db() -> None:
    """The subscriber database named by [store] url: SQLite or PostgreSQL."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply every pending migration (creating the SQLite file if needed); print the revision."""
    from speakerfeed.store.engine import create_engine_for, upgrade

    settings = _load(ctx)
    engine = create_engine_for(settings)
    try:
        revision = upgrade(engine)
    finally:
        engine.dispose()
    click.echo(f"{engine.url.render_as_string(hide_password=True)}: at revision {revision}")
