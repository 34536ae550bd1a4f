"""A throw-away project folder (config.toml + articles/) for tests."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from speakerfeed.config import Settings, settings_from_mapping

BASE_CONFIG = """
[site]
title = "The Speaker"
description = "News by young journalists."
url = "https://www.speakernews.co.uk"
language = "en-GB"
timezone = "Europe/London"
author = "The Speaker"

[feeds]
base_url = "https://www.speakernews.co.uk/feeds/"
items = 20
"""


def markdown_article(title: str, date: str, body: str = "Body text.", **fields: Any) -> str:
    lines = ["---", f"title: {title!r}", f"date: {date}"]
    for key, value in fields.items():
        lines.append(f"{key}: {value}")
    lines += ["---", body, ""]
    return "\n".join(lines)


def project_settings(root: Path = Path("."), **overrides: Any) -> Settings:
    """Settings for a project at root, with [section] overrides (a list replaces an array of
    tables, such as upstream); writes no files."""
    data = tomllib.loads(BASE_CONFIG)
    for section, values in overrides.items():
        if isinstance(values, list):
            data[section] = values
        else:
            data.setdefault(section, {}).update(values)
    return settings_from_mapping(data, where="config.toml", root=root)


def make_project(
    root: Path, articles: dict[str, str | bytes] | None = None, **overrides: Any
) -> Settings:
    """Write articles under root/articles and return settings rooted at root."""
    folder = root / "articles"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (articles or {}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return project_settings(root, **overrides)
