"""What the commands share: the settings, the database, messages for problems and findings,
progress bars, and the options several commands take.

Each command imports the actions it calls when it runs, not when the command line is parsed:
`speakerfeed build` then never loads the database's libraries, nor `--help` anything.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from speakerfeed.config import Settings, load_settings
from speakerfeed.errors import AddressError, ConfigError, Problem, StoreError
from speakerfeed.wording import counted

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

    from speakerfeed.actions.database import Store
    from speakerfeed.render.lint import Finding

F = TypeVar("F", bound=Callable[..., object])

# (phase, items just finished, items in all): reading articles, importing a file.
PhaseProgress = Callable[[str, int, int], None]
# (recipients finished so far, recipients of the send): both counted in people.
SendProgress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Options:
    """What the main command passes to every command (as click's context object)."""

    config: Path


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(verbose: int, json_logs: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)


def config_file(ctx: click.Context) -> Path:
    """The configuration file the main command chose."""
    options = ctx.find_object(Options)
    assert options is not None, "the commands run under speakerfeed.cli.main"
    return options.config


def load(ctx: click.Context) -> Settings:
    """The settings, or every problem with them printed and exit 1."""
    config = config_file(ctx)
    try:
        return load_settings(config)
    except ConfigError as exc:
        print_problems(exc.problems)
        click.secho(f"{counted(len(exc.problems), 'problem')} in {config}", err=True, bold=True)
        ctx.exit(1)


def fail(ctx: click.Context, message: str) -> NoReturn:
    """An error message (red on a terminal) and exit 1."""
    click.secho(f"error: {message}", err=True, fg="red")
    ctx.exit(1)


@contextmanager
def store(
    ctx: click.Context,
    settings: Settings,
    list_name: str | None = None,
    *,
    need_secret: bool = True,
) -> Iterator[Store]:
    """The migrated database and the secret key (actions.database.open_store), or a clear
    message and exit 1."""
    from speakerfeed.actions.database import open_store

    try:
        with open_store(settings, list_name=list_name, need_secret=need_secret) as opened:
            yield opened
    except StoreError as exc:
        fail(ctx, str(exc))


def address(ctx: click.Context, email: str) -> str:
    """EMAIL as stored, or a message and exit 1."""
    from speakerfeed.actions.subscribers import checked_address

    try:
        return checked_address(email)
    except AddressError as exc:
        fail(ctx, str(exc))


def print_problems(problems: Iterable[Problem]) -> None:
    for problem in problems:
        click.secho(str(problem), err=True, fg="yellow" if problem.warning else "red")


def print_findings(findings: Iterable[Finding]) -> None:
    for finding in findings:
        colour = "red" if finding.severity == "error" else "yellow"
        click.secho(f"{finding.severity}: {finding.rule}: {finding.message}", err=True, fg=colour)


def digest_name(list_name: str, cadence: str) -> str:
    """How messages name a digest's list and cadence: "daily" or "daily (weekly)"."""
    return f"{list_name} ({cadence})" if cadence else list_name


def cadence_option(doing: str, to_whom: str = "") -> Callable[[F], F]:
    return click.option(
        "--cadence",
        metavar="NAME",
        default="",
        help=f"{doing} the digest of LIST's cadence NAME (`cadences` in config.toml){to_whom} "
        "[default: the list's own schedule].",
    )


NO_FETCH = click.option("--no-fetch", is_flag=True, help="Do not fetch upstream feeds.")


@contextmanager
def progress_bar(enabled: bool) -> Iterator[PhaseProgress | None]:
    """A progress bar for long builds and imports, shown only on a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    bars: dict[str, ProgressBar[int]] = {}

    def advance(phase: str, done: int, total: int) -> None:
        if total < 200:  # over in a blink: not worth a bar
            return
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = click.progressbar(
                length=total,
                label=f"{phase:16}",
                file=sys.stderr,
                show_pos=True,
                show_percent=True,
                show_eta=True,
            )
            bar.__enter__()
        if bar.finished:
            return
        # Never past the total: "120/100" or "104 %" would be a lie, whatever a caller counts.
        bar.update(max(0, min(done, total - bar.pos)))
        if bar.pos >= total:
            bar.__exit__(None, None, None)

    yield advance


@contextmanager
def send_progress(enabled: bool) -> Iterator[SendProgress | None]:
    """done/total, rate and ETA on a terminal; nothing elsewhere (logs say what happened)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    import time

    started = time.monotonic()
    bars: list[ProgressBar[int]] = []
    sent = [0]

    def show(_: int | None) -> str:
        elapsed = max(time.monotonic() - started, 1e-6)
        return f"{sent[0] / elapsed:,.0f} msg/s"

    def advance(done: int, total: int) -> None:
        if not total:  # nobody to send to: no bar at 0/0
            return
        if not bars:
            bar: ProgressBar[int] = click.progressbar(
                length=max(total, 1),
                label="sending to recipients",
                file=sys.stderr,
                show_pos=True,
                show_percent=True,
                show_eta=True,
                item_show_func=show,
            )
            bar.__enter__()
            bars.append(bar)
        bar = bars[0]
        # The total can change as the send goes (readers who leave meanwhile are not sent to;
        # deliver reports the final count when the send is done): follow it, so the bar ends
        # at done/done, 100 %, and never shows more done than there are.
        bar.length = max(total, done, 1)
        sent[0] = done
        bar.update(done - bar.pos, current_item=done)

    try:
        yield advance
    finally:
        for bar in bars:
            bar.__exit__(None, None, None)
