"""The feeds as an editor builds and checks them: `build` writes them, `check` only reads."""

from __future__ import annotations

from speakerfeed.config import Settings
from speakerfeed.feeds.build import Builder, BuildReport
from speakerfeed.sources.collect import Clock, system_clock
from speakerfeed.sources.read import ProgressCallback, ReadReport, read_articles


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
    is left out (listed in ``embargoed``)."""
    return Builder(
        settings, fetch_upstreams=fetch_upstreams, progress=progress, clock=clock
    ).build()


def check_site(
    settings: Settings, *, fetch_upstreams: bool = True, clock: Clock = system_clock
) -> ReadReport:
    """Read every article (and the upstream feeds) and report what is wrong, and which articles
    are embargoed (dated after ``clock()``); nothing written but the parsed-article cache."""
    _, report = read_articles(settings, fetch_upstreams=fetch_upstreams, now=clock())
    return report
