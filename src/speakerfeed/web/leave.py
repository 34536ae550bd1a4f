"""Unsubscribing: the page behind every email's link, and RFC 8058 one-click.

``GET /unsubscribe/{list}/{token}`` only shows a page with a button: mail scanners and link
previews open links, and opening one must never unsubscribe anyone. The button POSTs the page's
form (with its CSRF token). A mail provider's one-click POST carries ``List-Unsubscribe=One-Click``
and no cookie (RFC 8058 section 3.1): it needs no CSRF token, because the HMAC token in the URL,
bound to the subscriber and the list, is its authentication. Either way the change is committed
before the response is sent.

An expired, cut-short or foreign link leads to a form asking for the address, to send a new
link ("send me a new link"): the answer is the same whatever the address, the email goes out
after the answer (so its timing says nothing either), only to an address holding an active
subscription, within the per-address mail limit and a per-IP limit.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from speakerfeed.errors import TransportError
from speakerfeed.mail import tokens
from speakerfeed.models import Outcome
from speakerfeed.store import rate_limits, suppressions
from speakerfeed.store import subscribers as people
from speakerfeed.subscriptions import membership
from speakerfeed.subscriptions.confirmation import new_links_batch
from speakerfeed.web.csrf import FIELD
from speakerfeed.web.forms import client_network, field
from speakerfeed.web.site import Site, log, visitor

ONE_CLICK = ("List-Unsubscribe", "One-Click")
NEW_LINK_PATH = "/unsubscribe/new-link"


def routes(site: Site) -> list[Route]:
    pages = LeavePages(site)
    return [
        Route("/unsubscribe/", pages.general, methods=["GET", "HEAD"]),
        Route(NEW_LINK_PATH, pages.new_link_form, methods=["GET", "HEAD"]),
        Route(NEW_LINK_PATH, pages.new_link, methods=["POST"]),
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
            return self._ask_for_link(request, request.path_params["list_name"], status=400)
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
            return self._ask_for_link(request, request.path_params["list_name"], status=400)
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
            return self._ask_for_link(request, list_name, status=400)
        return RedirectResponse(request.url.path, status_code=303)

    # ------------------------------------------------------------------- send me a new link

    def _ask_for_link(
        self,
        request: Request,
        list_name: str,
        *,
        email: str = "",
        errors: dict[str, str] | None = None,
        sent: bool = False,
        status: int = 200,
    ) -> Response:
        known = self.site.mailing_list(list_name) is not None
        context = {
            "title": "Check your inbox" if sent else "This link is not valid",
            "list_name": list_name if known else "",
            "values": {"email": email},
            "errors": errors or {},
            "action": NEW_LINK_PATH,
            "sent": sent,
        }
        return self.site.page(request, "web/unsubscribe_new_link.html", context, status=status)

    async def new_link_form(self, request: Request) -> Response:
        sent = request.query_params.get("sent") == "1"
        return self._ask_for_link(request, request.query_params.get("list", ""), sent=sent)

    async def new_link(self, request: Request) -> Response:
        site = self.site
        form = await site.form(request)
        if isinstance(form, Response):
            return form
        list_name = field(form, "list")
        ip = client_network(request, site.settings.signup.ipv6_prefix)
        limits = site.settings.signup
        bucket = rate_limits.bucket(site.secret, "new-link-ip", ip)
        counted = await run_in_threadpool(self._hit, bucket, limits.per_ip)
        if not counted.allowed:
            log.warning("new link refused: too many from one IP (%s)", bucket)
            minutes = max(1, round(counted.retry_after / 60))
            return site.problem(
                request,
                429,
                "Too many requests",
                f"Too many requests came from your network. Please try again in about "
                f"{minutes} minute{'s' if minutes != 1 else ''}.",
                headers={"retry-after": str(counted.retry_after)},
            )
        email = field(form, "email").strip()
        try:
            address = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError:
            message = (
                "Enter an email address in the right form, like name@example.org"
                if email
                else "Enter your email address"
            )
            return self._ask_for_link(
                request, list_name, email=email, errors={"email": message}, status=422
            )
        # The same answer at once whatever the address; the email, if any, goes out after it.
        task = BackgroundTask(run_in_threadpool, self._send_new_link, address, list_name)
        location = f"{NEW_LINK_PATH}?sent=1"
        return RedirectResponse(location, status_code=303, background=task)

    def _hit(self, bucket: str, limit: int) -> rate_limits.Hit:
        with self.site.engine.begin() as conn:
            return rate_limits.hit(conn, bucket, limit=limit, window=self.site.ip_window)

    def _send_new_link(self, address: str, list_name: str) -> None:
        """Mail fresh unsubscribe and preferences links to ``address`` if it holds an active
        subscription (the named list's, else its first) and may be mailed now (blocking)."""
        site = self.site
        with site.engine.begin() as conn:
            # Counted for every address asked about, known or not: the limit says nothing.
            mail_bucket = rate_limits.bucket(site.secret, "mail", people.normalise_email(address))
            limit = site.mail_limit
            if not rate_limits.hit(
                conn, mail_bucket, limit=limit.count, window=limit.window
            ).allowed:
                log.info("new link not sent: the address has had its emails for now")
                return
            found = people.find_by_email(conn, address)
            if found is None:
                return
            if suppressions.reason_of(conn, people.address_hash(site.secret, found.email)):
                return
            person = membership.preferences(conn, found.id)
        active = [
            name
            for name, status in (person.statuses if person else {}).items()
            if status in membership.ACTIVE and site.mailing_list(name) is not None
        ]
        if not active:
            return
        chosen = list_name if list_name in active else active[0]
        list_settings = site.mailing_list(chosen)
        assert list_settings is not None  # in active only if configured
        unsubscribe = tokens.sign(site.secret, "unsubscribe", found.id, chosen)
        batch = new_links_batch(
            site.settings,
            list_settings,
            found,
            site.url(f"/unsubscribe/{chosen}/{unsubscribe}"),
            site.url(site.preferences_url(chosen, found.id)),
        )
        try:
            with site.transport() as transport:
                (result,) = transport.send(batch)
        except TransportError as exc:
            log.error("new link email not sent: %s", exc)
            return
        if result.outcome is not Outcome.SENT:
            log.error("new link email not sent: %s %s", result.outcome, result.detail)
            return
        log.info("new link email sent for list %s", chosen)
