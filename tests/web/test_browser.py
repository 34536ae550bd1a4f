"""The readers' pages in headless Chromium, driven by the keyboard alone, on SQLite and
PostgreSQL: subscribe -> confirm -> preferences -> unsubscribe, with axe-core on every page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page

from speakerfeed.mail import tokens
from tests.support.browser import (
    PageFactory,
    assert_no_axe_violations,
    check_skip_link,
    horizontal_overflow,
)
from tests.support.webapp import SECRET, ReaderSite, reader_site

__all__ = ["reader_site"]

pytestmark = pytest.mark.browser

_FOCUSED = """() => {
  const a = document.activeElement;
  return a ? (a.id ? '#' + a.id : a.tagName.toLowerCase() + ':' + a.textContent.trim()) : null;
}"""


def focused(page: Page) -> str:
    return str(page.evaluate(_FOCUSED))


def tab_to(page: Page, target: str, *, limit: int = 30) -> None:
    """Press Tab until ``target`` ("#id" or "tag:text") has focus; fail if it never does."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = focused(page)
        if now == target:
            return
        seen.append(now)
    raise AssertionError(f"Tab never reached {target}; focus went through {seen}")


def check_page(page: Page, where: str) -> None:
    """What every page must pass: a working skip link, no axe violation, nothing too wide."""
    check_skip_link(page)
    assert_no_axe_violations(page, where=where)
    assert horizontal_overflow(page) == 0, f"{where} is wider than the screen"


def press_and_load(page: Page, key: str) -> None:
    """Press ``key`` and wait for the page it leads to (a form's answer, a link's target)."""
    with page.expect_navigation():
        page.keyboard.press(key)


def fresh(page: Page, url: str) -> None:
    """Open ``url`` as a reader following a link from an email does."""
    page.goto(url)
    page.wait_for_load_state("load")


def test_keyboard_only_subscribe_confirm_preferences_unsubscribe(
    reader_site: ReaderSite, open_page: PageFactory
) -> None:
    page = open_page(width=375)
    base = reader_site.url

    # 1. The sign-up form, first with a mistake: the errors are announced and tied to fields.
    fresh(page, base + "/subscribe")
    check_page(page, "the sign-up form")
    tab_to(page, "#list-daily")
    page.keyboard.press("Space")
    tab_to(page, "#name")
    page.keyboard.type("Ann Example")
    tab_to(page, "#email")
    page.keyboard.type("ann@example")
    press_and_load(page, "Enter")
    assert page.title().startswith("Error: ")
    alert = page.locator("[role=alert]")
    assert "Enter an address like name@example.org" in alert.inner_text()
    email = page.locator("#email")
    assert email.get_attribute("aria-invalid") == "true"
    assert "email-error" in (email.get_attribute("aria-describedby") or "")
    assert email.input_value() == "ann@example" and page.locator("#name").input_value()
    check_page(page, "the sign-up form with errors")

    tab_to(page, "#email")
    page.keyboard.press("End")
    page.keyboard.type(".org")
    page.keyboard.press("Enter")
    page.wait_for_url("**/subscribe/sent?list=daily")
    assert "Check your inbox" in page.locator("h1").inner_text()
    check_page(page, "check your inbox")
    assert reader_site.statuses("ann@example.org") == {"daily": "pending"}

    # 2. The link in the confirmation email opens a page with a button.
    (confirm_path,) = reader_site.confirm_paths("ann@example.org")
    fresh(page, base + confirm_path)
    check_page(page, "the confirm page")
    tab_to(page, "button:Confirm my subscription")
    press_and_load(page, "Enter")
    assert page.locator("h1").inner_text() == "You are subscribed"
    assert reader_site.statuses("ann@example.org") == {"daily": "confirmed"}
    check_page(page, "the confirmed page")

    # 3. Preferences, reached from there: add the weekly list, monthly.
    link_text = "a:choose your lists and how often you hear from us"
    tab_to(page, link_text)
    page.keyboard.press("Enter")
    page.wait_for_url("**/preferences/daily/**")
    check_page(page, "the preferences page")
    tab_to(page, "#list-weekly")
    page.keyboard.press("Space")
    tab_to(page, "#cadence-weekly-every")
    page.keyboard.press("ArrowDown")  # arrows move within a radio group
    assert focused(page) == "#cadence-weekly-monthly"
    tab_to(page, "button:Save my preferences")
    page.keyboard.press("Enter")
    page.wait_for_url("**?saved=1")
    assert "Your preferences are saved." in page.locator("[role=status]").inner_text()
    assert reader_site.statuses("ann@example.org") == {"daily": "confirmed", "weekly": "confirmed"}
    check_page(page, "the saved preferences page")

    # 4. The unsubscribe link of a daily email: a page, then the button.
    subscriber_id = reader_site.subscriber_id("ann@example.org")
    assert subscriber_id is not None
    token = tokens.sign(SECRET, "unsubscribe", subscriber_id, "daily")
    fresh(page, f"{base}/unsubscribe/daily/{token}")
    check_page(page, "the unsubscribe page")
    assert reader_site.statuses("ann@example.org")["daily"] == "confirmed"
    tab_to(page, "button:Unsubscribe")
    press_and_load(page, "Enter")
    assert page.locator("h1").inner_text() == "You have unsubscribed"
    assert reader_site.statuses("ann@example.org") == {
        "daily": "unsubscribed",
        "weekly": "confirmed",
    }
    check_page(page, "the unsubscribed page")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/subscribe/sent", 200),
        ("/unsubscribe/", 200),
        ("/preferences/", 200),
        ("/unsubscribe/daily/not-a-token", 400),
        ("/confirm/daily/not.valid", 400),
    ],
)
def test_other_pages_are_accessible_in_dark_mode_on_a_desktop(
    reader_site: ReaderSite, open_page: PageFactory, path: str, status: int
) -> None:
    page = open_page(width=1024, color_scheme="dark")
    response = page.goto(reader_site.url + path)
    assert response is not None and response.status == status
    check_page(page, path)


def test_every_step_works_with_javascript_turned_off(
    reader_site: ReaderSite, chromium: Browser
) -> None:
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(reader_site.url + "/subscribe")
        page.fill("#email", "nojs@example.org")
        page.check("#list-weekly")
        page.click("button[type=submit]")
        page.wait_for_url("**/subscribe/sent?list=weekly")
        (confirm_path,) = reader_site.confirm_paths("nojs@example.org")
        page.goto(reader_site.url + confirm_path)
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        assert reader_site.statuses("nojs@example.org") == {"weekly": "confirmed"}
    finally:
        context.close()
