"""The W3C Nu Html Checker finds no error in our own markup of any email: the digest (with a
photo, a hostile title, right to left, empty), its web copy, the confirmation and the welcome.
What MJML writes for Outlook is left out by name: the VML namespaces on <html>, ``mso-`` CSS
properties and mj-button's ``vertical-align`` attribute.

The checker is engineer hC's harness (tests/support/nu.py, vnu.jar from npm ``vnu-jar``); without
it this module skips.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from speakerfeed.digest.archive import web_copy
from speakerfeed.render.email import render_confirmation, render_welcome
from tests.render.test_email import (
    DAILY,
    HOSTILE_TITLE,
    SETTINGS,
    make_article,
    make_settings,
    personalise,
    render,
    seed_article,
)

pytest.importorskip("tests.support.nu", reason="the Nu checker harness is not here")

MJML_SCAFFOLDING = (
    r"^Attribute “xmlns:[vo]” not allowed here\.$",
    r"^CSS: “mso-[a-z-]+”: Property “mso-[a-z-]+” doesn't exist\.$",
    r"^Attribute “vertical-align” not allowed on element “td” at this point\.$",
)


NEXT_ISSUE = datetime(2026, 12, 5, 7, 0, tzinfo=ZoneInfo("Europe/London"))
LATEST = "https://app.speakernews.co.uk/digests/daily/daily-2026-12-02-0700/"


def _emails() -> dict[str, str]:
    articles = (
        seed_article(),
        make_article(1),
        make_article(3),
        make_article(4, title=HOSTILE_TITLE),
    )
    digest = render(articles)
    hebrew = make_settings()
    hebrew = hebrew.model_copy(update={"site": hebrew.site.model_copy(update={"language": "he"})})
    empty_list = DAILY.model_copy(update={"subject": "Nothing new"})
    confirm_url = "https://app.speakernews.co.uk/confirm/daily/c2FtcGxl.dG9rZW4"
    return {
        "digest.html": personalise(digest.html),
        "web-copy.html": web_copy(digest, SETTINGS).decode(),
        "digest-rtl.html": personalise(render((make_article(1),), hebrew).html),
        "digest-empty.html": personalise(render((), list_settings=empty_list).html),
        "confirm.html": render_confirmation(SETTINGS, DAILY, confirm_url).html,
        "welcome.html": personalise(
            render_welcome(SETTINGS, DAILY, next_issue=NEXT_ISSUE, latest_url=LATEST).html
        ),
    }


def test_no_nu_checker_error_in_our_markup_of_any_email(nu: Any) -> None:
    emails = _emails()
    nu.assert_valid(emails, ignore=MJML_SCAFFOLDING)
    # The ignore list hides only MJML's Outlook markup: each pattern still matches something.
    found = [m.message for m in nu.errors(emails)]
    for pattern in MJML_SCAFFOLDING:
        assert any(re.search(pattern, message) for message in found), pattern
