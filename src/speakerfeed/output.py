"""The only module that writes to the output folder, and the one atomic file writer.

Files are written atomically (a temporary file in the same folder, then a rename) and a file whose
bytes would not change is left alone, so its modification time, and the ETag derived from it, stay
stable for feed readers polling it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_MKSTEMP_MODE = 0o600


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, durable: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all: into a temporary dot file beside it (which
    folder watchers and the web server skip), then renamed over it. ``mode``: the file's
    permissions, readable by all by default (the web server must read the output); 0o600 for
    what only its owner may read. The folder is made when missing. ``durable``: the data is
    fsynced before the rename, for state that a crash must not lose (output that a build makes
    again is not)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if mode != _MKSTEMP_MODE:
            Path(temporary).chmod(mode)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` unless the file already holds exactly these bytes. True if written."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, data)
    return True
