"""Unsubscribing: the page behind every email's link, and RFC 8058 one-click.

``GET /unsubscribe/{list}/{token}`` only shows a page with a button: mail scanners and link
previews open links, and opening one must never unsubscribe anyone. The button POSTs the page's
form (with its CSRF token). A mail provider's one-click POST carries ``List-Unsubscribe=One-Click``
and no cookie (RFC 8058 section 3.1): it needs no CSRF token, because the HMAC token in the URL,
bound to the subscriber and the list, is its authentication. Either way the change is committed
before the response is sent.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from speakerfeed.subscriptions import membership
from speakerfeed.web.csrf import FIELD
from speakerfeed.web.forms import field
from speakerfeed.web.site import Site, log, visitor

ONE_CLICK = ("List-Unsubscribe", "One-Click")


def routes(site: Site) -> list[Route]:
    pages = LeavePages(site)
    return [
        Route("/unsubscribe/", pages.general, methods=["GET", "HEAD"]),
        Route("/unsubscribe/{list_name}/{token}", pages.page, methods=["GET", "HEAD"]),
        Route("/unsubscribe/{list_name}/{token}", pages.submit, methods=["POST"]),
    ]


class LeavePages:
    def __init__(self, site: Site) -> None:
        self.site = site

    async def general(self, request: Request) -> Response:
        """Where the web copy of a digest links: no one's link, so explain where to find it."""
        context = {"title": "Unsubscribe", "manage_url": "/preferences/"}
        return self.site.page(request, "web/unsubscribe_help.html", context)

    async def page(self, request: Request) -> Response:
        linked = await self.site.linked_person(request, "unsubscribe")
        if linked is None:
            return self.site.invalid_link(request)
        list_settings, person = linked.list_settings, linked.person
        left = person.statuses.get(list_settings.name) in (None, "unsubscribed")
        context = {
            "title": f"You have unsubscribed from {list_settings.title}"
            if left
            else f"Unsubscribe from {list_settings.title}",
            "list": list_settings,
            "email": person.email,
            "left": left,
            "action": request.url.path,
            "preferences_url": self.site.preferences_url(list_settings.name, linked.subscriber_id),
        }
        return self.site.page(request, "web/unsubscribe.html", context)

    async def submit(self, request: Request) -> Response:
        site = self.site
        form = await site.form(request, csrf=False)
        if isinstance(form, Response):
            return form
        one_click = field(form, ONE_CLICK[0]) == ONE_CLICK[1]
        if not one_click and not site.csrf.accepts(request, field(form, FIELD)):
            return site.forbidden(request)
        found = self.site.signed_link(request, "unsubscribe")
        if found is None:
            if one_click:
                return PlainTextResponse("This unsubscribe link is not valid.", status_code=400)
            return site.invalid_link(request)
        list_name, subscriber_id = found
        who = visitor(request)
        how = "one-click" if one_click else "web:unsubscribe"

        def leave() -> bool:
            with site.engine.begin() as conn:
                return membership.unsubscribe(
                    conn,
                    secret=site.secret,
                    subscriber_id=subscriber_id,
                    list_name=list_name,
                    visitor=who,
                    form=how,
                )

        done = await run_in_threadpool(leave)
        log.info("unsubscribe from %s (%s): %s", list_name, how, "done" if done else "unknown")
        if one_click:
            # The provider only reads the status; 200 whether or not the person still existed,
            # so the answer says nothing about who is subscribed.
            return PlainTextResponse("Unsubscribed.")
        if not done:
            return site.invalid_link(request)
        return RedirectResponse(request.url.path, status_code=303)
