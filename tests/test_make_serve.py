"""`make serve` with the wrong Python or a stale .venv says what to do, before making or using
.venv: run with the project's Makefile (a copy in a scratch folder) and stand-in interpreters
that report a version, as a developer's machine would have them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python(path: Path, version: str) -> Path:
    """A stand-in interpreter that answers the Makefile's version question with ``version``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def _make(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(ROOT / "Makefile", folder / "Makefile")
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("old", ["3.10.12", "3.9.18", "2.7.18"])
def test_an_old_python_is_named_with_what_to_do(tmp_path: Path, old: str) -> None:
    python = _python(tmp_path / "bin" / "python3.10", old)
    result = _make(tmp_path, "serve", f"PYTHON={python}")
    assert result.returncode != 0
    assert result.stderr.startswith(
        f"make: speakerfeed needs Python 3.11 or newer, but PYTHON={python} is {old}; install "
        "a newer one (apt install python3.12, or pyenv install 3.12) and name it, e.g. "
        "make serve PYTHON=python3.12"
    ), result.stderr
    assert not (tmp_path / ".venv").exists()  # nothing made with it


def test_a_python_that_does_not_run_is_named(tmp_path: Path) -> None:
    result = _make(tmp_path, "serve", "PYTHON=python3.99-not-installed")
    assert result.returncode != 0
    assert "make: cannot run PYTHON=python3.99-not-installed: speakerfeed needs Python 3.11" in (
        result.stderr
    )
    assert "make serve PYTHON=python3.12" in result.stderr


def test_a_venv_made_with_another_python_is_stale(tmp_path: Path) -> None:
    _python(tmp_path / ".venv" / "bin" / "python", "3.10.12")
    python = _python(tmp_path / "bin" / "python3.12", "3.12.4")
    result = _make(tmp_path, "serve", f"PYTHON={python}")
    assert result.returncode != 0
    assert (
        f"make: .venv is stale: it was made with Python 3.10.12, not PYTHON={python} (3.12.4); "
        "remove it with rm -rf .venv, then run: make serve"
    ) in result.stderr


def test_a_venv_whose_interpreter_is_gone_is_stale(tmp_path: Path) -> None:
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(tmp_path / "removed" / "python3.11")
    python = _python(tmp_path / "bin" / "python3.11", "3.11.9")
    result = _make(tmp_path, "serve", f"PYTHON={python}")
    assert result.returncode != 0
    assert "make: .venv is stale: its python does not run" in result.stderr
    assert "rm -rf .venv, then run: make serve" in result.stderr


def test_a_good_python_and_venv_go_on_to_install_and_serve(tmp_path: Path) -> None:
    """The checks pass quietly: make goes on to pip and `speakerfeed serve` (stand-ins here)."""
    _python(tmp_path / ".venv" / "bin" / "python", "3.13.1")
    for tool in ("pip", "speakerfeed"):
        _python(tmp_path / ".venv" / "bin" / tool, f"{tool} ran").write_text(
            f'#!/bin/sh\necho "{tool} $*"\n', encoding="utf-8"
        )
    python = _python(tmp_path / "bin" / "python3.13", "3.13.0")
    result = _make(tmp_path, "serve", f"PYTHON={python}")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "pip install --quiet -e .\n" in result.stdout
    assert result.stdout.endswith("speakerfeed serve\n"), result.stdout
