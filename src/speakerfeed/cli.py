"""The `speakerfeed` command: parse, call, print. The work is done in publish and friends."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, assert_never

import click

from speakerfeed import __version__
from speakerfeed.config import Settings, config_path, load_settings
from speakerfeed.errors import ConfigError, Problem, SendNotFoundError, SpeakerfeedError
from speakerfeed.feeds.build import Builder
from speakerfeed.sources.read import ProgressCallback, read_articles

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
    _, report = read_articles(settings, fetch_upstreams=not no_fetch)
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
    """Run the service: migrate the database, build the feeds, serve the feeds and the readers'
    pages, rebuild on schedule and when articles change, and send each list's digest on its
    schedule (one process runs the scheduler; every process sends). 127.0.0.1 by default."""
    import uvicorn

    from speakerfeed.config.secret_key import load_secret_key
    from speakerfeed.service import Service
    from speakerfeed.store.engine import create_engine_for, upgrade
    from speakerfeed.transports.registry import transport_from_settings
    from speakerfeed.web.app import create_app

    settings = _load(ctx)
    # A service's log says what it did (builds, sends, elections, start and stop) without -v;
    # uvicorn's access log (every feed reader's poll) only with -v.
    if log.getEffectiveLevel() > logging.INFO:
        for name in ("speakerfeed", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.INFO)
    secret = load_secret_key(settings)
    # Made once now, so a missing password or API key stops start-up, not the first sign-up.
    transport_from_settings(settings.delivery, settings.root)
    engine = create_engine_for(settings)
    revision = upgrade(engine)
    click.echo(f"Database {engine.url.render_as_string(hide_password=True)}: revision {revision}")

    def transport() -> Any:
        return transport_from_settings(settings.delivery, settings.root)

    service = Service(settings, engine, secret, transport)
    if not no_build:
        service.rebuild()
        built = service.last_build
        click.echo(
            f"Built {settings.output_dir}: {built['articles']} articles, "
            f"{built['written']} files written, {built['problems']} problems"
        )
    host = host or settings.server.host
    port = port or settings.server.port
    app = create_app(settings, engine=engine, secret=secret, transport=transport, service=service)
    proxies = settings.server.trusted_proxies
    click.echo(f"Serving {settings.output_dir} on http://{host}:{port}/ (Ctrl+C to stop)")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=bool(proxies),
        forwarded_allow_ips=list(proxies) or None,
        server_header=False,
        timeout_graceful_shutdown=60,
        # uvicorn's loggers go through ours: one format for every line, JSON with --log-json.
        log_config=None,
        # A line per request costs more CPU than serving a 304 does: only with -v.
        access_log=logging.getLogger().level <= logging.INFO,
    )


@main.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Work on send batches only (no web pages, no scheduler): add these on other machines
    sharing the PostgreSQL database to send faster. Stops cleanly on SIGTERM or Ctrl+C."""
    import signal
    import threading

    from speakerfeed.config.secret_key import load_secret_key
    from speakerfeed.service import Service
    from speakerfeed.store.engine import create_engine_for, upgrade
    from speakerfeed.transports.registry import transport_from_settings

    settings = _load(ctx)
    secret = load_secret_key(settings)
    transport_from_settings(settings.delivery, settings.root)
    engine = create_engine_for(settings)
    upgrade(engine)
    service = Service(
        settings,
        engine,
        secret,
        lambda: transport_from_settings(settings.delivery, settings.root),
        scheduling=False,
        watching=False,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    service.start()
    click.echo("worker: sending batches as they come (Ctrl+C to stop)")
    stop.wait()
    service.stop()


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


def _cadence_option(doing: str, to_whom: str = "") -> Callable[[Callable[..., Any]], Any]:
    return click.option(
        "--cadence",
        metavar="NAME",
        default="",
        help=f"{doing} the digest of LIST's cadence NAME (`cadences` in config.toml){to_whom} "
        "[default: the list's own schedule].",
    )


def _digest_name(list_name: str, cadence: str) -> str:
    """How messages name a digest's list and cadence: "daily" or "daily (weekly)"."""
    return f"{list_name} ({cadence})" if cadence else list_name


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
@_cadence_option("Preview")
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
    from speakerfeed.digest.prepare import prepare, write_preview

    settings = _load(ctx)
    list_settings = settings.require_list(list_name)
    made = prepare(settings, list_settings, fetch_upstreams=not no_fetch, cadence=cadence)
    if made is None:
        name = _digest_name(list_name, cadence)
        click.echo(f"{name}: no new articles since the last digest, so no digest.")
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
@_cadence_option("Lint")
@click.pass_context
def lint(ctx: click.Context, list_name: str, no_fetch: bool, cadence: str) -> None:
    """Check LIST's next digest as the pre-send lint does; exit 1 if it would be blocked."""
    from speakerfeed.digest.prepare import prepare

    settings = _load(ctx)
    list_settings = settings.require_list(list_name)
    made = prepare(settings, list_settings, fetch_upstreams=not no_fetch, cadence=cadence)
    if made is None:
        name = _digest_name(list_name, cadence)
        click.echo(f"{name}: no new articles since the last digest, so nothing to lint.")
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


@main.group()
def subscribers() -> None:
    """The editors' subscriber commands: import, export, add, remove, count, show, erase.

    Each first migrates the database named by [store] url, so a fresh one works.
    """


@contextmanager
def _store(
    ctx: click.Context, list_name: str | None = None, *, need_secret: bool = True
) -> Iterator[tuple[Any, bytes]]:
    """A migrated engine and the secret key, or a clear message and exit 1."""
    from sqlalchemy.exc import SQLAlchemyError

    from speakerfeed.config.secret_key import load_secret_key
    from speakerfeed.store.engine import create_engine_for, upgrade

    settings = _load(ctx)
    if list_name is not None:
        settings.require_list(list_name)
    secret = load_secret_key(settings) if need_secret else b""
    engine = create_engine_for(settings)
    try:
        upgrade(engine)
        yield engine, secret
    except SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        click.secho(f"error: database {where}: {str(exc).splitlines()[0]}", err=True, fg="red")
        ctx.exit(1)
    finally:
        engine.dispose()


_LIST = click.option("--list", "list_name", required=True, metavar="LIST", help="A [[lists]] name.")
_STATUS = click.option(
    "--status",
    type=click.Choice(["pending", "confirmed", "unsubscribed"]),
    default=None,
    help="Only subscriptions with this status [default: all].",
)


def _address(ctx: click.Context, email: str) -> str:
    from speakerfeed.store.subscribers import normalise_email

    try:
        return normalise_email(email)
    except ValueError as exc:
        click.secho(f"error: {exc}", err=True, fg="red")
        ctx.exit(1)
    raise AssertionError("unreachable")  # ctx.exit raises


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_LIST
@click.option(
    "--confirmed",
    is_flag=True,
    help='The addresses have consented: subscribe them confirmed, with consent "imported".',
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def subscribers_import(
    ctx: click.Context, file: Path, list_name: str, confirmed: bool, quiet: bool
) -> None:
    """Import FILE (CSV with an email column; name and timezone optional) into LIST.

    Without --confirmed new subscriptions are pending (they need double opt-in). Suppressed or
    unsubscribed addresses are never subscribed again. Every bad row is reported with its line
    and the rest are imported; exits with 1 if any row was rejected.
    """
    from speakerfeed.store.importer import import_csv

    with _store(ctx, list_name) as (engine, secret), _progress_bar(not quiet) as progress:
        report = import_csv(
            engine, file, list_name, secret=secret, confirmed=confirmed, progress=progress
        )
    _print_problems(report.problems)
    click.echo(f"{file} → {list_name}: {report.summary()}")
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
    import csv

    from speakerfeed.store.people import EXPORT_COLUMNS, export_rows

    with (
        _store(ctx, list_name, need_secret=False) as (engine, _),
        engine.connect() as conn,
        _text_out(out) as stream,
    ):
        writer = csv.DictWriter(stream, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(export_rows(conn, list_name, status))
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
    from sqlalchemy import select

    from speakerfeed.store import subscribers as repo
    from speakerfeed.store.schema import subscriptions

    address = _address(ctx, email)
    with _store(ctx, list_name) as (engine, secret), engine.begin() as conn:
        if repo.is_suppressed(conn, repo.address_hash(secret, address)):
            click.secho(f"error: {address} is suppressed; not added", err=True, fg="red")
            ctx.exit(1)
        subscriber_id = repo.add_subscriber(conn, address, name=name)
        current = conn.execute(
            select(subscriptions.c.status)
            .where(subscriptions.c.subscriber_id == subscriber_id)
            .where(subscriptions.c.list_name == list_name)
        ).scalar()
        if current == "unsubscribed":
            click.secho(f"error: {address} unsubscribed from {list_name}; not added", err=True)
            ctx.exit(1)
        status = "confirmed" if confirmed or current == "confirmed" else "pending"
        consent = {"action": "added", "form": "cli"}
        repo.subscribe(conn, subscriber_id, list_name, status=status, consent=consent)
    click.echo(f"{address}: {status} on {list_name}")


@subscribers.command("remove")
@click.argument("email")
@_LIST
@click.pass_context
def subscribers_remove(ctx: click.Context, email: str, list_name: str) -> None:
    """Unsubscribe EMAIL from LIST; leaving the last list also suppresses the address
    (reason "unsubscribed"), as the readers' unsubscribe page does."""
    from speakerfeed.store import subscribers as repo
    from speakerfeed.subscriptions import membership as subscriptions

    address = _address(ctx, email)
    editor = subscriptions.Visitor(ip="", user_agent="speakerfeed CLI")
    with _store(ctx, list_name) as (engine, secret), engine.begin() as conn:
        person = repo.find_by_email(conn, address)
        changed = person is not None and subscriptions.unsubscribe(
            conn,
            secret=secret,
            subscriber_id=person.id,
            list_name=list_name,
            visitor=editor,
            form="cli",
        )
        suppressed = repo.is_suppressed(conn, repo.address_hash(secret, address))
    if not changed:
        click.echo(f"{address}: not subscribed to {list_name}; nothing changed")
    else:
        also = " and suppressed (no list left)" if suppressed else ""
        click.echo(f"{address}: unsubscribed from {list_name}{also}")


@subscribers.command("count")
@_LIST
@_STATUS
@click.pass_context
def subscribers_count(ctx: click.Context, list_name: str, status: str | None) -> None:
    """Print the number of LIST's subscriptions (of one status, or all)."""
    from speakerfeed.store.subscribers import count_subscriptions

    with _store(ctx, list_name, need_secret=False) as (engine, _), engine.connect() as conn:
        click.echo(count_subscriptions(conn, list_name, status))


@subscribers.command("show")
@click.argument("email")
@click.pass_context
def subscribers_show(ctx: click.Context, email: str) -> None:
    """Print everything stored about EMAIL as JSON (subscriptions, consent, suppression)."""
    from speakerfeed.store.people import show

    address = _address(ctx, email)
    with _store(ctx) as (engine, secret), engine.connect() as conn:
        found = show(conn, address, secret)
    click.echo(json.dumps(found, indent=2, ensure_ascii=False))


@subscribers.command("erase")
@click.argument("email")
@click.pass_context
def subscribers_erase(ctx: click.Context, email: str) -> None:
    """Delete EMAIL and everything tied to it, keeping only a hash of the address (suppressed,
    reason "erased") so it cannot be imported or subscribed again."""
    from speakerfeed.store.people import erase

    address = _address(ctx, email)
    with _store(ctx) as (engine, secret), engine.begin() as conn:
        found = erase(conn, address, secret)
    if found:
        click.echo(f"{address}: erased; only a suppressed hash of the address is kept")
    else:
        click.echo(f"{address}: nothing stored; its hash is suppressed all the same")


# ----------------------------------------------------------------------------------------- send


@contextmanager
def _send_progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """done/total, rate and ETA on a terminal; nothing elsewhere (logs say what happened)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    import time

    started = time.monotonic()
    state: dict[str, Any] = {}

    def show(_: Any) -> str:
        elapsed = max(time.monotonic() - started, 1e-6)
        return f"{state.get('done', 0) / elapsed:,.0f} msg/s"

    def advance(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = click.progressbar(
                length=max(total, 1),
                label="sending",
                file=sys.stderr,
                show_pos=True,
                show_eta=True,
                item_show_func=show,
            )
            bar.__enter__()
        state["done"] = done
        bar.update(done - bar.pos, current_item=done)

    try:
        yield advance
    finally:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)


def _run_send(
    ctx: click.Context,
    engine: Any,
    settings: Settings,
    send_id: str,
    transport: Any,
    secret: bytes,
    *,
    quiet: bool,
) -> None:
    """Run the send with a progress bar and print its report; exit 1 if it paused or stopped."""
    from speakerfeed.digest import deliver as dispatch

    with _send_progress(not quiet) as progress:
        report = dispatch.run_send(
            engine, settings, send_id, transport, secret=secret, progress=progress
        )
    _print_report(report)
    if report.state in ("paused", "cancelled"):
        ctx.exit(1)


def _print_report(report: Any) -> None:
    counts = ", ".join(f"{n:,} {state}" for state, n in report.counts.items() if n) or "no rows"
    click.echo(f"{report.send_id}: {report.state} ({counts})")
    if report.note:
        click.echo(f"  {report.note}")
    if report.counts.get("unknown"):
        click.secho(
            f"  {report.counts['unknown']} unknown: they may or may not have arrived; "
            f"`speakerfeed sends resume {report.send_id} --resend-unknown` sends them again",
            fg="yellow",
        )


@main.command()
@click.argument("list_name", metavar="LIST")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send and record nothing.")
@click.option(
    "--test-to",
    metavar="EMAIL",
    default=None,
    help="Send one copy to EMAIL only (not recorded, nobody else gets it).",
)
@click.option(
    "--now", is_flag=True, help="Send now, whatever the list's schedule says (the default)."
)
@click.option("--no-fetch", is_flag=True, help="Do not fetch upstream feeds.")
@_cadence_option("Send", ", to the readers who chose it")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
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
    from datetime import UTC, datetime

    from speakerfeed.digest.issue import Blocked, Issued, NothingNew, Unfinished, open_send
    from speakerfeed.digest.prepare import prepare
    from speakerfeed.digest.select import cadence_schedule
    from speakerfeed.models import Outcome, Subscriber
    from speakerfeed.store import subscribers as repo
    from speakerfeed.transports.registry import transport_from_settings

    settings = _load(ctx)
    list_settings = settings.require_list(list_name)
    cadence_schedule(list_settings, cadence)  # an unknown cadence stops here, before anything
    name = _digest_name(list_name, cadence)
    moment = datetime.now(UTC)
    if dry_run or test_to:
        made = prepare(
            settings, list_settings, fetch_upstreams=not no_fetch, now=moment, cadence=cadence
        )
        if made is None:
            click.echo(f"{name}: no new articles since the last digest, so no digest.")
            return
        _findings(made)
        rendered = made.rendered
        click.echo(f"{rendered.digest.id}: {len(rendered.digest.articles)} articles")
        click.echo(f"  subject: {rendered.subject}")
        if dry_run:
            with _store(ctx, list_name) as (engine, secret), engine.connect() as conn:
                readers = repo.iter_confirmed(
                    conn,
                    list_name,
                    secret=secret,
                    cadence=cadence,
                    named_cadences=list_settings.cadences,
                )
                audience = sum(1 for _ in readers)
            chose = f" who chose {cadence}" if cadence else ""
            click.echo(
                f"  would go to {audience:,} confirmed subscribers{chose} "
                f"through the {settings.delivery.transport} transport (dry run: nothing sent)"
            )
        if test_to:
            from speakerfeed.config.secret_key import load_secret_key
            from speakerfeed.digest.letter import MessageTemplate

            address = _address(ctx, test_to)
            template = MessageTemplate.build(
                rendered, settings, list_settings, load_secret_key(settings)
            )
            batch = template.batch([Subscriber("test-send", address, "")])
            with transport_from_settings(settings.delivery, settings.root) as transport:
                (result,) = transport.send(batch)
            click.echo(f"  test copy to {address}: {result.outcome.value} {result.detail}".rstrip())
            if result.outcome is not Outcome.SENT:
                ctx.exit(1)
        if made.blocked:
            ctx.exit(1)
        return

    # Made first: a missing password or API key is reported before anything is recorded.
    transport = transport_from_settings(settings.delivery, settings.root)
    with _store(ctx, list_name) as (engine, secret):
        opened = open_send(
            engine,
            settings,
            list_settings,
            now=moment,
            fetch_upstreams=not no_fetch,
            cadence=cadence,
        )
        match opened:
            case NothingNew():
                click.echo(f"{name}: no new articles since the last digest, so no digest.")
                return
            case Blocked(preview):
                _findings(preview)
                click.secho("the digest is blocked by the lint above; nothing was sent", err=True)
                ctx.exit(1)
            case Unfinished(send_id):
                click.echo(f"{name}: carrying on with the unfinished send {send_id}")
            case Issued(send_id):
                pass
            case _:
                assert_never(opened)
        _run_send(ctx, engine, settings, send_id, transport, secret, quiet=quiet)


@main.group()
def sends() -> None:
    """The delivery ledger: list sends, show one, resume one."""


@sends.command("list")
@click.option("--limit", default=20, show_default=True, help="How many, newest first.")
@click.pass_context
def sends_list(ctx: click.Context, limit: int) -> None:
    """The newest sends with their state."""
    from speakerfeed.store import ledger

    settings = _load(ctx)
    with _store(ctx, need_secret=False) as (engine, _), engine.connect() as conn:
        rows = ledger.list_sends(conn, limit=limit)
        if not rows:
            click.echo("no sends yet")
        for row in rows:
            send_id = str(row["id"])
            counts = ledger.counts(conn, send_id)
            done = counts["sent"]
            total = sum(counts.values()) + _audience_left(conn, settings, send_id, row)
            created = row["created_at"]
            assert hasattr(created, "isoformat")
            click.echo(
                f"{row['id']:32} {row['state']:10} {done:>9,}/{total:<9,} "
                f"{created.isoformat(timespec='seconds')}"
            )


@sends.command("show")
@click.argument("send_id", metavar="ID")
@click.pass_context
def sends_show(ctx: click.Context, send_id: str) -> None:
    """One send: its counts per state and its commonest errors."""
    from speakerfeed.store import ledger

    with _store(ctx, need_secret=False) as (engine, _), engine.connect() as conn:
        row = ledger.send_row(conn, send_id)
        if row is None:
            click.secho(f"error: no send with id {send_id!r}", err=True, fg="red")
            ctx.exit(1)
        assert row is not None
        click.echo(f"{send_id}: {row['state']} (list {row['list_name']})")
        click.echo(f"  subject: {row['subject']}")
        click.echo(f"  scheduled {row['scheduled_at']}, created {row['created_at']}")
        if row["finished_at"]:
            click.echo(f"  finished {row['finished_at']}")
        for state, number in ledger.counts(conn, send_id).items():
            click.echo(f"  {state:8} {number:>10,}")
        left = _audience_left(conn, _load(ctx), send_id, row)
        if left:
            click.echo(f"  {left:,} more to be added to the ledger as the send goes on")
        problems = ledger.errors(conn, send_id)
        if problems:
            click.echo("  errors:")
            for detail, number in problems:
                click.echo(f"  {number:>10,}  {detail or '(no detail)'}")


def _audience_left(conn: Any, settings: Settings, send_id: str, row: Any) -> int:
    """The people still to be added to a send's ledger (see ledger.claim_audience)."""
    from speakerfeed.store import ledger

    found = [item for item in settings.lists if item.name == row["list_name"]]
    named = found[0].cadences if found else ()  # a list since removed from config.toml
    return ledger.audience_left(conn, send_id, named_cadences=named)


@sends.command("resume")
@click.argument("send_id", metavar="ID")
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Also send the rows marked unknown again (some of them may get a second copy).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def sends_resume(ctx: click.Context, send_id: str, resend_unknown: bool, quiet: bool) -> None:
    """Carry on with an interrupted or paused send: its pending rows only."""
    from speakerfeed.digest import deliver as dispatch
    from speakerfeed.transports.registry import transport_from_settings

    settings = _load(ctx)
    transport = transport_from_settings(settings.delivery, settings.root)
    with _store(ctx) as (engine, secret):
        try:
            again = dispatch.resume(engine, send_id, resend_unknown=resend_unknown)
        except SendNotFoundError as exc:
            click.secho(f"error: {exc}", err=True, fg="red")
            ctx.exit(1)
        if again:
            click.echo(f"{again} unknown rows will be sent again")
        _run_send(ctx, engine, settings, send_id, transport, secret, quiet=quiet)


# ------------------------------------------------------------------------------------- schedule


@main.group("schedule")
def schedule_group() -> None:
    """The lists' digest schedules (each list's own and its cadences'): list them, pause or
    resume a list's."""


@schedule_group.command("list")
@click.pass_context
def schedule_list(ctx: click.Context) -> None:
    """Each digest job, its crontab and its next run in the list's own time zone: digest:LIST
    for the list's own schedule, digest:LIST:CADENCE for each of its cadences."""
    from speakerfeed.schedule import planned_runs

    settings = _load(ctx)
    with _store(ctx, need_secret=False) as (engine, _):
        runs = planned_runs(settings, engine)
    if not runs:
        click.echo("no [[lists]] in the configuration: nothing is scheduled")
    for run_ in runs:
        when = run_.next_run.strftime("%a %d %b %Y %H:%M %Z") if run_.next_run else "never"
        state = "paused" if run_.paused else f"next: {when}"
        click.echo(f"{run_.job:28} {run_.schedule:16} {run_.zone:20} {state}")


def _pause(ctx: click.Context, list_name: str, paused: bool) -> None:
    from speakerfeed.store.schedules import set_paused

    settings = _load(ctx)
    cadences = ", ".join(settings.require_list(list_name).cadences)
    with _store(ctx, need_secret=False) as (engine, _):
        set_paused(engine, list_name, paused)
    also = f" (its cadences too: {cadences})" if cadences else ""
    click.echo(f"{list_name}: scheduled digests {'paused' if paused else 'resumed'}{also}")


@schedule_group.command("pause")
@click.argument("list_name", metavar="LIST")
@click.pass_context
def schedule_pause(ctx: click.Context, list_name: str) -> None:
    """Stop LIST's scheduled digests, its cadences' too, until `schedule resume` (takes effect
    at once)."""
    _pause(ctx, list_name, True)


@schedule_group.command("resume")
@click.argument("list_name", metavar="LIST")
@click.pass_context
def schedule_resume(ctx: click.Context, list_name: str) -> None:
    """Let LIST's scheduled digests (its cadences' too) go out again, from the next scheduled
    time."""
    _pause(ctx, list_name, False)
