"""config.toml: every problem at once, each naming its key path and what was expected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from speakerfeed.config import Secrets, load_settings, settings_reference
from speakerfeed.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_repository_config_is_valid() -> None:
    settings = load_settings(ROOT / "config.toml")
    assert settings.site.title == "The Speaker"
    assert settings.site.timezone == "Europe/London"
    assert settings.site.language == "en-GB"
    assert settings.articles_dir == (ROOT / "articles").resolve()
    assert settings.feeds.base_url.endswith("/")


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return [str(p) for p in caught.value.problems]


def test_all_problems_reported_at_once_with_key_paths(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
[site]
title = "The Speaker"
url = "ftp://example.org"
timezone = "Mars/Olympus"
author = "Ed"
langauge = "en"

[feeds]
base_url = "https://example.org/feeds/"
items = "twenty"

[fetch]
max_redirects = -1
allow_hosts = ["not-an-ip"]

[[upstream]]
name = "wire"
url = "https://example.org/a.xml"

[[upstream]]
name = "wire"
url = "javascript:alert(1)"

[colour]
x = 1
""",
    )
    text = "\n".join(problems)
    assert "site.url: expected an absolute http:// or https:// URL" in text
    assert "site.timezone: expected an IANA time zone name" in text
    assert "unknown key 'site.langauge'; did you mean 'language'?" in text
    assert "feeds.items: expected a valid integer (got 'twenty')" in text
    assert "fetch.max_redirects: expected greater than or equal to 0 (got -1)" in text
    assert "fetch.allow_hosts: expected IP addresses or networks, got 'not-an-ip'" in text
    assert "upstream[1].url: expected an absolute http:// or https:// URL" in text
    assert "unknown key 'colour'" in text
    assert all(p.startswith(str(tmp_path / "config.toml") + ": ") for p in problems)
    assert len(problems) == 8


def test_missing_required_sections(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "[site]\ntitle = 'x'\n")
    assert any("site.url: required key is missing" in p for p in problems)
    assert any("site.author: required key is missing" in p for p in problems)
    assert any("feeds: required key is missing" in p for p in problems)


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[site]\ntitle = "x"\nurl = \n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.problems[0].line == 3


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml")
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[site]\ntitle = '\xe9'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(path)


def test_upstream_names_unique(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
[site]
title = "T"
url = "https://example.org"
author = "A"
[feeds]
base_url = "https://example.org/feeds/"
[[upstream]]
name = "wire"
url = "https://example.org/a.xml"
[[upstream]]
name = "wire"
url = "https://example.org/b.xml"
""",
    )
    assert problems == [
        f"{tmp_path / 'config.toml'}: upstream names must be unique; repeated: wire"
    ]


def test_secrets_come_from_the_environment() -> None:
    assert Secrets.from_env({"SPEAKERFEED_SECRET_KEY": "s3cret"}).secret_key == "s3cret"
    assert Secrets.from_env({}).secret_key == ""


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    reference = readme.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    missing = []
    for key, _default, help_text in settings_reference():
        section, name = key.split(" ")
        section_block = reference.split(section, 1)
        if len(section_block) < 2 or not re.search(
            rf"`{name}`", section_block[1].split("\n[", 1)[0]
        ):
            missing.append(key)
        assert help_text, f"{key} has no description"
    assert missing == []


def test_lists_and_email_are_validated(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
[site]
title = "T"
url = "https://example.org"
author = "A"
[feeds]
base_url = "https://example.org/feeds/"
[email]
postal_address = "1 Street\\r\\nBcc: x@y"
[[lists]]
name = "Daily News"
title = "Daily"
schedule = "0 25 * * *"
timezone = "Nowhere/Else"
[[lists]]
name = "weekly"
title = "Weekly\\u2028Bcc: x@y"
max_items = 0
""",
    )
    text = "\n".join(problems)
    assert "email.postal_address: expected one line of text" in text
    assert "lists[0].name: expected to match pattern" in text
    assert "lists[0].schedule: expected a crontab line such as '0 7 * * *'" in text
    assert "lists[0].timezone: expected an IANA time zone name" in text
    assert "lists[1].title: expected one line of text" in text
    assert "lists[1].max_items: expected greater than or equal to 1" in text


def test_lists_need_a_sender(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
[site]
title = "T"
url = "https://example.org"
author = "A"
[feeds]
base_url = "https://example.org/feeds/"
[[lists]]
name = "daily"
title = "Daily"
""",
    )
    assert problems == [
        f"{tmp_path / 'config.toml'}: email.from_address is required when [[lists]] are defined"
    ]
