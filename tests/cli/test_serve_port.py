"""`speakerfeed serve` on a port another program holds: it says so in words and names the
option that changes it, before anything claims to be serving, and exits 1."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.support.cli import run_speakerfeed
from tests.support.project import BASE_CONFIG, markdown_article


def test_a_port_in_use_is_named_with_the_option_that_changes_it(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(BASE_CONFIG, encoding="utf-8")
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "hello.md").write_text(
        markdown_article("Hello readers", "2024-05-01 10:00"), encoding="utf-8"
    )
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]
        result = run_speakerfeed(tmp_path, "serve", "--port", str(port), timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert result.stderr.startswith(
        f"error: cannot listen on 127.0.0.1:{port}: the port is in use (another speakerfeed "
        "serve, or another program); choose another port with --port PORT (or server.port in "
        "config.toml)"
    ), output
    assert "Serving" not in output and "Traceback" not in output
    assert not (tmp_path / "public").exists()  # stopped before building anything


def test_a_host_that_does_not_resolve_names_host(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(BASE_CONFIG, encoding="utf-8")
    (tmp_path / "articles").mkdir()
    result = run_speakerfeed(tmp_path, "serve", "--host", "no-such-host.invalid", "--port", "8099")
    assert result.returncode == 1
    assert "error: cannot listen on 'no-such-host.invalid'" in result.stderr
    assert "--host" in result.stderr and "Serving" not in result.stdout
