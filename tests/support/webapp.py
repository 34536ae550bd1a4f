"""The readers' web app (subscribe, confirm, preferences, unsubscribe) under a real uvicorn, on
SQLite and PostgreSQL (the ``engine`` fixture), with every email kept for the test to read."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from starlette.routing import BaseRoute

from speakerfeed.actions.sends import transport_for
from speakerfeed.config import Settings
from speakerfeed.models import Batch, DeliveryResult, Outcome
from speakerfeed.store.engine import upgrade
from speakerfeed.store.schema import subscribers, subscriptions
from speakerfeed.transports.base import Transport
from speakerfeed.web.app import create_app
from speakerfeed.web.http_limits import server_options
from tests.support.asgi_server import running
from tests.support.project import make_project

SECRET = b"web-test-secret-key-0123456789"
EMAIL = {
    "from_address": "The Speaker <digest@speakernews.co.uk>",
    "postal_address": "The Speaker, 20 Example Street, London",
    "app_url": "https://app.speakernews.co.uk",
}
LISTS: list[dict[str, Any]] = [
    {
        "name": "daily",
        "title": "The Speaker Daily",
        "description": "Every morning's news.",
        "reason": "You receive this because you signed up for The Speaker Daily.",
    },
    {
        "name": "weekly",
        "title": "The Speaker Weekly",
        "schedule": "0 8 * * 6",
        "cadences": {"monthly": "0 8 1 * *"},
    },
]
_CONFIRM_LINK = re.compile(r"https://app\.speakernews\.co\.uk(/confirm/\S+)")


class KeptMail(Transport):
    """Keeps each batch it is given and reports it sent (or fails when told to)."""

    name = "kept"

    def __init__(self, outbox: list[Batch], *, fail: bool = False) -> None:
        self.outbox, self.fail = outbox, fail

    def send(self, batch: Batch) -> list[DeliveryResult]:
        if self.fail:
            return [
                DeliveryResult(r.key, Outcome.DEFERRED, "421 try later") for r in batch.recipients
            ]
        self.outbox.append(batch)
        return [DeliveryResult(r.key, Outcome.SENT) for r in batch.recipients]


@dataclass
class ReaderSite:
    url: str
    engine: Engine
    settings: Settings
    outbox: list[Batch] = field(default_factory=list)
    fail_mail: bool = False

    def confirm_paths(self, address: str) -> list[str]:
        """The confirm links (paths) of every confirmation email sent to ``address``."""
        found = []
        for batch in self.outbox:
            if any(r.address == address for r in batch.recipients):
                found += _CONFIRM_LINK.findall(batch.text)
        return found

    def subscriber_id(self, address: str) -> str | None:
        with self.engine.connect() as conn:
            found = conn.execute(select(subscribers.c.id).where(subscribers.c.email == address))
            value = found.scalar()
        return None if value is None else str(value)

    def statuses(self, address: str) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(subscriptions.c.list_name, subscriptions.c.status)
                .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
                .where(subscribers.c.email == address)
            ).all()
        return {row.list_name: row.status for row in rows}


def start(
    engine: Engine,
    root: Path,
    *,
    signup: dict[str, Any] | None = None,
    lists: list[dict[str, Any]] | None = None,
    configured_transport: bool = False,
    routes: Sequence[BaseRoute] = (),
    **sections: Any,
) -> Iterator[ReaderSite]:
    """The app under uvicorn. ``routes`` go before the app's own (a route that fails, say).
    ``configured_transport``: mail goes through the transport [delivery] configures (then
    ``outbox`` stays empty), not into ``outbox``."""
    upgrade(engine)
    settings = make_project(
        root,
        email=EMAIL,
        lists=LISTS if lists is None else lists,
        signup=signup or {},
        build={"output_dir": "public", "cache_dir": "var/cache"},
        **sections,
    )
    holder: list[ReaderSite] = []

    def transport() -> Transport:
        if configured_transport:
            return transport_for(settings)
        return KeptMail(holder[0].outbox, fail=holder[0].fail_mail)

    app = create_app(settings, engine=engine, secret=SECRET, transport=transport)
    app.router.routes[0:0] = routes
    with running(app, **server_options(settings.server)) as url:
        holder.append(ReaderSite(url, engine, settings))
        yield holder[0]


@pytest.fixture
def reader_site(engine: Engine, tmp_path: Path) -> Iterator[ReaderSite]:
    yield from start(engine, tmp_path)
