"""The secret key that signs links in emails and hashes suppressed addresses.

SPEAKERFEED_SECRET_KEY wins. Without it, an embedded (SQLite) install keeps a random key in
``var/secret.key`` beside its database, made on first use and readable by its owner only, so the
README's first command works on a fresh machine and every command of that install agrees on the
key. A PostgreSQL install may run on several machines, each of which would make its own key
(and so different hashes and links): there the variable is required.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from speakerfeed.config import Secrets, Settings
from speakerfeed.errors import ConfigError, Problem

MIN_SECRET_BYTES = 16  # HMAC keys for the links' tokens

ENV = "SPEAKERFEED_SECRET_KEY"
KEY_FILE = "var/secret.key"

log = logging.getLogger(__name__)


def load_secret_key(settings: Settings, environ: Mapping[str, str] | None = None) -> bytes:
    """The key as bytes, or ConfigError saying how to set it."""
    key = Secrets.from_env(environ).secret_key
    if key:
        if len(key.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                [Problem(ENV, f"too short: use at least {MIN_SECRET_BYTES} random characters")]
            )
        return key.encode()
    if not settings.store.url.startswith("sqlite"):
        raise ConfigError(
            [
                Problem(
                    ENV,
                    "not set: with PostgreSQL every process must share one key; generate one "
                    'with `python -c "import secrets; print(secrets.token_urlsafe(32))"`',
                )
            ]
        )
    return _key_file(settings.path(KEY_FILE))


def _key_file(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        key = b""
    if len(key) >= MIN_SECRET_BYTES:
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32).encode()
    # O_EXCL: two processes starting at once must not both write; the loser reads the winner's.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing = path.read_bytes().strip()
        if len(existing) < MIN_SECRET_BYTES:
            raise ConfigError(
                [Problem(str(path), f"holds a key shorter than {MIN_SECRET_BYTES} bytes")]
            ) from None
        return existing
    with os.fdopen(descriptor, "wb") as out:
        out.write(key + b"\n")
    log.info("made a new secret key in %s (set %s to use your own)", path, ENV)
    return key
