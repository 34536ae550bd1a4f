"""The ASGI app `speakerfeed serve` runs: for now, the output folder with the right media types.

Starlette's StaticFiles gives ETag, Last-Modified, 304 responses and HEAD; we add the feed media
types it cannot guess from a file name. A browser opening an RSS or Atom feed is the exception:
Chromium applies the feed's XSL stylesheet only to a document served as application/xml and shows
application/rss+xml as raw text, so a request that prefers HTML gets the same bytes as
application/xml (with `Vary: Accept`, so caches keep the two apart).
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from speakerfeed.config import Settings
from speakerfeed.render.feeds import FORMATS

_SUBSCRIPTION_TYPES = {fmt.filename: fmt.media_type for fmt in FORMATS.values()}
_STYLED = {FORMATS["rss"].media_type, FORMATS["atom"].media_type}


def media_type_for(relative: str) -> str | None:
    """The feed media type of an output path, or None to let the file name decide."""
    path = PurePosixPath(relative)
    if path.name in _SUBSCRIPTION_TYPES:
        return _SUBSCRIPTION_TYPES[path.name]
    # archive/<format>/<n>.<ext>
    if len(path.parts) >= 3 and path.parts[-3] == "archive" and path.parts[-2] in FORMATS:
        return FORMATS[path.parts[-2]].media_type
    if path.suffix == ".xsl":
        return "text/xsl"
    return None


def wants_html(accept: str) -> bool:
    """True for a browser navigating to the URL (it asks for text/html first), not a feed reader."""
    first = accept.split(",", 1)[0].split(";", 1)[0].strip().lower()
    return first == "text/html"


class FeedFiles(StaticFiles):
    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        relative = os.path.relpath(full_path, str(self.directory)).replace(os.sep, "/")
        media_type = media_type_for(relative)
        if media_type is None:
            return response
        if media_type in _STYLED:
            response.headers["vary"] = "Accept"
            if wants_html(Headers(scope=scope).get("accept", "")):
                media_type = "application/xml"
        response.headers["content-type"] = f"{media_type}; charset=utf-8"
        response.media_type = media_type
        return response


def create_app(settings: Settings) -> Starlette:
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    files = FeedFiles(directory=settings.output_dir, html=True)
    return Starlette(routes=[Mount("/", app=files, name="feeds")])
