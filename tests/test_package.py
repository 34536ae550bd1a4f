"""The wheel, as someone without the repository installs it: built from the checkout, installed
into a fresh virtual environment in a temporary folder, and run from a folder outside the
checkout: `init`, `build`, `digest preview`, and `serve` answering for a page and a feed.

It needs pip to reach an index (for hatchling and the dependencies); without one it skips with
the reason on a developer's machine, and fails under CI=true.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.package, pytest.mark.timeout(900)]


def _run(args: Sequence[str | Path], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH (it would put the checkout's src/ first), no developer's config or key."""
    env = {**os.environ, "NO_COLOR": "1", **extra}
    for name in ("PYTHONPATH", "SPEAKERFEED_CONFIG", "SPEAKERFEED_SECRET_KEY", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    env = _clean_env()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        reason = f"cannot build the wheel (is an index reachable?): {done.stderr.strip()[-500:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    (built,) = out.glob("speakerfeed-*.whl")
    print(f"wheel built in {time.monotonic() - started:.1f} s")
    return built


def test_the_wheel_carries_the_templates_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        "speakerfeed/" + path.relative_to(ROOT).as_posix()
        for path in (ROOT / "templates").rglob("*")
        if path.is_file()
    }
    assert shipped
    assert shipped <= names
    migrations = {
        "speakerfeed/" + path.relative_to(ROOT / "src" / "speakerfeed").as_posix()
        for path in (ROOT / "src" / "speakerfeed" / "store" / "migrations").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert "speakerfeed/store/migrations/env.py" in migrations
    assert "speakerfeed/store/migrations/script.py.mako" in migrations
    assert migrations <= names
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Python: >=3.11\n" in text  # 3.12 and 3.13 too


def test_installed_from_the_wheel_it_inits_builds_previews_and_serves(
    wheel: Path, tmp_path: Path
) -> None:
    env = _clean_env()
    venv = tmp_path / "venv"
    started = time.monotonic()
    _run([sys.executable, "-m", "venv", venv], tmp_path, env)
    python = venv / "bin" / "python"
    try:
        _run([python, "-m", "pip", "install", "--quiet", wheel], tmp_path, env, timeout=900)
    except AssertionError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"cannot install the wheel's dependencies (is an index reachable?): {exc}")
    installed = time.monotonic() - started
    speakerfeed = venv / "bin" / "speakerfeed"

    # The package's own templates, not the checkout's.
    where = _run(
        [
            python,
            "-c",
            "from speakerfeed.render.templates import SHIPPED_TEMPLATES_DIR as t; print(t)",
        ],
        tmp_path,
        env,
    ).strip()
    assert Path(where).is_relative_to(venv), where

    work = tmp_path / "elsewhere"
    work.mkdir()
    assert "created" in _run([speakerfeed, "init", "paper", "--title", "The Paper"], work, env)
    paper = work / "paper"
    built = _run([speakerfeed, "build", "--no-fetch"], paper, env)
    assert ": 1 article (" in built, built
    assert "Welcome to The Paper" in (paper / "public" / "rss.xml").read_text(encoding="utf-8")
    _run([speakerfeed, "digest", "preview", "news", "--out", "preview"], paper, env)
    (text,) = (paper / "preview").glob("*.txt")
    assert "Welcome to The Paper" in text.read_text(encoding="utf-8")

    port = _free_port()
    server = subprocess.Popen(
        [speakerfeed, "serve", "--port", str(port)],
        cwd=paper,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                index = httpx.get(base + "/", timeout=2)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    output = server.stdout.read().decode() if server.stdout else ""
                    pytest.fail(f"serve did not start:\n{output}")
                time.sleep(0.3)
        assert index.status_code == 200
        assert "The Paper" in index.text
        feed = httpx.get(base + "/atom.xml", headers={"Accept": "application/atom+xml"})
        assert feed.status_code == 200
        assert feed.headers["content-type"].startswith("application/atom+xml")
        assert "Welcome to The Paper" in feed.text
        signup = httpx.get(base + "/subscribe")  # a readers' page, from the wheel's templates
        assert signup.status_code == 200
        assert "The Paper news" in signup.text
        health = httpx.get(base + "/healthz").json()  # the database, migrated from site-packages
        assert health["status"] == "ok", health
        assert (paper / "var" / "speakerfeed.sqlite3").exists()
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()
    print(f"fresh venv and install: {installed:.1f} s")
