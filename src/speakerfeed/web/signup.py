"""Subscribe form -> confirmation email -> confirm page (double opt-in).

The form's answer is the same whatever the address: "check your inbox". Whether an email goes
out (new or pending address, within the per-address limit, not suppressed) is decided in
speakerfeed.subscriptions.membership and never shown. A filled honeypot gets the same answer
and no email.
Too many sign-ups from one IP get 429 before anything else is done. An address the mailer could
not send to (mail.addresses) gets 422 with the reason at the field, and nothing is stored.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from speakerfeed.actions.welcomes import owe_welcome, send_welcome
from speakerfeed.errors import AddressError, TransportError
from speakerfeed.mail.addresses import mailable_address, smtputf8_allowed
from speakerfeed.models import Outcome, Subscriber
from speakerfeed.store import rate_limits
from speakerfeed.subscriptions import membership
from speakerfeed.subscriptions.confirmation import (
    confirm_url,
    confirmation_batch,
    new_message_id,
)
from speakerfeed.web.forms import client_network, field
from speakerfeed.web.site import Site, log, visitor

HONEYPOT = "website"  # a field people never see; bots fill in every field they find
MAX_NAME = membership.MAX_NAME


def routes(site: Site) -> list[Route]:
    pages = SignupPages(site)
    return [
        Route("/subscribe", pages.form, methods=["GET", "HEAD"]),
        Route("/subscribe", pages.submit, methods=["POST"]),
        Route("/subscribe/sent", pages.sent, methods=["GET", "HEAD"]),
        Route("/confirm/{list_name}/{token}", pages.confirm_page, methods=["GET", "HEAD"]),
        Route("/confirm/{list_name}/{token}", pages.confirm, methods=["POST"]),
    ]


def too_many(site: Site, request: Request, retry: int) -> Response:
    minutes = max(1, round(retry / 60))
    return site.problem(
        request,
        429,
        "Too many requests",
        f"Too many sign-ups came from your network. Please try again in about {minutes} "
        f"minute{'s' if minutes != 1 else ''}.",
        headers={"retry-after": str(retry)},
    )


class SignupPages:
    def __init__(self, site: Site) -> None:
        self.site = site

    # ------------------------------------------------------------------------------ the form

    async def form(self, request: Request) -> Response:
        chosen = request.query_params.get("list", "")
        return self._form_page(request, {"list": chosen}, {})

    def _form_page(
        self, request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200
    ) -> Response:
        lists = self.site.settings.lists
        if not values.get("list") and len(lists) == 1:
            values = {**values, "list": lists[0].name}
        context = {
            "title": "Subscribe",
            "lists": lists,
            "values": values,
            "errors": errors,
            "honeypot": HONEYPOT,
        }
        return self.site.page(request, "web/subscribe.html", context, status=status)

    async def submit(self, request: Request) -> Response:
        site = self.site
        form = await site.form(request)
        if isinstance(form, Response):
            return form
        ip = client_network(request, site.settings.signup.ipv6_prefix)
        signup = site.settings.signup
        bucket = rate_limits.bucket(site.secret, "signup-ip", ip)
        counted = await run_in_threadpool(self._hit, bucket, signup.per_ip, site.ip_window)
        if not counted.allowed:
            log.warning("sign-up refused: too many from one IP (%s)", bucket)
            return too_many(site, request, counted.retry_after)

        values = {
            "list": field(form, "list"),
            "name": " ".join(field(form, "name").split())[:MAX_NAME],
            "email": field(form, "email").strip(),
        }
        errors = self._problems(values)
        if errors:
            return self._form_page(request, values, errors, status=422)
        if field(form, HONEYPOT):
            log.info("sign-up ignored: the honeypot field was filled in")
            return RedirectResponse(f"/subscribe/sent?list={values['list']}", status_code=303)
        try:
            sent = await run_in_threadpool(self._sign_up, values, request)
        except SQLAlchemyError:
            log.exception("sign-up failed: the store is unavailable")
            return site.problem(
                request, 503, "Please try again later", "We could not take your sign-up now."
            )
        if sent is False:
            return site.problem(
                request,
                503,
                "Please try again later",
                "We could not send the confirmation email just now. Please try again later.",
            )
        return RedirectResponse(f"/subscribe/sent?list={values['list']}", status_code=303)

    def _hit(self, bucket: str, limit: int, window: timedelta) -> rate_limits.Hit:
        with self.site.engine.begin() as conn:
            return rate_limits.hit(conn, bucket, limit=limit, window=window)

    def _problems(self, values: dict[str, str]) -> dict[str, str]:
        errors: dict[str, str] = {}
        if self.site.mailing_list(values["list"]) is None:
            errors["list"] = "Choose a newsletter"
        if not values["email"]:
            errors["email"] = "Enter your email address"
        else:
            # The one check (mail.addresses): an address the mailer would refuse is the
            # reader's to fix here, before anything is stored or a per-address window used.
            smtputf8 = smtputf8_allowed(self.site.settings.delivery)
            try:
                values["email"] = mailable_address(values["email"], smtputf8=smtputf8)
            except AddressError as exc:
                errors["email"] = f"{exc.reason}. Enter an address like name@example.org"
        return errors

    def _sign_up(self, values: dict[str, str], request: Request) -> bool | None:
        """Record the sign-up and send the confirmation: True sent, None nothing to send,
        False the transport failed (the sign-up stays pending; the reader can try again)."""
        site = self.site
        list_settings = site.mailing_list(values["list"])
        assert list_settings is not None  # checked by _problems
        message_id = new_message_id(site.settings)
        with site.engine.begin() as conn:
            subscriber_id = membership.request_subscription(
                conn,
                secret=site.secret,
                email=values["email"],
                name=values["name"],
                list_name=list_settings.name,
                visitor=visitor(request),
                message_id=message_id,
                limit=site.mail_limit,
            )
            if subscriber_id is None:
                return None
            address = membership.email_of(conn, subscriber_id) or values["email"]
            person = membership.preferences(conn, subscriber_id)
        url = confirm_url(site.settings, site.secret, subscriber_id, list_settings.name)
        name = person.name if person else ""
        batch = confirmation_batch(
            site.settings, list_settings, Subscriber(subscriber_id, address, name), url, message_id
        )
        try:
            with site.transport() as transport:
                (result,) = transport.send(batch)
        except TransportError as exc:  # an outbox that cannot be written, say: not the reader's
            log.error("confirmation email not sent: %s", exc)
            return False
        if result.outcome is not Outcome.SENT:
            log.error("confirmation email not sent: %s %s", result.outcome, result.detail)
            return False
        log.info("confirmation email sent for list %s", list_settings.name)
        return True

    async def sent(self, request: Request) -> Response:
        list_settings = self.site.mailing_list(request.query_params.get("list", ""))
        context = {
            "title": "Check your inbox",
            "list_title": list_settings.title if list_settings else "",
            "hours": self.site.settings.signup.confirm_link_hours,
        }
        return self.site.page(request, "web/subscribe_sent.html", context)

    # --------------------------------------------------------------------------- confirmation

    async def confirm_page(self, request: Request) -> Response:
        linked = await self.site.linked_person(request, "confirm")
        if linked is None:
            return self.site.invalid_link(request)
        list_settings = linked.list_settings
        status = linked.person.statuses.get(list_settings.name, "")
        context = {
            "title": "Confirm your subscription",
            "list": list_settings,
            "email": linked.person.email,
            "status": status,
            "action": request.url.path,
            "preferences_url": self.site.preferences_url(list_settings.name, linked.subscriber_id),
        }
        if status == "confirmed":
            context["title"] = "You are subscribed"
        return self.site.page(request, "web/confirm.html", context)

    async def confirm(self, request: Request) -> Response:
        site = self.site
        form = await site.form(request)
        if isinstance(form, Response):
            return form
        found = self.site.signed_link(request, "confirm")
        if found is None:
            return site.invalid_link(request)
        list_name, subscriber_id = found
        who = visitor(request)

        def confirm() -> tuple[membership.Confirmation, bool]:
            with site.engine.begin() as conn:
                outcome = membership.confirm(
                    conn,
                    secret=site.secret,
                    subscriber_id=subscriber_id,
                    list_name=list_name,
                    visitor=who,
                )
                # Owed in the same transaction: a confirmation never waits for the email.
                owed = outcome is membership.Confirmation.CONFIRMED and owe_welcome(
                    conn, site.settings, subscriber_id, list_name
                )
            return outcome, owed

        outcome, welcome_owed = await run_in_threadpool(confirm)
        log.info("confirm on list %s: %s", list_name, outcome.value)
        if outcome is membership.Confirmation.NOT_PENDING:
            return site.invalid_link(request)
        # Sent after the answer; a failure leaves it owed for the scheduler's retries.
        welcome = BackgroundTask(self._welcome, subscriber_id, list_name) if welcome_owed else None
        return RedirectResponse(request.url.path, status_code=303, background=welcome)

    def _welcome(self, subscriber_id: str, list_name: str) -> None:
        site = self.site
        try:
            send_welcome(
                site.engine, site.settings, site.secret, site.transport, subscriber_id, list_name
            )
        except Exception:  # the retry job sends it later; the reader is subscribed anyway
            log.exception("welcome email for list %s not sent now", list_name)
