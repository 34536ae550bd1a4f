"""The database an action works on: a migrated engine and the secret key (``Store``), opened
around a command and closed after it; `db upgrade`; and what `serve` and `worker` check and set
up before they start."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from speakerfeed.config import Settings
from speakerfeed.config.secret_key import load_secret_key
from speakerfeed.digest.archive import archived_digests
from speakerfeed.errors import StoreError
from speakerfeed.store.engine import create_engine_for, upgrade
from speakerfeed.store.inclusions import PastDigest
from speakerfeed.transports.base import Transport
from speakerfeed.transports.registry import transport_from_settings


@dataclass(frozen=True, slots=True)
class Store:
    """A migrated database, and the secret key that hashes addresses and signs links (empty
    where the action needs none)."""

    engine: Engine
    secret: bytes


def describe(engine: Engine) -> str:
    """The database's URL with its password hidden: how messages name it."""
    return engine.url.render_as_string(hide_password=True)


def _archive(settings: Settings) -> Callable[[], list[PastDigest]]:
    """What earlier digests held, from their web copies: read by migration 0009 only."""
    return lambda: archived_digests(settings.output_dir)


@contextmanager
def open_store(
    settings: Settings, *, list_name: str | None = None, need_secret: bool = True
) -> Iterator[Store]:
    """The database named by [store] url, migrated first (so a fresh one works), with the
    secret key; disposed of afterwards. ``list_name`` is checked before anything is touched (a
    ConfigError for an unknown list). A database error raised inside becomes a StoreError
    naming the database."""
    if list_name is not None:
        settings.require_list(list_name)
    secret = load_secret_key(settings) if need_secret else b""
    engine = create_engine_for(settings)
    try:
        upgrade(engine, archived_digests=_archive(settings))
        yield Store(engine, secret)
    except SQLAlchemyError as exc:
        raise StoreError(describe(engine), str(exc).splitlines()[0]) from exc
    finally:
        engine.dispose()


@dataclass(frozen=True, slots=True)
class Upgraded:
    database: str  # its URL, password hidden
    revision: str  # the migration now in force


def upgrade_database(settings: Settings) -> Upgraded:
    """Apply every pending migration (creating the SQLite file if needed)."""
    engine = create_engine_for(settings)
    try:
        revision = upgrade(engine, archived_digests=_archive(settings))
    finally:
        engine.dispose()
    return Upgraded(describe(engine), revision)


@dataclass(frozen=True, slots=True)
class ServiceSetup:
    """What a long-running process (`serve`, `worker`) runs on. Dispose of the engine after."""

    engine: Engine
    secret: bytes
    transport: Callable[[], Transport]  # makes the transport, each time it is called
    database: str  # its URL, password hidden
    revision: str  # the migration now in force


def start_service(settings: Settings) -> ServiceSetup:
    """The secret key, the transport and the migrated database, checked in that order before a
    process starts serving: the transport is made once now, so a missing password or API key
    stops start-up instead of the first sign-up."""
    secret = load_secret_key(settings)

    def transport() -> Transport:
        return transport_from_settings(settings.delivery, settings.root)

    transport()
    engine = create_engine_for(settings)
    revision = upgrade(engine, archived_digests=_archive(settings))
    return ServiceSetup(engine, secret, transport, describe(engine), revision)
