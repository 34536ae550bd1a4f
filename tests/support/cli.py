"""The `speakerfeed` command run as a user runs it: a child process in the project's folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def cli_env(secret: str | None = None, **extra: str) -> dict[str, str]:
    """This process's environment without colours or a SPEAKERFEED_CONFIG from the developer's
    shell (the folder's config.toml must be the one read), and with ``secret`` as the secret key
    when given (else none at all)."""
    env = {**os.environ, "NO_COLOR": "1", **extra}
    env.pop("SPEAKERFEED_CONFIG", None)
    env.pop("SPEAKERFEED_SECRET_KEY", None)
    if secret is not None:
        env["SPEAKERFEED_SECRET_KEY"] = secret
    return env


def speakerfeed_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "speakerfeed", *args]


def run_speakerfeed(
    folder: Path,
    *args: str,
    secret: str | None = None,
    timeout: float = 180,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`speakerfeed ARGS` in ``folder``, to completion; its output as text."""
    return subprocess.run(
        speakerfeed_command(*args),
        cwd=folder,
        env=cli_env(secret, **(extra_env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_speakerfeed_on_terminal(
    folder: Path,
    *args: str,
    secret: str | None = None,
    timeout: float = 180,
    extra_env: Mapping[str, str] | None = None,
) -> tuple[int, str]:
    """`speakerfeed ARGS` in ``folder`` with its output on a pseudo-terminal, as in an editor's
    shell (progress bars are drawn only there): (exit status, everything it wrote, stdout and
    stderr together, with the terminal's CRLF line ends)."""
    import pty
    import select

    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            speakerfeed_command(*args),
            cwd=folder,
            env=cli_env(secret, **{"COLUMNS": "120", **(extra_env or {})}),
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
        )
    finally:
        os.close(terminal)  # the child holds its own copy: reading ends when it exits
    output = bytearray()
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], timeout)
            if not ready:
                process.kill()
                raise TimeoutError(f"speakerfeed {' '.join(args)}: no output for {timeout} s")
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(controller)
    return process.wait(timeout=timeout), output.decode("utf-8", "replace")
