"""`speakerfeed digest preview` and `digest lint` on the repository's own configuration."""

from __future__ import annotations

import email.parser
import email.policy
import shutil
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.support.cli import run_speakerfeed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("repo")
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    shutil.copytree(ROOT / "articles", folder / "articles")
    return folder


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_speakerfeed(cwd, *args, secret="test-secret-key-0123456789abcdef")


def test_preview_writes_the_next_digest_with_the_seed(project: Path, tmp_path: Path) -> None:
    result = _run(project, "digest", "preview", "daily", "--out", str(tmp_path), "--no-fetch")
    assert result.returncode == 0, result.stderr
    names = sorted(p.suffix for p in tmp_path.iterdir())
    assert names == [".eml", ".html", ".txt"]
    eml = next(tmp_path.glob("*.eml")).read_bytes()
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(eml)
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    for header in ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe"):
        assert message[header], header
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = next(tmp_path.glob("*.html")).read_text(encoding="utf-8")
    text = next(tmp_path.glob("*.txt")).read_text(encoding="utf-8")
    assert "What is happening in Kazakhstan?" in html
    assert "What is happening in Kazakhstan?" in text
    assert "Skip to content" in html
    assert "SFMARK" not in html + text
    assert "Sam Reader" in html
    assert "Autumn Statement" in html  # the Markdown samples too
    assert "work in progress" not in html  # never a draft


def test_lint_passes_on_the_repository(project: Path) -> None:
    result = _run(project, "digest", "lint", "daily", "--no-fetch")
    assert result.returncode == 0, result.stderr
    assert "0 errors, 0 warnings" in result.stdout


def test_unknown_list_is_named(project: Path) -> None:
    result = _run(project, "digest", "preview", "weekly", "--no-fetch")
    assert result.returncode == 1
    assert "no list named 'weekly' (lists: daily, politics-weekly)" in result.stderr
    assert "Traceback" not in result.stderr
