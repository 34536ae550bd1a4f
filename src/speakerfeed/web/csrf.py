"""Cross-site request forgery protection for the forms: a signed double-submit cookie.

The first page with a form sets a random cookie; each form carries an HMAC of it. A POST is
accepted only when both arrive and match, so another site can neither read the token nor make
one. Nothing is stored on the server. The cookie is SameSite=Lax and HttpOnly (the form field,
not the cookie, is what pages read), and Secure when the request came over https (directly, or
through a trusted proxy's X-Forwarded-Proto).

RFC 8058's one-click unsubscribe is the one POST without it: it carries no cookie by design and
is authenticated by its signed link instead (see web.leave).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "speakerfeed_csrf"
FIELD = "csrf_token"
_COOKIE_BYTES = 18
_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class CsrfGuard:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def token(self, request: Request) -> tuple[str, str | None]:
        """The form field for this visitor, and a new cookie value to set (None: keep theirs)."""
        cookie = request.cookies.get(COOKIE, "")
        if self._well_formed(cookie):
            return self._sign(cookie), None
        fresh = secrets.token_urlsafe(_COOKIE_BYTES)
        return self._sign(fresh), fresh

    def set_cookie(self, request: Request, response: Response, value: str | None) -> None:
        if value is not None:
            secure = request.url.scheme == "https"
            response.set_cookie(
                COOKIE, value, httponly=True, samesite="lax", secure=secure, path="/"
            )

    def accepts(self, request: Request, submitted: str) -> bool:
        cookie = request.cookies.get(COOKIE, "")
        if not self._well_formed(cookie) or not submitted:
            return False
        return hmac.compare_digest(submitted, self._sign(cookie))

    def _sign(self, cookie: str) -> str:
        mac = hmac.digest(self._secret, b"csrf\0" + cookie.encode(), hashlib.sha256)
        return mac[:16].hex()

    @staticmethod
    def _well_formed(cookie: str) -> bool:
        return _COOKIE_VALUE.fullmatch(cookie) is not None
