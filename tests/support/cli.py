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
