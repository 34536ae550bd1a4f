"""The speakerfeed command as an editor runs it: real subprocesses, exit codes, messages."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.cli import run_speakerfeed
from tests.support.project import BASE_CONFIG, markdown_article

ROOT = Path(__file__).resolve().parents[2]


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_speakerfeed(cwd, *args)


def _write_project(folder: Path, config: str, articles: dict[str, str]) -> None:
    (folder / "config.toml").write_text(config, encoding="utf-8")
    (folder / "articles").mkdir()
    for name, text in articles.items():
        (folder / "articles" / name).write_text(text, encoding="utf-8")


def test_check_reports_every_problem_with_locations_and_exits_1(tmp_path: Path) -> None:
    config = BASE_CONFIG.replace('timezone = "Europe/London"', 'timezone = "Europe/Londn"')
    config += "\n[fetch]\nmax_bytes = 'lots'\n"
    _write_project(tmp_path, config, {})
    result = _run(tmp_path, "check")
    assert result.returncode == 1
    assert "config.toml: site.timezone: expected an IANA time zone name" in result.stderr
    assert "config.toml: fetch.max_bytes: expected a valid integer (got 'lots')" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_reports_bad_articles_and_exits_1(tmp_path: Path) -> None:
    _write_project(
        tmp_path,
        BASE_CONFIG,
        {
            "good.md": markdown_article("Fine", "2024-01-01"),
            "bad.md": "---\ntitle: x\ndate: 2024-13-45\n---\nbody\n",
            "worse.txt": "The Speaker\nsometime\n\nHeadline\n\nText.\n",
        },
    )
    result = _run(tmp_path, "check", "--no-fetch")
    assert result.returncode == 1
    assert "bad.md:3: front matter 'date': expected a date" in result.stderr
    assert "worse.txt:2: expected a date line" in result.stderr
    assert "1 published" in result.stdout
    assert "Traceback" not in result.stderr


def test_check_passes_on_the_repository(tmp_path: Path) -> None:
    result = _run(ROOT, "check", "--no-fetch")
    assert result.returncode == 0, result.stderr
    assert "config.toml: ok; articles: ok, " in result.stdout


def test_build_writes_feeds_and_strict_fails_on_a_bad_article(tmp_path: Path) -> None:
    _write_project(
        tmp_path,
        BASE_CONFIG,
        {"good.md": markdown_article("Fine", "2024-01-01"), "bad.md": "no front matter\n"},
    )
    lenient = _run(tmp_path, "build", "--no-fetch")
    assert lenient.returncode == 0, lenient.stderr
    assert "bad.md:1: expected front matter" in lenient.stderr
    assert (tmp_path / "public" / "rss.xml").exists()
    strict = _run(tmp_path, "build", "--no-fetch", "--strict")
    assert strict.returncode == 1


def test_missing_config_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = _run(tmp_path, "build")
    assert result.returncode == 1
    assert "config.toml: file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_command_has_help() -> None:
    for command in ([], ["build"], ["check"], ["serve"]):
        result = _run(ROOT, *command, "--help")
        assert result.returncode == 0
        assert "Usage:" in result.stdout
