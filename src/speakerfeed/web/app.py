"""The ASGI app `speakerfeed serve` runs: for now, the output folder with the right media types.

Starlette's StaticFiles gives ETag, Last-Modified, 304 responses and HEAD; we add the feed media
types it cannot guess from a file name.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from speakerfeed.config import Settings
from speakerfeed.render.feeds import FORMATS

_SUBSCRIPTION_TYPES = {fmt.filename: fmt.media_type for fmt in FORMATS.values()}


def media_type_for(relative: str) -> str | None:
    """The feed media type of an output path, or None to let the file name decide."""
    path = PurePosixPath(relative)
    if path.name in _SUBSCRIPTION_TYPES:
        return _SUBSCRIPTION_TYPES[path.name]
    # archive/<format>/<n>.<ext>
    if len(path.parts) >= 3 and path.parts[-3] == "archive" and path.parts[-2] in FORMATS:
        return FORMATS[path.parts[-2]].media_type
    if path.suffix == ".xsl":
        return "text/xsl; charset=utf-8"
    return None


class FeedFiles(StaticFiles):
    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        relative = os.path.relpath(full_path, str(self.directory))
        media_type = media_type_for(relative.replace(os.sep, "/"))
        if media_type is not None:
            charset = "" if "charset" in media_type else "; charset=utf-8"
            response.headers["content-type"] = media_type + charset
            response.media_type = media_type
        return response


def create_app(settings: Settings) -> Starlette:
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    files = FeedFiles(directory=settings.output_dir, html=True)
    return Starlette(routes=[Mount("/", app=files, name="feeds")])
