"""The one place that sets the security headers: a pure ASGI middleware around the whole app, so
the readers' pages, the webhook's answers and every file from the output folder (the feeds
index, the feeds' pages, the digests' archive and web copies) carry them alike.

- Content-Security-Policy: nothing loads by default; styles from our own files and inline (the
  digests' web copies are MJML output, full of style attributes and <style> blocks); images from
  our own hosts only (the server's, the site's and the app's: a web copy shows article images
  from the site, and no page may load anything from another host); forms post to our own hosts;
  no scripts at all (no page needs one); no framing (there is no editors' preview yet).
- X-Frame-Options DENY for browsers without frame-ancestors; nosniff, so no file is read as
  something it is not; Referrer-Policy no-referrer, because pages hold signed links.
- Strict-Transport-Security only on a request that came over https: directly, or through a
  trusted proxy that said so (uvicorn's proxy headers handling has set the scope's scheme).

A header the app set itself is left as it is.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from speakerfeed.config import Settings

__all__ = ["HSTS", "SecurityHeaders", "content_security_policy"]

# Two years, the preload list's minimum; no includeSubDomains: other hosts of the domain are
# not ours to decide for.
HSTS = "max-age=63072000"


def _origins(*urls: str) -> list[str]:
    """The distinct origins (scheme://host[:port]) of the given URLs, in order."""
    found: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
        if origin and origin not in found:
            found.append(origin)
    return found


def content_security_policy(settings: Settings) -> str:
    ours = " ".join(["'self'", *_origins(settings.site.url, settings.app_url)])
    return (
        f"default-src 'none'; style-src 'self' 'unsafe-inline'; img-src {ours} data:; "
        f"form-action {ours}; frame-ancestors 'none'; base-uri 'none'"
    )


class SecurityHeaders:
    """ASGI middleware adding the security headers to every HTTP response of ``app``."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", content_security_policy(settings).encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        self.https_headers = [*self.headers, (b"strict-transport-security", HSTS.encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.https_headers if scope.get("scheme") == "https" else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [header for header in extra if header[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
