"""`build`, `check`, `serve` and `worker`: the feeds, and the long-running processes."""

from __future__ import annotations

import errno
import logging
import socket
from typing import TYPE_CHECKING

import click

from speakerfeed.actions.site import build_site, check_site
from speakerfeed.cli.common import (
    NO_FETCH,
    config_file,
    fail,
    load,
    print_problems,
    progress_bar,
)
from speakerfeed.render.pages import local_time
from speakerfeed.wording import counted

if TYPE_CHECKING:
    from speakerfeed.errors import Problem

log = logging.getLogger("speakerfeed")


@click.command()
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
    settings = load(ctx)
    with progress_bar(not quiet) as progress:
        report = build_site(settings, fetch_upstreams=not no_fetch, progress=progress)
    print_problems(report.problems)
    if not quiet:
        click.echo(f"Built {settings.output_dir}: {report.summary()}")
    if strict and report.errors:
        ctx.exit(1)


@click.command()
@NO_FETCH
@click.pass_context
def check(ctx: click.Context, no_fetch: bool) -> None:
    """Validate config.toml and every article; print every problem. Exit 1 if there is any.

    Articles dated in the future are listed with the time they will be published. Nothing is
    written.
    """
    settings = load(ctx)
    report = check_site(settings, fetch_upstreams=not no_fetch)
    print_problems(report.problems)
    if report.embargoed:
        click.echo(f"Embargoed until their time ({len(report.embargoed)}):")
        zone = settings.site.zone
        for article in report.embargoed:
            when = local_time(article.published, zone)  # total: a date of 9999 too
            click.echo(f"  {when:%Y-%m-%d %H:%M %Z}  {article.source}  {article.title}")
    settings_found = _errors_and_warnings(report.setting_problems)
    # Articles and upstream feeds: what is not the settings'.
    articles_found = _errors_and_warnings(
        [p for p in report.problems if p not in report.setting_problems]
    )
    click.echo(
        f"{config_file(ctx)}: {settings_found}; articles: {articles_found}, "
        f"{counted(report.files, 'file')}, {report.articles} published, "
        f"{counted(report.drafts, 'draft')}"
    )
    if report.errors:
        ctx.exit(1)


def _errors_and_warnings(problems: list[Problem]) -> str:
    """ "ok", or "1 error, 2 warnings": the summary of one part of `check`'s findings."""
    errors = sum(1 for problem in problems if not problem.warning)
    if not problems:
        return "ok"
    return f"{counted(errors, 'error')}, {counted(len(problems) - errors, 'warning')}"


@click.command()
@click.option("--host", default=None, help="Address to listen on [default: server.host].")
@click.option("--port", type=int, default=None, help="Port to listen on [default: server.port].")
@click.option("--no-build", is_flag=True, help="Serve the output folder as it is.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, no_build: bool) -> None:
    """Run the service: migrate the database, build the feeds, serve the feeds and the readers'
    pages, rebuild on schedule and when articles change, and send each list's digest on its
    schedule (one process runs the scheduler; every process sends). 127.0.0.1 by default."""
    import uvicorn

    from speakerfeed.actions.database import start_service
    from speakerfeed.service import Service
    from speakerfeed.web.app import create_app
    from speakerfeed.web.http_limits import server_options

    settings = load(ctx)
    if host or port:  # --host/--port: where it listens, and so where emails link to by default
        server = settings.server.model_copy(
            update={"host": host or settings.server.host, "port": port or settings.server.port}
        )
        settings = settings.model_copy(update={"server": server})
    # Taken first, before the database and the build: a port in use is said at once, in words,
    # not by uvicorn's errno after "Serving ... on" has already been printed.
    listening = _listening_socket(ctx, settings.server.host, settings.server.port)
    # A service's log says what it did (builds, sends, elections, start and stop) without -v;
    # uvicorn's access log (every feed reader's poll) only with -v.
    if log.getEffectiveLevel() > logging.INFO:
        for name in ("speakerfeed", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.INFO)
    ready = start_service(settings)
    click.echo(f"Database {ready.database}: revision {ready.revision}")
    service = Service(settings, ready.engine, ready.secret, ready.transport)
    if not no_build:
        service.rebuild()
        built = service.last_build
        click.echo(
            f"Built {settings.output_dir}: {counted(built['articles'], 'article')}, "
            f"{counted(built['written'], 'file')} written, {counted(built['problems'], 'problem')}"
        )
    host, port = settings.server.host, settings.server.port
    app = create_app(
        settings,
        engine=ready.engine,
        secret=ready.secret,
        transport=ready.transport,
        service=service,
    )
    click.echo(f"Serving {settings.output_dir} on http://{host}:{port}/ (Ctrl+C to stop)")
    origin = "email.app_url" if settings.email.app_url else "where it listens: email.app_url unset"
    log.info("links in emails lead to %s (%s)", settings.app_url, origin)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        # httptools with capped request heads and deadlines, the trusted proxies (web.http_limits)
        **server_options(settings.server),
        timeout_graceful_shutdown=60,
        # uvicorn's loggers go through ours: one format for every line, JSON with --log-json.
        log_config=None,
        # A line per request costs more CPU than serving a 304 does: only with -v.
        access_log=logging.getLogger().level <= logging.INFO,
    )
    web_server = uvicorn.Server(config)
    web_server.run(sockets=[listening])  # the socket taken above: nobody can have taken it since
    if not web_server.started:  # uvicorn logged why (the app's startup failed)
        ctx.exit(1)


def _listening_socket(ctx: click.Context, host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` for uvicorn (which listens on it), or a message that
    says what is wrong and which option changes it, and exit 1."""
    # As uvicorn binds: IPv6 for an IPv6 address, else IPv4 (a name such as localhost too), and
    # SO_REUSEADDR, so a restart can take the port while the last run's connections close.
    ipv6 = ":" in host
    sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except socket.gaierror as exc:
        sock.close()
        fail(ctx, f"cannot listen on {host!r}: {exc.strerror}; choose another with --host")
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if ipv6 else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is in use (another speakerfeed serve, or another program)"
        elif exc.errno == errno.EACCES:
            reason = "permission denied (ports below 1024 need privileges)"
        else:
            reason = exc.strerror or str(exc)
        fail(
            ctx,
            f"cannot listen on {where}: {reason}; choose another port with --port PORT "
            "(or server.port in config.toml)",
        )
    return sock


@click.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Work on send batches only (no web pages, no scheduler): add these on other machines
    sharing the PostgreSQL database to send faster. Stops cleanly on SIGTERM or Ctrl+C."""
    import signal
    import threading

    from speakerfeed.actions.database import start_service
    from speakerfeed.service import Service

    settings = load(ctx)
    ready = start_service(settings)
    service = Service(
        settings, ready.engine, ready.secret, ready.transport, scheduling=False, watching=False
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    service.start()
    click.echo("worker: sending batches as they come (Ctrl+C to stop)")
    stop.wait()
    service.stop()
