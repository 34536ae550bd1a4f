"""The preferences page: which lists, how often, name and time zone, reached by a signed link.

The link in every email is signed for one subscriber (and the list it came from); it proves the
reader owns the address, so ticking another list here subscribes at once. Saving answers with a
redirect to the same page (POST/redirect/GET), which then says the preferences were saved.
"""

from __future__ import annotations

import functools
import zoneinfo

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from speakerfeed.config import ListSettings
from speakerfeed.subscriptions import membership
from speakerfeed.web.forms import field
from speakerfeed.web.site import Site, log, visitor

EVERY_ISSUE = ""  # the cadence value of a list's own schedule


@functools.cache
def time_zones() -> tuple[str, ...]:
    # Region/City names only: the legacy aliases (EST, GB, Etc/GMT+5) only confuse a picker.
    return tuple(
        sorted(
            zone
            for zone in zoneinfo.available_timezones()
            if "/" in zone and not zone.startswith(("Etc/", "SystemV/", "US/"))
        )
    )


# Region names as a reader looks for them; the IANA area name otherwise.
_REGION_LABELS = {
    "America": "Americas",
    "Indian": "Indian Ocean",
    "Atlantic": "Atlantic Ocean",
    "Pacific": "Pacific Ocean",
    "Arctic": "Arctic Ocean",
}


def zone_menu(first: str) -> list[tuple[str, tuple[str, ...]]]:
    """The time-zone menu as (group label, zones) pairs: ``first`` (the list's zone, what most
    readers want) in a group of its own at the top, then every zone grouped by region."""
    groups: dict[str, list[str]] = {}
    for zone in time_zones():
        if zone != first:
            region = zone.split("/", 1)[0]
            groups.setdefault(_REGION_LABELS.get(region, region), []).append(zone)
    menu = [(label, tuple(zones)) for label, zones in sorted(groups.items())]
    if first in time_zones():
        menu.insert(0, ("This newsletter's time zone", (first,)))
    return menu


def routes(site: Site) -> list[Route]:
    pages = PreferencePages(site)
    return [
        Route("/preferences/", pages.general, methods=["GET", "HEAD"]),
        Route("/preferences/{list_name}/{token}", pages.page, methods=["GET", "HEAD"]),
        Route("/preferences/{list_name}/{token}", pages.submit, methods=["POST"]),
    ]


def cadence_choices(list_settings: ListSettings) -> list[tuple[str, str]]:
    """(value, label) of each schedule a reader may choose for the list."""
    return [(EVERY_ISSUE, "Every issue")] + [
        (name, name.replace("-", " ").capitalize()) for name in list_settings.cadences
    ]


class PreferencePages:
    def __init__(self, site: Site) -> None:
        self.site = site

    async def general(self, request: Request) -> Response:
        context = {"title": "Manage your subscriptions"}
        return self.site.page(request, "web/preferences_help.html", context)

    async def page(self, request: Request) -> Response:
        linked = await self.site.linked_person(request, "preferences")
        if linked is None:
            return self.site.invalid_link(request)
        person = linked.person
        values: dict[str, object] = {
            "name": person.name,
            "timezone": person.timezone,
            "lists": {
                name for name, status in person.statuses.items() if status in membership.ACTIVE
            },
            "cadences": {
                name: self._shown_cadence(name, chosen) for name, chosen in person.cadences.items()
            },
        }
        saved = request.query_params.get("saved") == "1"
        return self._render(request, linked.list_settings, person.email, values, {}, saved=saved)

    def _shown_cadence(self, list_name: str, cadence: str) -> str:
        """The choice to show as made: a cadence since removed from config.toml gets the list's
        own digests (see store.subscribers.on_cadence), so "every issue" is what holds."""
        list_settings = self.site.settings.mailing_list(list_name)
        if list_settings is None or cadence not in list_settings.cadences:
            return EVERY_ISSUE
        return cadence

    def _render(
        self,
        request: Request,
        list_settings: ListSettings,
        email: str,
        values: dict[str, object],
        errors: dict[str, str],
        *,
        saved: bool = False,
        status: int = 200,
    ) -> Response:
        context = {
            "title": "Your preferences",
            "email": email,
            "values": values,
            "errors": errors,
            "saved": saved,
            "lists": [(item, cadence_choices(item)) for item in self.site.settings.lists],
            "zone_groups": zone_menu(list_settings.timezone or self.site.settings.site.timezone),
            "action": request.url.path,
        }
        return self.site.page(request, "web/preferences.html", context, status=status)

    async def submit(self, request: Request) -> Response:
        site = self.site
        form = await site.form(request)
        if isinstance(form, Response):
            return form
        linked = await site.linked_person(request, "preferences")
        if linked is None:
            return site.invalid_link(request)
        subscriber_id = linked.subscriber_id
        chosen, values, errors = self._read(form)
        if errors:
            return self._render(
                request, linked.list_settings, linked.person.email, values, errors, status=422
            )
        who = visitor(request)
        offered = tuple(item.name for item in site.settings.lists)

        def save() -> None:
            with site.engine.begin() as conn:
                membership.save_preferences(
                    conn,
                    secret=site.secret,
                    subscriber_id=subscriber_id,
                    chosen=chosen,
                    offered=offered,
                    name=str(values["name"]),
                    timezone=str(values["timezone"]),
                    visitor=who,
                )

        await run_in_threadpool(save)
        log.info("preferences saved: %d of %d lists", len(chosen), len(offered))
        return RedirectResponse(f"{request.url.path}?saved=1", status_code=303)

    def _read(self, form: FormData) -> tuple[dict[str, str], dict[str, object], dict[str, str]]:
        """(chosen lists -> cadence, the values to show again, errors by field id)."""
        errors: dict[str, str] = {}
        ticked = {value for value in form.getlist("lists") if isinstance(value, str)}
        chosen: dict[str, str] = {}
        cadences: dict[str, str] = {}
        for item in self.site.settings.lists:
            cadence = field(form, f"cadence-{item.name}")
            if cadence not in dict(cadence_choices(item)):
                errors[f"cadence-{item.name}"] = f"Choose how often you receive {item.title}"
                cadence = EVERY_ISSUE
            cadences[item.name] = cadence
            if item.name in ticked:
                chosen[item.name] = cadence
        zone = field(form, "timezone")
        if zone and zone not in time_zones():
            errors["timezone"] = "Choose a time zone from the list"
        name = " ".join(field(form, "name").split())
        if len(name) > membership.MAX_NAME:
            errors["name"] = f"Enter a name of at most {membership.MAX_NAME} characters"
        values: dict[str, object] = {
            "name": name,
            "timezone": zone,
            "lists": set(chosen),
            "cadences": cadences,
        }
        return chosen, values, errors
