"""A real WebSub hub on 127.0.0.1 (a small Starlette app under uvicorn) that records what it is
told: for the WebSub tests and the service's embargo rebuild."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.asgi_server import running


@dataclass
class Hub:
    url: str = ""
    statuses: list[int] = field(default_factory=list)  # answers, in order; then 204
    received: list[list[tuple[str, str]]] = field(default_factory=list)

    def published(self) -> list[str]:
        """Every feed URL the hub was told of, in order."""
        return [value for form in self.received for key, value in form if key == "hub.url"]


@contextmanager
def running_hub() -> Iterator[Hub]:
    state = Hub()

    async def publish(request: Request) -> Response:
        form = await request.form()
        state.received.append([(key, str(value)) for key, value in form.multi_items()])
        status = state.statuses.pop(0) if state.statuses else 204
        return Response(status_code=status)

    app = Starlette(routes=[Route("/hub", publish, methods=["POST"])])
    with running(app) as url:
        state.url = url + "/hub"
        yield state
