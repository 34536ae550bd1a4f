"""The ASGI app `speakerfeed serve` runs: readers' pages (subscribe, confirm, unsubscribe,
preferences), SendGrid's event webhook, and the output folder with the right media types.

The output folder is served by speakerfeed.web.feeds (media types, strong ETags, 304s, gzip,
Cache-Control), mounted last so the readers' routes come first. Every response goes through
speakerfeed.web.security_headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from speakerfeed.config import Settings
from speakerfeed.digest.archive import write_archive_index
from speakerfeed.service import Service
from speakerfeed.transports.base import Transport
from speakerfeed.web import leave, preferences, signup
from speakerfeed.web.csrf import CsrfGuard
from speakerfeed.web.feeds import FeedFiles
from speakerfeed.web.feeds import media_type_for as media_type_for
from speakerfeed.web.feeds import wants_html as wants_html
from speakerfeed.web.security_headers import SecurityHeaders
from speakerfeed.web.site import Site, log
from speakerfeed.webhooks.sendgrid import sendgrid_events_endpoint


def create_app(
    settings: Settings,
    *,
    engine: Engine,
    secret: bytes,
    transport: Callable[[], Transport],
    templates_dir: Path | None = None,
    service: Service | None = None,
) -> Starlette:
    """The app; ``transport`` makes the transport each confirmation email goes through;
    ``service`` (the scheduler and send loop) starts and stops with the app, and reports
    its health at /healthz."""
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    if settings.lists:
        write_archive_index(settings)  # the header's "Archive" link leads somewhere from the start
    site = Site(
        settings=settings,
        engine=engine,
        secret=secret,
        csrf=CsrfGuard(secret),
        transport=transport,
        templates_dir=templates_dir or settings.templates_dir,
    )
    routes: list[BaseRoute] = []
    if settings.lists:
        routes += signup.routes(site) + leave.routes(site) + preferences.routes(site)
    if settings.webhooks.sendgrid_public_key:
        endpoint = sendgrid_events_endpoint(engine, settings.webhooks.sendgrid_public_key, secret)
        routes.append(Route("/webhooks/sendgrid", endpoint, methods=["POST"]))
    if service is not None:
        routes.append(Route("/healthz", health_endpoint(service), methods=["GET", "HEAD"]))
    files = FeedFiles(settings.output_dir)
    routes.append(Mount("/", app=files, name="feeds"))
    return Starlette(
        routes=routes,
        # Inside SecurityHeaders, so the error pages (even a 500's) carry the headers too.
        middleware=[
            Middleware(SecurityHeaders, settings=settings),
            Middleware(ErrorPages, site=site),
        ],
        lifespan=None if service is None else lifespan_of(service),
    )


class ErrorPages:
    """ASGI middleware giving a 404, a 405 and an unexpected error the site's own page.

    The output folder's server (web.feeds) and Starlette answer a missing path or a method a
    route does not take with a plain-text body; that body is replaced by the page, keeping the
    status and headers such as Allow. An exception before the response started becomes the 500
    page; the traceback goes to the log, never to the reader.
    """

    STYLED = frozenset({404, 405})

    def __init__(self, app: ASGIApp, site: Site) -> None:
        self.app, self.site = app, site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        replaced = False

        async def send_styled(message: Message) -> None:
            nonlocal started, replaced
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                if status in self.STYLED and _is_plain_text(headers):
                    replaced = True
                    await self._send_page(send, status, headers)
                    return
            elif replaced:
                return  # the plain-text body the page stands in for
            await send(message)

        try:
            await self.app(scope, receive, send_styled)
        except Exception:
            if started:
                raise
            log.exception("%s %s failed", scope.get("method", ""), scope.get("path", ""))
            await self._send_page(send, 500, [])

    async def _send_page(self, send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        media_type = b"text/html; charset=utf-8"
        try:
            body = self.site.error_page(status)
        except Exception:  # an editor's broken template: still an answer, with our headers
            log.exception("the %d page could not be rendered", status)
            body, media_type = ERROR_TEXT.get(status, b"Error"), b"text/plain; charset=utf-8"
        kept = [(k, v) for k, v in headers if k.lower() not in (b"content-type", b"content-length")]
        kept += [
            (b"content-type", media_type),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": kept})
        await send({"type": "http.response.body", "body": body})


ERROR_TEXT = {404: b"Not Found", 405: b"Method Not Allowed", 500: b"Internal Server Error"}


def _is_plain_text(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.startswith(b"text/plain") for k, v in headers)


def health_endpoint(service: Service) -> Callable[[Request], Awaitable[Response]]:
    async def health(request: Request) -> Response:
        report = await run_in_threadpool(service.health)
        status = 200 if report["status"] == "ok" else 503
        return JSONResponse(report, status_code=status, headers={"cache-control": "no-store"})

    return health


def lifespan_of(service: Service) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            # uvicorn calls this on SIGTERM and SIGINT once requests are done: the send loop
            # finishes its batch and records it before the process ends.
            await run_in_threadpool(service.stop)

    return lifespan
