"""A new publication, as `speakerfeed init DIR` makes it: a commented config.toml (every setting,
from the settings reference), articles/ with one sample article, and an empty templates/ folder
for the editor's template overrides."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from speakerfeed.config import load_settings
from speakerfeed.config.reference import commented_config
from speakerfeed.errors import ConfigError, Problem

CONFIG_NAME = "config.toml"
ARTICLES = "articles"
TEMPLATES = "templates"
_ZONE = "Europe/London"

_INTRO = """speakerfeed configuration. Every setting is listed with what it does; a commented-out
one holds its default. `speakerfeed check` validates this file and renders your templates.
Secrets (the secret key, SMTP password, SendGrid key) are never written here: they come from
environment variables (see the README).

Before publishing: set site.url to your web site, feeds.base_url to the public URL of the
output folder, and email.app_url to where readers reach `speakerfeed serve` (unset, links in
emails lead to server.host:server.port, which is right for trying it out on this machine)."""

_SAMPLE = """---
title: {headline}
date: {date}
author: {author}
tags: [news]
summary: {summary}
---
This is a sample article. Each article is a Markdown file in this folder with a few lines of
front matter at the top: the title, the date (in the site's time zone when it has none), the
author and tags.

## What next

Add your own articles here, then run `speakerfeed build` to write the feeds and
`speakerfeed serve` to serve them, together with the sign-up and preferences pages.
"""


@dataclass(frozen=True, slots=True)
class NewProject:
    folder: Path
    written: tuple[Path, ...]  # the files and folders made, in the order made


def create_project(
    folder: Path,
    *,
    title: str = "My Publication",
    url: str = "https://www.example.org",
    force: bool = False,
    now: datetime | None = None,
) -> NewProject:
    """Make a new publication in ``folder`` (created if missing).

    An existing config.toml is kept (ConfigError naming it) unless ``force``; an articles folder
    that already holds files gets no sample, and nothing in it is touched."""
    config = folder / CONFIG_NAME
    if config.exists() and not force:
        raise ConfigError(
            [Problem(str(config), "already exists; use --force to replace it with a new one")]
        )
    text = commented_config(_values(title, url.rstrip("/")), intro=_INTRO)
    written: list[Path] = []
    folder.mkdir(parents=True, exist_ok=True)
    config.write_text(text, encoding="utf-8")
    written.append(config)
    articles = folder / ARTICLES
    articles.mkdir(exist_ok=True)
    if not any(articles.iterdir()):
        moment = (now or datetime.now(ZoneInfo(_ZONE))).astimezone(ZoneInfo(_ZONE))
        sample = articles / f"{moment:%Y-%m-%d}-welcome.md"
        date = f"{moment:%Y-%m-%d %H:%M}"
        # JSON strings are YAML strings: a title with quotes or colons stays one value.
        fields = {
            "headline": json.dumps(f"Welcome to {title}", ensure_ascii=False),
            "author": json.dumps(title, ensure_ascii=False),
            "summary": json.dumps(
                f"The first article of {title}, made by speakerfeed init. Edit it or delete it.",
                ensure_ascii=False,
            ),
        }
        sample.write_text(_SAMPLE.format(date=date, **fields), encoding="utf-8")
        written.append(sample)
    templates = folder / TEMPLATES
    if not templates.exists():
        templates.mkdir()
        written.append(templates)
    load_settings(config)  # what we wrote must load: a ConfigError here is a bug, not the user's
    return NewProject(folder=folder, written=tuple(written))


def _values(title: str, url: str) -> dict[str, dict[str, object]]:
    host = urlsplit(url).hostname or "example.org"
    return {
        "site": {"title": title, "url": url, "timezone": _ZONE, "author": title},
        "feeds": {"base_url": "http://127.0.0.1:8080/"},
        "build": {"templates_dir": TEMPLATES},
        "server": {"host": "127.0.0.1", "port": 8080},
        "email": {
            "from_address": f"{title} <digest@{host}>",
            "postal_address": f"{title}, 1 Example Street, Exampletown EX1 1AA",
        },
        "lists": {
            "name": "news",
            "title": f"{title} news",
            "description": f"You receive this because you subscribed to {title}.",
            "schedule": "0 7 * * *",
        },
    }
