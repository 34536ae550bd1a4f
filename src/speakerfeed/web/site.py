"""What every reader-facing page shares: settings, store, key, CSRF guard, mailer, and the way a
page is rendered and answered (no caching of pages that hold a signed link).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response

from speakerfeed.config import ListSettings, Settings
from speakerfeed.mail import tokens
from speakerfeed.render.pages import base_context, render_page
from speakerfeed.subscriptions.confirmation import mail_limit
from speakerfeed.subscriptions.membership import MailLimit, Preferences, Visitor, preferences
from speakerfeed.transports.base import Transport
from speakerfeed.web.csrf import FIELD, CsrfGuard
from speakerfeed.web.forms import FormTooLargeError, client_ip, field, read_form

log = logging.getLogger("speakerfeed.web")

# Pages hold signed links: no cache may keep them. (The security headers of every response,
# these pages' too, are web.security_headers'.)
NO_STORE = {"cache-control": "no-store"}

# The answers web.app gives for an address with nothing there, a method a page does not take,
# and a failure of ours: (title, message).
ERROR_PAGES = {
    404: (
        "Page not found",
        "There is nothing at this address. The link may be mistyped, or the page has moved. "
        "The links at the top of this page lead to everything we publish.",
    ),
    405: (
        "This page cannot do that",
        "This address does not take that kind of request. If you pressed a button on one of "
        "our pages, go back, reload the page and try again.",
    ),
    500: (
        "Something went wrong on our side",
        "We could not answer just now; the problem is ours, not yours, and it has been logged. "
        "Please try again in a few minutes.",
    ),
}


@dataclass(frozen=True, slots=True)
class LinkedPerson:
    """The subscriber a signed link is for, and the list it names."""

    list_settings: ListSettings
    subscriber_id: str
    person: Preferences


@dataclass(frozen=True)
class Site:
    settings: Settings
    engine: Engine
    secret: bytes
    csrf: CsrfGuard
    transport: Callable[[], Transport]  # a new transport per email: opened, used, closed
    templates_dir: Path | None = None

    @property
    def mail_limit(self) -> MailLimit:
        return mail_limit(self.settings)

    @property
    def ip_window(self) -> timedelta:
        return timedelta(minutes=self.settings.signup.per_ip_window_minutes)

    def mailing_list(self, name: str) -> ListSettings | None:
        return self.settings.mailing_list(name)

    def url(self, path: str) -> str:
        """The public URL of one of the app's paths ("/confirm/..."), as emails must link."""
        return self.settings.app_url + path

    def page(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """A page from templates/web/, with a CSRF token for its forms."""
        token, new_cookie = self.csrf.token(request)
        full = {**base_context(self.settings), "csrf_field": FIELD, "csrf_token": token, **context}
        body = render_page(template, full, templates_dir=self.templates_dir)
        all_headers = {**NO_STORE, **(headers or {})}
        response = HTMLResponse(body, status_code=status, headers=all_headers)
        self.csrf.set_cookie(request, response, new_cookie)
        return response

    def problem(
        self,
        request: Request,
        status: int,
        title: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """A page that says what went wrong and what to do (bad link, no CSRF token, too many)."""
        context = {"title": title, "message": message, "subscribe_url": "/subscribe"}
        if not self.settings.lists:
            context["subscribe_url"] = ""  # no list, no sign-up form
        return self.page(request, "web/problem.html", context, status=status, headers=headers)

    def error_page(self, status: int) -> bytes:
        """The page of a 404, 405 or 500: the site's layout, no form, no cookie, nothing from
        the request (a 500 must not show what went wrong inside)."""
        title, message = ERROR_PAGES[status]
        context = {**base_context(self.settings), "title": title, "message": message}
        context["subscribe_url"] = context["signup_url"]
        return render_page("web/problem.html", context, templates_dir=self.templates_dir)

    def signed_link(self, request: Request, purpose: str) -> tuple[str, str] | None:
        """(list name, subscriber id) of a valid /<purpose>/{list_name}/{token} link, or None."""
        list_name = request.path_params["list_name"]
        if self.mailing_list(list_name) is None:
            return None
        subscriber_id = tokens.verify(
            self.secret, request.path_params["token"], purpose, list_name=list_name
        )
        return None if subscriber_id is None else (list_name, subscriber_id)

    async def linked_person(self, request: Request, purpose: str) -> LinkedPerson | None:
        """Who a valid /<purpose>/{list_name}/{token} link is for, on which list, and what is
        stored about them; None for an invalid link or a subscriber since erased."""
        found = self.signed_link(request, purpose)
        if found is None:
            return None
        list_name, subscriber_id = found
        person = await run_in_threadpool(self.person, subscriber_id)
        list_settings = self.mailing_list(list_name)
        if person is None or list_settings is None:
            return None
        return LinkedPerson(list_settings, subscriber_id, person)

    def preferences_url(self, list_name: str, subscriber_id: str) -> str:
        token = tokens.sign(self.secret, "preferences", subscriber_id, list_name)
        return f"/preferences/{list_name}/{token}"

    def person(self, subscriber_id: str) -> Preferences | None:
        """What is stored about the subscriber (blocking: call it in a thread)."""
        with self.engine.connect() as conn:
            return preferences(conn, subscriber_id)

    def forbidden(self, request: Request) -> Response:
        return self.problem(
            request,
            403,
            "This form has expired",
            "We could not check that this form came from our site. Your browser may block "
            "cookies, or the page was open for a long time. Go back, reload the page and try "
            "again.",
        )

    def invalid_link(self, request: Request) -> Response:
        return self.problem(
            request,
            400,
            "This link is not valid",
            "The link may have expired, or been cut short by your email program. "
            "You can sign up again: we will send a new link.",
        )

    async def form(self, request: Request, *, csrf: bool = True) -> FormData | Response:
        """The POSTed form, or the page to answer with: too large, or (``csrf``) unchecked."""
        try:
            form = await read_form(
                request, deadline_seconds=self.settings.server.request_body_seconds
            )
        except FormTooLargeError:
            return self.problem(request, 413, "Too much data", "The form sent too much data.")
        except TimeoutError:
            message = "The form took too long to arrive. Please try again."
            close = {"connection": "close"}  # the rest of the body is not read
            return self.problem(request, 408, "This took too long", message, headers=close)
        except ClientDisconnect:
            return Response(status_code=400)
        if csrf and not self.csrf.accepts(request, field(form, FIELD)):
            return self.forbidden(request)
        return form


def visitor(request: Request) -> Visitor:
    """The consent evidence of a request: the client's IP and user agent."""
    return Visitor(client_ip(request), request.headers.get("user-agent", ""))
