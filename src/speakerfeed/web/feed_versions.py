"""What one version of one file in the output folder is served as: read, hashed and compressed
once per version (the file's mtime, size and inode, which stay put because the build leaves
unchanged files alone, see output.py), then answered from memory.

- a strong ETag that is a hash of the bytes (not Starlette's mtime-size one, so two servers or a
  rebuild that writes the same bytes give the same ETag), and Last-Modified from the mtime;
- the gzip body, for clients that accept gzip, with its own strong ETag (the identity ETag with
  "-gz" inside the quotes) and `Vary: Accept-Encoding`;
- the response headers of every variant, for 200 and for 304, with `Vary: Accept` on a feed that
  a browser is shown a page for, and on that page (web.feed_http.negotiated).

A file larger than ``max_file_bytes`` is hashed once and streamed from disk, uncompressed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
from email.utils import formatdate
from pathlib import Path

from speakerfeed.web.feed_http import (
    MIN_GZIP_BYTES,
    cache_control,
    compressible,
    content_type_for,
    negotiated,
)

Headers = list[tuple[bytes, bytes]]


class Variant:
    """One representation: identity or gzip."""

    __slots__ = ("body", "etag", "not_modified", "ok")

    def __init__(self, etag: str, ok: Headers, not_modified: Headers, body: bytes | None) -> None:
        self.etag = etag
        self.ok = ok  # the 200 response's headers
        self.not_modified = not_modified  # the 304's: ETag, Last-Modified, Cache-Control, Vary
        self.body = body  # None: stream the file


class Version:
    """What one version of one file is served as."""

    __slots__ = ("cost", "key", "last_modified", "variants")

    def __init__(
        self, key: tuple[int, int, int], last_modified: int, variants: tuple[Variant, ...]
    ) -> None:
        self.key = key  # (st_mtime_ns, st_size, st_ino)
        self.last_modified = last_modified  # whole seconds, as the header says
        self.variants = variants  # (identity, gzip); the same one twice without a gzip body
        bodies = {id(v.body): len(v.body) for v in variants if v.body is not None}
        self.cost = sum(bodies.values())


def file_key(result: os.stat_result) -> tuple[int, int, int]:
    return (result.st_mtime_ns, result.st_size, result.st_ino)


def build_version(
    directory: str, full: str, relative: str, *, max_file_bytes: int
) -> Version | None:
    """The served form of the file's current version; None when it is not a regular file in
    ``directory`` (a symbolic link out of it, say)."""
    real = os.path.realpath(full)
    if os.path.commonpath([real, directory]) != directory:
        return None  # a symbolic link out of the output folder
    with Path(full).open("rb") as handle:
        result = os.fstat(handle.fileno())
        if not stat.S_ISREG(result.st_mode):
            return None
        data: bytes | None = None
        if result.st_size <= max_file_bytes:
            data = handle.read()
            digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        else:
            digest = hashlib.file_digest(
                handle, lambda: hashlib.blake2b(digest_size=16)
            ).hexdigest()
    media_type, content_type = content_type_for(relative)
    compressed = None
    if data is not None and len(data) >= MIN_GZIP_BYTES and compressible(media_type):
        compressed = gzip.compress(data, compresslevel=6, mtime=0)
        if len(compressed) >= len(data):
            compressed = None
    vary = [b"Accept"] if negotiated(relative) else []
    if compressed is not None:
        vary.append(b"Accept-Encoding")
    last_modified = int(result.st_mtime)
    common: Headers = [
        (b"last-modified", formatdate(last_modified, usegmt=True).encode()),
        (b"cache-control", cache_control(full, relative).encode()),
    ]
    if vary:
        common.append((b"vary", b", ".join(vary)))

    def variant(etag: str, body: bytes | None, length: int, type_: str, gz: bool) -> Variant:
        validators = [(b"etag", etag.encode()), *common]
        ok = [(b"content-type", type_.encode()), (b"content-length", str(length).encode())]
        ok += validators
        if gz:
            ok.append((b"content-encoding", b"gzip"))
        return Variant(etag, ok, validators, body)

    size = result.st_size if data is None else len(data)
    plain = variant(f'"{digest}"', data, size, content_type, False)
    if compressed is None:
        return Version(file_key(result), last_modified, (plain, plain))
    gz = variant(f'"{digest}-gz"', compressed, len(compressed), content_type, True)
    return Version(file_key(result), last_modified, (plain, gz))
