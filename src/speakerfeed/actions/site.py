"""The feeds as an editor builds and checks them: `build` writes them, `check` only reads."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit

from speakerfeed.config import Settings
from speakerfeed.digest.archive import write_archive_index
from speakerfeed.digest.note import read_note
from speakerfeed.errors import Problem
from speakerfeed.feeds.build import Builder, BuildReport
from speakerfeed.render.overrides import check_overrides
from speakerfeed.sources.collect import Clock, system_clock
from speakerfeed.sources.read import ProgressCallback, ReadReport, read_articles

# Host names that never reach a reader's inbox from the internet.
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".test", ".invalid")


def build_site(
    settings: Settings,
    *,
    fetch_upstreams: bool = True,
    progress: ProgressCallback | None = None,
    clock: Clock = system_clock,
) -> BuildReport:
    """Read the articles (and the upstream feeds) and write the feeds to the output folder.

    Only what changed is parsed and written again; a bad article is reported (its path and
    line, in ``problems``) and every other one still builds. An article dated after ``clock()``
    is left out (listed in ``embargoed``). With lists, the digest archive's index is written
    too (every page's header links to it, even before the first digest)."""
    report = Builder(
        settings, fetch_upstreams=fetch_upstreams, progress=progress, clock=clock
    ).build()
    if settings.lists:
        write_archive_index(settings)
    return report


@dataclass(slots=True)
class SiteCheck(ReadReport):
    """What `check` found: ``problems`` holds them all; ``setting_problems`` those of them that
    are in the settings (template overrides, email.app_url) rather than articles or upstreams."""

    setting_problems: list[Problem] = field(default_factory=list)


def check_site(
    settings: Settings, *, fetch_upstreams: bool = True, clock: Clock = system_clock
) -> SiteCheck:
    """Read every article (and the upstream feeds) and report what is wrong, and which articles
    are embargoed (dated after ``clock()``); nothing written but the parsed-article cache."""
    _, read = read_articles(settings, fetch_upstreams=fetch_upstreams, now=clock())
    report = SiteCheck(**{part.name: getattr(read, part.name) for part in fields(ReadReport)})
    report.setting_problems = [*check_overrides(settings), *app_url_problems(settings)]
    report.problems.extend(report.setting_problems)
    report.problems.extend(note_problems(settings))  # content, like articles
    return report


def note_problems(settings: Settings) -> list[Problem]:
    """A warning for each list's editor's note that cannot be read (it would be left out of
    the next digest, which is sent without it)."""
    readings = (read_note(settings, list_settings.name) for list_settings in settings.lists)
    return [reading.problem for reading in readings if reading.problem is not None]


def app_url_problems(settings: Settings) -> list[Problem]:
    """A warning when emails leave this machine (SMTP, SendGrid) but their links lead to an
    address readers cannot open: not https, or not a public host."""
    transport = settings.delivery.transport
    if transport not in ("smtp", "sendgrid"):
        return []
    url = settings.app_url
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        public = ipaddress.ip_address(host).is_global
    except ValueError:
        public = "." in host and not host.endswith(_PRIVATE_SUFFIXES) and host != "localhost"
    if parts.scheme == "https" and public:
        return []
    unset = "" if settings.email.app_url else " (email.app_url is unset: where `serve` listens)"
    return [
        Problem(
            "email.app_url",
            f"links in emails lead to {url}{unset}, not a public https URL, but delivery is "
            f"{transport}: readers cannot open them; set email.app_url to the public https URL "
            "of `speakerfeed serve`",
            warning=True,
        )
    ]
