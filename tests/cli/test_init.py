"""`speakerfeed init DIR`: a new publication that builds, previews and checks with no edits."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from speakerfeed.actions.project import create_project
from speakerfeed.config import load_settings, settings_reference
from speakerfeed.errors import ConfigError
from tests.support.cli import run_speakerfeed


def test_init_makes_a_publication_that_builds_checks_and_previews(tmp_path: Path) -> None:
    made = run_speakerfeed(tmp_path, "init", "gazette", "--title", "The Gazette: Town & Gown")
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "gazette"
    assert "created gazette/config.toml" in made.stdout
    assert sorted(p.name for p in (folder / "templates").iterdir()) == []  # empty: overrides
    (sample,) = (folder / "articles").glob("*-welcome.md")

    checked = run_speakerfeed(folder, "check", "--no-fetch")
    assert checked.returncode == 0, checked.stderr
    assert "config.toml: ok; articles: ok, 1 file, 1 published, 0 drafts" in checked.stdout

    built = run_speakerfeed(folder, "build", "--no-fetch")
    assert built.returncode == 0, built.stderr
    rss = (folder / "public" / "rss.xml").read_text(encoding="utf-8")
    assert "<title>Welcome to The Gazette: Town &amp; Gown</title>" in rss
    index = (folder / "public" / "index.html").read_text(encoding="utf-8")
    assert "The Gazette: Town &amp; Gown" in index

    preview = run_speakerfeed(folder, "digest", "preview", "news", "--out", "preview")
    assert preview.returncode == 0, preview.stderr
    (eml,) = (folder / "preview").glob("*.eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert (
        message["Subject"] == "The Gazette: Town & Gown news: Welcome to The Gazette: Town & Gown"
    )
    text = message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert "Welcome to The Gazette: Town & Gown" in body
    # No email.app_url yet: the links lead to where `speakerfeed serve` will listen.
    assert "http://127.0.0.1:8080/unsubscribe/news/" in body
    assert "https://www.example.org/welcome/" in body  # the article's own address
    assert sample.read_text(encoding="utf-8").startswith("---\ntitle: ")


def test_the_config_lists_every_setting_with_its_help(tmp_path: Path) -> None:
    create_project(tmp_path, title="Gazette")
    text = (tmp_path / "config.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    assert data["site"]["title"] == "Gazette"
    assert data["build"]["templates_dir"] == "templates"
    assert [item["name"] for item in data["lists"]] == ["news"]
    assert "upstream" not in data  # shown, commented out: an empty [[upstream]] would be invalid
    for key, _default, help_text in settings_reference():
        section, name = key.split(" ")
        block = text.split(f"\n{section}\n", 1)[1] if f"\n{section}\n" in text else ""
        if section == "[[upstream]]":
            block = text.split("# [[upstream]]\n", 1)[1]
        assert f"{name} = " in block.split("\n[", 1)[0], key
        assert help_text.split()[0] in block, key
    settings = load_settings(tmp_path / "config.toml")
    assert settings.templates_dir == (tmp_path / "templates").resolve()
    assert settings.delivery.transport == "outbox"  # a commented-out key keeps its default


def test_init_keeps_an_existing_config_unless_forced_and_never_touches_articles(
    tmp_path: Path,
) -> None:
    create_project(tmp_path, now=datetime(2026, 1, 2, 9, 30, tzinfo=UTC))
    (tmp_path / "config.toml").write_text("# mine\n", encoding="utf-8")
    again = run_speakerfeed(tmp_path, "init", ".")
    assert again.returncode == 1
    assert "config.toml: already exists; use --force" in again.stderr
    assert "Traceback" not in again.stderr
    assert (tmp_path / "config.toml").read_text(encoding="utf-8") == "# mine\n"

    (tmp_path / "articles" / "2026-01-02-welcome.md").write_text("edited", encoding="utf-8")
    forced = run_speakerfeed(tmp_path, "init", ".", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "config.toml").read_text(encoding="utf-8").startswith("# speakerfeed")
    assert [p.name for p in (tmp_path / "articles").iterdir()] == ["2026-01-02-welcome.md"]
    assert (tmp_path / "articles" / "2026-01-02-welcome.md").read_text() == "edited"


def test_the_action_refuses_with_a_config_error(tmp_path: Path) -> None:
    create_project(tmp_path)
    with pytest.raises(ConfigError, match="already exists"):
        create_project(tmp_path)
